"""Drift of the pending changes: which side moved since the last apply — the config, the remote,
or both.

The state store remembers what was last applied. For every pending change: if the last-applied
value equals the remote's, the config was edited and not yet applied; if it equals the desired
value, someone changed the platform behind the reconciler's back; otherwise both moved. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..model import EMPTY, Segment, State
from ..plan import Plan, Source, TargetPlan, plan_dict
from ..plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from .snapshot import SnapshotReport

__all__ = ["DriftCheck", "DriftReport", "Side", "classify", "drift_report", "drift_reports"]


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
