"""A target's desired members as bit masks per customer, in a DuckDB table the diff joins.

The masks are those of :func:`~reconciler.config.resolve` (one bit per segment, one 64-bit
word per 64 segments, every rule source scanned once), kept in DuckDB instead of turned into
a :class:`~reconciler.model.State`: a large audience never comes to Python whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..config import Config
from ..config._contributions import WORD
from ..config._located import target_segments
from ..config._members import bits, check_files, members_table
from ..config._resolve import skeleton
from ..model import State

__all__ = ["Wanted", "desired_table"]


@dataclass(frozen=True, slots=True)
class Wanted:
    """A target's desired state as :func:`desired_table` leaves it: the small part
    (``skeleton``: segments and access lists) and the segment of each bit of the masks."""

    skeleton: State
    #: the segment id of bit ``i`` (word ``i // 64``, bit ``i % 64``)
    seg_ids: list[str]
    #: one row per customer; when False a customer may have several (their masks OR'ed):
    #: :meth:`group` before relying on it
    unique: bool = True

    @property
    def words(self) -> int:
        return max(1, (len(self.seg_ids) + WORD - 1) // WORD)

    def joined(self, mask: tuple[int, ...]) -> str:
        """The segment ids of a mask, sorted and joined by ``\x1f`` ('' for none)."""
        return "\x1f".join(
            sorted(self.seg_ids[b] for w, m in enumerate(mask) for b in bits(int(m), w * WORD))
        )

    def group(self, con: Any) -> Wanted:
        """``wanted`` with one row per customer (its rows' masks OR'ed)."""
        words = range(self.words)
        masks = ", ".join(f"CAST(bit_or(m{w}) AS UBIGINT) AS m{w}" for w in words)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE wanted AS SELECT cid, {masks} FROM wanted GROUP BY cid"
        )
        return replace(self, unique=True)

    def masks(
        self, lists: Iterable[str], managed: Iterable[str]
    ) -> list[tuple[tuple[int, ...], bool]]:
        """For each segment list (ids joined by ``\x1f``): the mask of the desired segments it
        holds, and whether it also holds one of ``managed`` that is not desired (so that no
        desired mask can equal its managed part)."""
        bit = {seg: i for i, seg in enumerate(self.seg_ids)}
        others = set(managed)
        out: list[tuple[tuple[int, ...], bool]] = []
        for joined in lists:
            words = [0] * self.words
            other = False
            for seg in joined.split("\x1f") if joined else ():
                i = bit.get(seg)
                if i is not None:
                    words[i // WORD] |= 1 << (i % WORD)
                elif seg in others:
                    other = True
            out.append((tuple(words), other))
        return out


def desired_table(config: Config, target: str, con: Any, check: bool = True) -> Wanted:
    """The desired membership of ``target`` as a DuckDB table, never loaded into Python.

    Creates ``wanted(cid, m0, ...)`` in ``con``: every customer with at least one of the
    target's segments, with one mask word per 64 segments (see :class:`Wanted`; a customer
    may have several rows unless ``unique``). ``check``: False when the caller checks the
    customer ids itself (see :func:`~reconciler.config._members.check_ids`).
    """
    segments = target_segments(config, target)
    check_files(config, segments)
    seg_ids = [sys.intern(s.id) for s in segments]
    wanted = Wanted(skeleton(segments, seg_ids, list(range(len(segments)))), seg_ids)
    unique = members_table(config, segments, con, table="wanted", rows=True, check=check)
    if unique is None:
        words = ", ".join(f"m{w} UBIGINT" for w in range(wanted.words))
        con.execute(f"CREATE TEMP TABLE wanted (cid VARCHAR, {words})")
        return wanted
    return replace(wanted, unique=unique)
