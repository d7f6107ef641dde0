"""The membership diff's one contract: a target's desired members (bit masks per customer)
against the snapshot of what was last applied (:class:`~reconciler.statestore.Snapshot`: a
Parquet file of ``(customer_id, known, segments)`` rows overlaid by the customers changed
since it was written), giving the rows of the customers that change, a sample of the others,
and the counts the join is cross-checked by.

An engine implements :class:`MembershipDiff`: DuckDB (:mod:`.duckdb`, the default) or Spark
(:mod:`.spark`, where the members live in Spark). The rest is shared: the snapshot as a DuckDB
view (:mod:`.snapshot`), the sample drawn here, the live read and the fingerprint correction
(:mod:`.inputs`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..engines.readers import temp_table
from ..exceptions import PlanError
from ..model import State

__all__ = ["ABSENT", "DiffRows", "MembershipDiff", "Row", "include_table", "pick", "sample_limit"]

#: the salted hashes the sample is drawn by: DuckDB's ``hash`` is 64 bits
_HASHES = 1 << 64

#: a customer's row: (exists, its segment ids joined by SEP, '' for none)
Row = tuple[bool, str]
ABSENT: Row = (False, "")


#: the whole target's distinct (last-applied segments, desired segments) pairs, each joined by
#: SEP (None: the customer is not on that side), with how many customers hold each
Pairs = list[tuple[str | None, str | None, int]]


@dataclasses.dataclass(slots=True)
class DiffRows:
    """What the diff sends back to Python: the customers that change (sorted) and the sample,
    with what each wants (``want``, absent for nothing) and its last-applied row (``last``);
    the number of customers known to exist, and the number with a desired segment.
    ``included``: the customers asked for by name (``include``) that neither change nor were
    sampled, read live like the sample (an apply's verification: the customers it wrote); and
    ``pairs``: the counts of the membership pairs the per-segment sizes come from."""

    needed: list[str]
    sampled: list[str]
    want: dict[str, str]
    last: dict[str, Row]
    known: int
    wanted: int
    included: list[str] = dataclasses.field(default_factory=list)
    #: see :data:`Pairs` and :class:`~reconciler.plan._sizes.Tally`
    pairs: Pairs = dataclasses.field(default_factory=list)


def checked_pairs(pairs: Pairs, rows: int, on: str = "") -> Pairs:
    """``pairs``, refused unless they count the ``rows`` the join holds (``on``: the engine,
    for the message): the per-segment sizes are counted from them."""
    counted = sum(n for _, _, n in pairs)
    if counted != rows:
        raise PlanError(
            f"the membership diff{on and ' on ' + on} does not add up, refusing to plan: its "
            f"segment sizes count {counted} customers, but the join holds {rows}"
        )
    return pairs


class MembershipDiff(ABC):
    """One target's desired members diffed against its last-applied snapshot.

    :meth:`desired` runs first (the desired members made ready, in the engine or in ``con``),
    then :meth:`rows`, once ``con`` holds the view ``last(customer_id, known, segments)`` of
    the snapshot (see :class:`~reconciler.membership.snapshot.LastApplied`).
    """

    #: what the plan should say about how this target was diffed
    notes: tuple[str, ...] = ()

    @abstractmethod
    def desired(self, con: Any) -> State:
        """Make the desired members ready; returns the target's segments and access lists
        (the small part of its desired State)."""

    @abstractmethod
    def rows(
        self,
        con: Any,
        managed: Sequence[str],
        sample: int,
        salt: int,
        known: int,
        include: Sequence[str] = (),
    ) -> DiffRows:
        """The customers whose managed segments (``managed``: the desired and last-applied
        segment ids) change or who must be created, and a sample of ``sample`` others drawn
        by their hash salted with ``salt`` (``known``: the customers the snapshot file
        knows), and the customers of ``include`` (``DiffRows.included``: those of them that
        are neither). Raises :class:`~reconciler.exceptions.PlanError` when the join does not
        add up against plain counts of its two sides."""


def sample_limit(sample: int, known: int) -> int:
    """The hash bound under which a known customer is a sample candidate: about twice the
    sample (and at least 64 more), so that the ``sample`` lowest hashes are nearly always
    there; every customer when that is most of them."""
    if sample <= 0:
        return 0
    share = (2 * sample + 64) / max(1, known)
    return _HASHES - 1 if share >= 1 else int(share * _HASHES)


def pick(candidates: list[tuple[int, str]], sample: int) -> list[str]:
    """The ``sample`` candidates of lowest salted hash: a uniform sample, repeatable by salt."""
    return [cid for _, cid in sorted(candidates)[:sample]]


def include_table(con: Any, include: Sequence[str]) -> str:
    """The temporary table ``_include(cid)`` of ``include`` in ``con``, and the SQL condition
    that a customer id (``{}`` in it) is one of them: FALSE (and no table) when there are none,
    so a plan that names nobody runs the join it always ran."""
    if not include:
        return "false"
    temp_table(con, "_include", {"cid": ("VARCHAR", list(dict.fromkeys(include)))})
    return "{} IN (SELECT cid FROM _include)"
