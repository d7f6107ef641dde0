"""The state store's snapshot of a target against a full live read of its platform.

A pending change is only half the story: a customer changed on the platform to exactly what the
config wants plans no change, yet the state store's snapshot of it is now wrong, and
``plan --refresh=auto`` trusts that snapshot for the customers whose membership did not change.
:func:`snapshot_drift` compares the snapshot with a full live read, phase by phase where the
platform can be read. Pure.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..model import EMPTY, Segment, State
from ..plan import RemoteState, Source
from ..plan.changes import Phase

__all__ = ["Mismatch", "SnapshotReport", "snapshot_drift"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One kind of difference between the state store and the platform."""

    count: int = 0
    #: the first few keys, sorted
    examples: tuple[str, ...] = ()
    #: for differences of value: example key → (the state store's value, the platform's)
    details: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "examples": list(self.examples)}
        if self.details:
            out["details"] = {
                k: {"state_store": a, "platform": b} for k, (a, b) in self.details.items()
            }
        return out


@dataclass(frozen=True, slots=True)
class SnapshotReport:
    """The state store's last-applied state of one target against a full live read.

    ``found`` holds, per area that could be compared, each kind of difference:

    - ``customers``: ``missing`` (in the state store, not on the platform), ``unknown`` (on the
      platform, not in the state store), ``differ`` (on both, in different managed segments);
    - ``segments``: ``missing`` (managed, gone from the platform), ``differ`` (other values of
      the fields the platform carries);
    - ``access``: ``differ``.

    Membership is compared over the segments the state store manages: links to other segments
    are carried over from a live read by every plan, so a stale record of them misleads none.
    """

    target: str
    #: phases compared with the live read
    checked: tuple[str, ...]
    #: phase → where the platform's facts come from instead (it cannot read them live)
    not_checked: Mapping[str, str]
    found: Mapping[str, Mapping[str, Mismatch]]

    @property
    def in_sync(self) -> bool:
        return not any(m.count for kinds in self.found.values() for m in kinds.values())

    def counts(self) -> dict[str, int]:
        """``area.kind`` → count, for the kinds that differ."""
        return {
            f"{area}.{kind}": m.count
            for area, kinds in self.found.items()
            for kind, m in kinds.items()
            if m.count
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "checked": list(self.checked),
            "not_checked": dict(self.not_checked),
            **{
                area: {kind: m.as_dict() for kind, m in kinds.items()}
                for area, kinds in self.found.items()
            },
        }


def _mismatch(
    keys: Collection[str],
    examples: int,
    detail: Callable[[str], tuple[Any, Any]] | None = None,
) -> Mismatch:
    shown = tuple(heapq.nsmallest(examples, keys))
    details = {k: detail(k) for k in shown} if detail is not None else {}
    return Mismatch(len(keys), shown, details)


def _links_within(state: State, scope: frozenset[str] | None) -> Mapping[str, frozenset[str]]:
    """The state's links to the segments of ``scope`` (all of them: ``None``), customers left
    with none dropped. One intersection per distinct segment set (states share them)."""
    if scope is None:
        return state.links
    memo: dict[frozenset[str], frozenset[str]] = {}
    out: dict[str, frozenset[str]] = {}
    for customer, segs in state.links.items():
        mine = memo.get(segs)
        if mine is None:
            mine = memo[segs] = segs & scope
        if mine:
            out[customer] = mine
    return out


def _segment_values(seg: Segment, fields: Sequence[str]) -> dict[str, str]:
    return {f: str(getattr(seg, f)) for f in fields}


def snapshot_drift(
    last: State,
    live: RemoteState | State,
    *,
    target: str = "",
    segment_fields: Sequence[str] = ("name", "description"),
    managed_only: bool = True,
    examples: int = 5,
) -> SnapshotReport:
    """Compare the last-applied ``last`` with a full live read of the platform.

    Only the phases ``live`` read live are compared (a plain :class:`State` counts as read live
    throughout); the others are listed in ``not_checked``, never compared with the state store
    itself. ``segment_fields`` names the fields the platform carries. Membership is compared
    over the segments ``last`` manages (``managed_only=False``: over every segment). Segments
    on the platform that the state store does not manage are not drift: plans list them as
    unmanaged.
    """
    if isinstance(live, RemoteState):
        sources: Mapping[Phase, Source] = live.sources
        now = live.state
    else:
        sources, now = dict.fromkeys(Phase, Source.LIVE), live
    read = {p for p, src in sources.items() if src is Source.LIVE}
    not_checked = {p.value: sources[p].value for p in Phase if p in sources and p not in read}
    found: dict[str, dict[str, Mismatch]] = {}

    if Phase.SEGMENTS in read:
        found["segments"] = _segments_found(last, now, segment_fields, examples)
    if Phase.ACCESS in read:
        found["access"] = _access_found(last, now, Phase.SEGMENTS in read, examples)
    if Phase.CUSTOMERS in read or Phase.LINKS in read:
        found["customers"] = _customers_found(last, now, read, managed_only, examples)

    checked = tuple(p.value for p in Phase if p in read)
    return SnapshotReport(target, checked, not_checked, found)


def _segments_found(
    last: State, now: State, segment_fields: Sequence[str], examples: int
) -> dict[str, Mismatch]:
    """Managed segments gone from the platform, and those whose carried fields differ."""
    gone = [s for s in last.segments if s not in now.segments]
    changed = [
        s
        for s, seg in last.segments.items()
        if s in now.segments
        and _segment_values(seg, segment_fields) != _segment_values(now.segments[s], segment_fields)
    ]
    return {
        "missing": _mismatch(gone, examples),
        "differ": _mismatch(
            changed,
            examples,
            lambda s: (
                _segment_values(last.segments[s], segment_fields),
                _segment_values(now.segments[s], segment_fields),
            ),
        ),
    }


def _access_found(
    last: State, now: State, segments_read: bool, examples: int
) -> dict[str, Mismatch]:
    """Access lists that differ, over the managed segments still there (when those were read)."""
    over = [s for s in last.segments if not segments_read or s in now.segments]
    teams = [s for s in over if last.access.get(s, EMPTY) != now.access.get(s, EMPTY)]
    return {
        "differ": _mismatch(
            teams,
            examples,
            lambda s: (sorted(last.access.get(s, EMPTY)), sorted(now.access.get(s, EMPTY))),
        )
    }


def _customers_found(
    last: State, now: State, read: set[Phase], managed_only: bool, examples: int
) -> dict[str, Mismatch]:
    """Customers missing, unknown, and (links read) in different managed segments."""
    scope = frozenset(last.segments) if managed_only else None
    if Phase.LINKS in read:
        was, has = _links_within(last, scope), _links_within(now, scope)
    else:
        was = has = MappingProxyType({})
    known_was: set[str] = set(was)
    known_now: set[str] = set(has)
    if Phase.CUSTOMERS in read:
        known_was |= last.customers
        known_now |= now.customers
    differ = [c for c, segs in was.items() if c in known_now and has.get(c, EMPTY) != segs]
    differ += [c for c in has if c not in was and c in known_was]
    found = {
        "missing": _mismatch(known_was - known_now, examples),
        "unknown": _mismatch(known_now - known_was, examples),
    }
    if Phase.LINKS in read:
        found["differ"] = _mismatch(
            differ,
            examples,
            lambda c: (sorted(was.get(c, EMPTY)), sorted(has.get(c, EMPTY))),
        )
    return found
