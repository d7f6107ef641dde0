"""Drift: which side moved since the last apply — the config, the remote, or both.

The state store remembers what was last applied. For every pending change: if the last-applied
value equals the remote's, the config was edited and not yet applied; if it equals the desired
value, someone changed the platform behind the reconciler's back; otherwise both moved.

A pending change is only half the story: a customer changed on the platform to exactly what the
config wants plans no change, yet the state store's snapshot of it is now wrong, and
``plan --refresh=auto`` trusts that snapshot for the customers whose membership did not change.
:func:`snapshot_drift` compares the snapshot with a full live read, phase by phase where the
platform can be read; :func:`refreshed_state` is what ``reconcile refresh`` records instead, and
:func:`store_changes` counts what that rewrites. Pure.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .model import EMPTY, Segment, State
from .plan import Plan, RemoteState, Source, TargetPlan, plan_dict
from .plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)

__all__ = [
    "DriftCheck",
    "DriftReport",
    "Mismatch",
    "RefreshResult",
    "Side",
    "SnapshotReport",
    "classify",
    "drift_reports",
    "refreshed_state",
    "snapshot_drift",
    "store_changes",
]


class Side(StrEnum):
    CONFIG = "config"
    REMOTE = "remote"
    BOTH = "both"


def _side(last: object, before: object, after: object) -> Side:
    if last == before:
        return Side.CONFIG
    if last == after:
        return Side.REMOTE
    return Side.BOTH


def classify(change: Change, last: State) -> Side:
    """Which side a pending change comes from, given the last-applied state."""
    match change:
        case SegmentChange(action=Action.CREATE, key=k):
            return Side.REMOTE if k in last.segments else Side.CONFIG
        case SegmentChange(action=Action.UPDATE, key=k, before=b, after=a, fields=fs):
            # on the fields that differ: a platform may not carry the others (descriptions)
            def on(seg: Segment | None) -> tuple[str, ...] | None:
                return None if seg is None else tuple(getattr(seg, f) for f in fs)

            return _side(on(last.segments.get(k)), on(b), on(a))
        case SegmentChange():
            return Side.CONFIG  # a delete or forget: the config no longer declares it
        case AccessChange(key=k, before=b, after=a):
            return _side(last.access.get(k, EMPTY), b, a)
        case CustomerChange(key=k):
            return Side.REMOTE if k in last.customers else Side.CONFIG
        case LinkChange(key=k, before=b, after=a):
            return _side(last.links.get(k, EMPTY), b, a)
    return Side.BOTH  # pragma: no cover


@dataclass(frozen=True, slots=True)
class DriftReport:
    target: str
    changes: int
    sides: dict[str, int]
    #: a few keys per side, for the report
    examples: dict[str, list[str]] = field(default_factory=dict)
    #: phases whose remote facts come from the state store: drift there is invisible
    blind: tuple[Phase, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "changes": self.changes,
            "sides": self.sides,
            "examples": self.examples,
            "not_read_live": [p.value for p in self.blind],
        }


def drift_report(tp: TargetPlan, last: State, examples: int = 5) -> DriftReport:
    sides: Counter[str] = Counter()
    shown: dict[str, list[str]] = {}
    for change in tp.changes:
        side = classify(change, last).value
        sides[side] += 1
        keys = shown.setdefault(side, [])
        if len(keys) < examples:
            keys.append(f"{change.phase.value} {change.key}")
    blind = tuple(p for p, src in tp.sources.items() if src is Source.STATE_STORE)
    return DriftReport(tp.target, len(tp.changes), dict(sides), shown, blind)


def drift_reports(plan: Plan, last: dict[str, State]) -> list[DriftReport]:
    return [drift_report(tp, last.get(tp.target, State())) for tp in plan.targets]


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """What ``reconcile drift`` reports: the plan now, which side each pending change comes
    from, and (a full check) each target's state store against a full live read."""

    plan: Plan
    reports: Sequence[DriftReport]
    #: target → its snapshot check; empty unless the check was a full one
    snapshots: Mapping[str, SnapshotReport] = field(default_factory=dict)

    @property
    def stale(self) -> frozenset[str]:
        """The targets whose state store no longer matches the platform."""
        return frozenset(name for name, s in self.snapshots.items() if not s.in_sync)

    @property
    def drifted(self) -> bool:
        return self.plan.has_changes or bool(self.stale)

    def as_dict(self) -> dict[str, Any]:
        targets = []
        for r in self.reports:
            entry = r.as_dict()
            if r.target in self.snapshots:
                entry["snapshot"] = self.snapshots[r.target].as_dict()
            targets.append(entry)
        return {"in_sync": not self.drifted, "targets": targets, "plan": plan_dict(self.plan)}


# -- the state store's snapshot against a full live read ----------------------------------------
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
        gone = [s for s in last.segments if s not in now.segments]
        changed = [
            s
            for s, seg in last.segments.items()
            if s in now.segments
            and _segment_values(seg, segment_fields)
            != _segment_values(now.segments[s], segment_fields)
        ]
        found["segments"] = {
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

    if Phase.ACCESS in read:
        over = [s for s in last.segments if Phase.SEGMENTS not in read or s in now.segments]
        teams = [s for s in over if last.access.get(s, EMPTY) != now.access.get(s, EMPTY)]
        found["access"] = {
            "differ": _mismatch(
                teams,
                examples,
                lambda s: (sorted(last.access.get(s, EMPTY)), sorted(now.access.get(s, EMPTY))),
            )
        }

    if Phase.CUSTOMERS in read or Phase.LINKS in read:
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
        found["customers"] = {
            "missing": _mismatch(known_was - known_now, examples),
            "unknown": _mismatch(known_now - known_was, examples),
        }
        if Phase.LINKS in read:
            found["customers"]["differ"] = _mismatch(
                differ,
                examples,
                lambda c: (sorted(was.get(c, EMPTY)), sorted(has.get(c, EMPTY))),
            )

    checked = tuple(p.value for p in Phase if p in read)
    return SnapshotReport(target, checked, not_checked, found)


def refreshed_state(
    last: State, live: RemoteState, *, segment_fields: Sequence[str] = ("name", "description")
) -> State:
    """What ``reconcile refresh`` records: the live read for every phase the platform can read,
    the last-applied state for the others.

    Segments stay those the state store manages (recording every audience on the platform would
    make the reconciler manage, and delete, segments it never made): a managed segment gone
    from the platform is dropped, the others take the platform's values of the fields it
    carries and keep the rest (a description the platform does not hold).
    """
    read = {p for p, src in live.sources.items() if src is Source.LIVE}
    now = live.state
    segments: Mapping[str, Segment] = last.segments
    access: Mapping[str, frozenset[str]] = last.access
    if Phase.SEGMENTS in read:
        kept: dict[str, Segment] = {}
        for seg_id, seg in last.segments.items():
            there = now.segments.get(seg_id)
            if there is not None:
                values = {f: getattr(there, f) for f in segment_fields}
                kept[seg_id] = Segment(
                    seg_id,
                    values.get("name", seg.name),
                    values.get("description", seg.description),
                )
        segments = MappingProxyType(kept)
        access = MappingProxyType({k: v for k, v in access.items() if k in kept})
    if Phase.ACCESS in read:
        access = MappingProxyType({k: v for k, v in now.access.items() if k in segments})
    return State(
        segments=segments,
        access=access,
        customers=now.customers if Phase.CUSTOMERS in read else last.customers,
        links=now.links if Phase.LINKS in read else last.links,
    )


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh did to the state store of one target."""

    target: str
    #: what the rewrite changed, per kind (see :func:`store_changes`); empty: nothing did
    changes: Mapping[str, int]
    #: phases the platform cannot read, kept as last applied
    kept: tuple[str, ...] = ()
    #: whether the membership snapshot was rewritten from the database instead (its file
    #: could not be read, and nothing else changed)
    rewritten: bool = False


def _changed_keys(
    before: Mapping[str, object], after: Mapping[str, object]
) -> tuple[int, int, int]:
    """(added, removed, changed) keys between two mappings."""
    added = sum(1 for k in after if k not in before)
    removed = sum(1 for k in before if k not in after)
    changed = sum(1 for k, v in before.items() if k in after and after[k] != v)
    return added, removed, changed


def store_changes(before: State, after: State) -> dict[str, int]:
    """What rewriting the state store from ``before`` to ``after`` changes, per kind (only the
    kinds that change): ``segments added|removed|updated``, ``access rewritten``, ``customers
    added|removed``, ``links rewritten`` (customers whose recorded segments change)."""
    out: dict[str, int] = {}

    def put(kind: str, n: int) -> None:
        if n:
            out[kind] = n

    added, removed, updated = _changed_keys(before.segments, after.segments)
    put("segments added", added)
    put("segments removed", removed)
    put("segments updated", updated)
    put("access rewritten", sum(_changed_keys(before.access, after.access)))
    put("customers added", len(after.customers - before.customers))
    put("customers removed", len(before.customers - after.customers))
    put("links rewritten", sum(_changed_keys(before.links, after.links)))
    return out
