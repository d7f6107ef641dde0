"""Per-segment sizes of a target's plan — members before and after, added, removed, and how
many are in two segments at once — from ONE tally of the whole target: how many customers
hold each distinct pair (last-applied managed segments, desired segments).

The engines count the pairs where the diff runs (DuckDB in the same pass as its join, Spark in
one grouped query over it), so an audience never comes to Python; a plan diffed from two whole
States (a small target read in full) counts them here from the same States. Either way the
sizes are derived from the pairs alone, and :func:`check_links` refuses a plan whose link
changes do not add up to them, as the diff's other cross-checks do.

::

    tally = Tally.of_rows([("a\x1fb", "a", 1155)], managed={"a", "b"})
    tally.sizes()["b"]      # Sizes(before=1155, after=0, added=0, removed=1155)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..exceptions import PlanError
from ..model import EMPTY, State

__all__ = ["Sizes", "Tally", "check_links"]

#: the separator of segment ids in a joined list (the snapshot's, the engines')
_SEP = "\x1f"

Pair = tuple[frozenset[str], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Sizes:
    """One segment's members: ``before`` (in what the plan diffs against), ``after``,
    ``added`` and ``removed`` (``after == before + added - removed``)."""

    before: int = 0
    after: int = 0
    added: int = 0
    removed: int = 0


class Tally:
    """How many customers hold each distinct pair (``have``: the managed segments of what the
    plan diffs against, ``want``: the desired segments). Pairs repeat: a million customers hold
    a few hundred distinct ones."""

    def __init__(self, managed: Iterable[str]) -> None:
        self.managed = frozenset(managed)
        self.pairs: Counter[Pair] = Counter()
        self._sets: dict[str, frozenset[str]] = {}

    def _set(self, joined: str) -> frozenset[str]:
        """The managed segments of a joined list (cached: lists repeat)."""
        found = self._sets.get(joined)
        if found is None:
            found = self._sets[joined] = (
                frozenset(joined.split(_SEP)) & self.managed if joined else EMPTY
            )
        return found

    def add(self, have: str, want: str, n: int = 1) -> None:
        """``n`` customers whose lists (joined by ``\\x1f``) are ``have`` and ``want``."""
        if n:
            self.pairs[(self._set(have), self._set(want))] += n

    def move(self, want: str, old: str, new: str) -> None:
        """One customer's ``have`` turned out to be ``new``, not ``old`` (read live)."""
        self.add(old, want, -1)
        self.add(new, want, 1)

    @classmethod
    def of_rows(
        cls, rows: Iterable[tuple[str | None, str | None, int]], managed: Iterable[str]
    ) -> Tally:
        """The tally of an engine's grouped rows: (have, want, customers), None for none."""
        tally = cls(managed)
        for have, want, n in rows:
            tally.add(have or "", want or "", int(n))
        return tally

    @classmethod
    def of_states(cls, desired: State, remote: State, managed: Iterable[str]) -> Tally:
        """The tally of two whole States (their membership frozensets are shared between
        customers, so each distinct pair is intersected once)."""
        tally = cls(managed)
        by_id: Counter[tuple[int, int]] = Counter()
        sets: dict[int, frozenset[str]] = {}
        have_get = remote.links.get
        for customer, want in desired.links.items():
            have = have_get(customer, EMPTY)
            sets[id(have)], sets[id(want)] = have, want
            by_id[(id(have), id(want))] += 1
        want_links = desired.links
        for customer, have in remote.links.items():
            if customer not in want_links:
                sets[id(have)] = have
                by_id[(id(have), id(EMPTY))] += 1
        sets[id(EMPTY)] = EMPTY
        for (h, w), n in by_id.items():
            tally.pairs[(sets[h] & tally.managed, sets[w] & tally.managed)] += n
        return tally

    def sizes(self) -> dict[str, Sizes]:
        """Each managed segment's sizes (every managed segment, zeros included)."""
        before: Counter[str] = Counter()
        after: Counter[str] = Counter()
        added: Counter[str] = Counter()
        removed: Counter[str] = Counter()
        for (have, want), n in self.pairs.items():
            if not n:
                continue
            for seg in have:
                before[seg] += n
            for seg in want:
                after[seg] += n
            if have != want:
                for seg in want - have:
                    added[seg] += n
                for seg in have - want:
                    removed[seg] += n
        return {
            seg: Sizes(before[seg], after[seg], added[seg], removed[seg])
            for seg in sorted(self.managed)
        }

    def overlap(self, of: Iterable[str]) -> dict[str, dict[str, int]]:
        """For each segment of ``of``: every other segment that shares members with it after
        the plan → how many (in ONE pass over the distinct pairs)."""
        wanted = frozenset(of)
        out: dict[str, Counter[str]] = {seg: Counter() for seg in sorted(wanted)}
        for (_, want), n in self.pairs.items():
            if not n or len(want) < 2:
                continue
            for seg in want & wanted:
                counts = out[seg]
                for other in want:
                    if other != seg:
                        counts[other] += n
        return {seg: dict(sorted(c.items())) for seg, c in out.items()}


def check_links(
    target: str,
    sizes: Mapping[str, Sizes],
    links: tuple[Mapping[str, int], Mapping[str, int]],
    kept: Iterable[str] = (),
) -> None:
    """Refuse a plan whose link changes do not add up to the per-segment sizes: every
    segment's added and removed members must be the memberships its link changes add and
    remove (``kept``: segments whose members stay, being forgotten, left out)."""
    added, removed = links
    left_out = frozenset(kept)
    for seg in sorted((set(sizes) | set(added) | set(removed)) - left_out):
        size = sizes.get(seg, Sizes())
        plus, minus = added.get(seg, 0), removed.get(seg, 0)
        if (size.added, size.removed) != (plus, minus):
            raise PlanError(
                f"target {target}: the per-segment sizes do not add up, refusing to plan: "
                f"segment {seg}: the link changes add {plus} and remove {minus} "
                f"members, the count of its members found {size.added} entering and "
                f"{size.removed} leaving ({size.before} → {size.after})"
            )
