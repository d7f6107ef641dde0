"""The plan: a value. Ordered changes per target, warnings, counts, and JSON both ways.

A plan records the digest of the config it came from and a fingerprint of each remote state it
was computed against, so a saved plan can be refused when either has moved on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._hashing import MASK, SEP, customer_item, hash_sum
from .changes import (
    STEPS,
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
    Step,
    step_of,
)
from .diff import Ownership, diff
from .exceptions import PlanError, UnsafePlanError
from .model import Segment, State
from .providers.base import Capabilities, RemoteState

__all__ = [
    "FORMAT_VERSION",
    "Counts",
    "Overview",
    "Plan",
    "Safety",
    "TargetPlan",
    "build_target_plan",
    "check_safety",
    "fingerprint",
    "fingerprint_sum",
    "format_fingerprint",
]

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Counts:
    create: int = 0
    update: int = 0
    delete: int = 0
    forget: int = 0
    links_add: int = 0
    links_remove: int = 0
    #: per phase → action → count
    by_phase: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return (
            self.create
            + self.update
            + self.delete
            + self.forget
            + self.links_add
            + (self.links_remove)
        )

    def __add__(self, other: Counts) -> Counts:
        phases: dict[str, dict[str, int]] = {}
        for src in (self.by_phase, other.by_phase):
            for ph, acts in src.items():
                for act, n in acts.items():
                    phases.setdefault(ph, {})[act] = phases.get(ph, {}).get(act, 0) + n
        return Counts(
            self.create + other.create,
            self.update + other.update,
            self.delete + other.delete,
            self.forget + other.forget,
            self.links_add + other.links_add,
            self.links_remove + other.links_remove,
            phases,
        )


def count(changes: Iterable[Change]) -> Counts:
    tally = {a: 0 for a in Action}
    phases: dict[str, dict[str, int]] = {}
    add = remove = 0
    for c in changes:
        if isinstance(c, LinkChange):
            n_add, n_rem = len(c.added), len(c.removed)
            add += n_add
            remove += n_rem
            ph = phases.setdefault(Phase.LINKS.value, {})
            ph["add"] = ph.get("add", 0) + n_add
            ph["remove"] = ph.get("remove", 0) + n_rem
            ph["customers"] = ph.get("customers", 0) + 1
        else:
            tally[c.action] += 1
            ph = phases.setdefault(c.phase.value, {})
            ph[c.action.value] = ph.get(c.action.value, 0) + 1
    return Counts(
        tally[Action.CREATE],
        tally[Action.UPDATE],
        tally[Action.DELETE],
        tally[Action.FORGET],
        add,
        remove,
        phases,
    )


@dataclass(frozen=True, slots=True)
class Safety:
    """octoDNS-style limits on how much of a target one plan may remove."""

    max_delete_share: float = 0.30
    min_existing: int = 10


@dataclass(frozen=True, slots=True)
class TargetPlan:
    target: str
    type: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    #: phase → where the remote facts came from
    sources: Mapping[str, str] = field(default_factory=dict)
    remote_fingerprint: str = ""
    #: size of the remote before the plan: segments, customers, links
    existing: Mapping[str, int] = field(default_factory=dict)
    unchanged_links: int = 0
    #: segment ids that may never be deleted (prevent_destroy, now or when last applied)
    protected: tuple[str, ...] = ()

    @property
    def counts(self) -> Counts:
        return count(self.changes)

    def by_step(self) -> list[tuple[Step, list[Change]]]:
        """The changes grouped by execution step, in execution order, empty steps left out
        (one pass; a plan file edited out of order still groups right)."""
        buckets: dict[int, list[Change]] = {}
        for change in self.changes:
            buckets.setdefault(step_of(change), []).append(change)
        return [(STEPS[i], buckets[i]) for i in sorted(buckets)]


@dataclass(frozen=True, slots=True)
class Plan:
    config_path: str
    config_digest: str
    targets: tuple[TargetPlan, ...]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    refresh: str = "full"

    @property
    def counts(self) -> Counts:
        total = Counts()
        for t in self.targets:
            total = total + t.counts
        return total

    @property
    def has_changes(self) -> bool:
        return any(t.changes for t in self.targets)

    def target(self, name: str) -> TargetPlan:
        for t in self.targets:
            if t.target == name:
                return t
        raise PlanError(f"the plan has no target {name!r}")

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "config": {"path": self.config_path, "digest": self.config_digest},
            "refresh": self.refresh,
            "summary": _counts_dict(self.counts),
            "targets": [_target_dict(t) for t in self.targets],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        try:
            version = data["format_version"]
            if version != FORMAT_VERSION:
                raise PlanError(
                    f"plan format version {version} is not supported (expected {FORMAT_VERSION})"
                )
            return cls(
                config_path=data["config"]["path"],
                config_digest=data["config"]["digest"],
                created=data["created"],
                refresh=data.get("refresh", "full"),
                targets=tuple(_target_from(t) for t in data["targets"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"not a valid plan file: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"not a valid plan file: {exc}") from exc
        if not isinstance(data, dict):
            raise PlanError("not a valid plan file: expected a JSON object")
        return cls.from_dict(data)

    def changes_digest(self) -> str:
        """A digest of the changes alone (what would be done), independent of timestamps."""
        h = hashlib.sha256()
        for t in self.targets:
            h.update(t.target.encode())
            for c in t.changes:
                h.update(json.dumps(_change_dict(c), sort_keys=True).encode())
        return h.hexdigest()


def _counts_dict(c: Counts) -> dict[str, Any]:
    return {
        "create": c.create,
        "update": c.update,
        "delete": c.delete,
        "forget": c.forget,
        "links_add": c.links_add,
        "links_remove": c.links_remove,
        "by_phase": {k: dict(v) for k, v in c.by_phase.items()},
    }


def _seg(s: Segment | None) -> dict[str, str] | None:
    return None if s is None else {"id": s.id, "name": s.name, "description": s.description}


def _change_dict(c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"phase": c.phase.value, "action": c.action.value, "key": c.key}
    match c:
        case SegmentChange():
            out |= {"before": _seg(c.before), "after": _seg(c.after), "fields": list(c.fields)}
        case AccessChange():
            out |= {"before": sorted(c.before), "after": sorted(c.after)}
        case LinkChange():
            out |= {
                "before": sorted(c.before),
                "after": sorted(c.after),
                "add": sorted(c.added),
                "remove": sorted(c.removed),
            }
        case CustomerChange():
            pass
    return out


def _change_from(d: Mapping[str, Any]) -> Change:
    phase, action, key = Phase(d["phase"]), Action(d["action"]), str(d["key"])
    if phase is Phase.SEGMENTS:
        b, a = d.get("before"), d.get("after")
        return SegmentChange(
            action,
            key,
            Segment(b["id"], b["name"], b["description"]) if b else None,
            Segment(a["id"], a["name"], a["description"]) if a else None,
            tuple(d.get("fields", ())),
        )
    if phase is Phase.ACCESS:
        return AccessChange(action, key, frozenset(d["before"]), frozenset(d["after"]))
    if phase is Phase.CUSTOMERS:
        return CustomerChange(action, key)
    return LinkChange(key, frozenset(d["before"]), frozenset(d["after"]))


def _target_dict(t: TargetPlan) -> dict[str, Any]:
    return {
        "target": t.target,
        "type": t.type,
        "remote_fingerprint": t.remote_fingerprint,
        "sources": dict(t.sources),
        "existing": dict(t.existing),
        "summary": _counts_dict(t.counts),
        "unchanged_links": t.unchanged_links,
        "warnings": list(t.warnings),
        "unmanaged": list(t.unmanaged),
        "protected": list(t.protected),
        "changes": [_change_dict(c) for c in t.changes],
    }


def _target_from(d: Mapping[str, Any]) -> TargetPlan:
    return TargetPlan(
        target=d["target"],
        type=d["type"],
        changes=tuple(_change_from(c) for c in d["changes"]),
        warnings=tuple(d.get("warnings", ())),
        unmanaged=tuple(d.get("unmanaged", ())),
        sources=dict(d.get("sources", {})),
        remote_fingerprint=d.get("remote_fingerprint", ""),
        existing=dict(d.get("existing", {})),
        unchanged_links=int(d.get("unchanged_links", 0)),
        protected=tuple(d.get("protected", ())),
    )


# -- building ---------------------------------------------------------------------------------
def fingerprint_sum(state: State) -> int:
    """The unmasked sum behind :func:`fingerprint` (a sum: it can be updated item by item)."""
    acc = hash_sum(SEP.join(("s", s.id, s.name, s.description)) for s in state.segments.values())
    acc += hash_sum(SEP.join(("a", k, *sorted(v))) for k, v in state.access.items())
    acc += hash_sum(map(customer_item, state.customers))
    links = state.links
    distinct = {id(segs): segs for segs in links.values()}
    tails = {k: SEP + SEP.join(sorted(segs)) for k, segs in distinct.items()}
    keys = map(("l" + SEP).__add__, links.keys())
    acc += hash_sum(map(str.__add__, keys, map(tails.__getitem__, map(id, links.values()))))
    return acc


def fingerprint(state: State) -> str:
    """An order-independent digest of a state (a sum of per-item hashes: no sorting needed).

    Each item is hashed as its parts joined by ``\x1f`` (sorted ids for sets). Customers that
    share a segment set share its sorted, joined text, built once per distinct set.
    """
    return format_fingerprint(fingerprint_sum(state))


def format_fingerprint(total: int) -> str:
    return f"{total & MASK:032x}"


def _group(kind: str, keys: Sequence[str], message: str, limit: int = 8) -> str:
    shown = ", ".join(keys[:limit]) + (
        f" and {len(keys) - limit} more" if len(keys) > limit else ""
    )
    noun = kind if len(keys) == 1 else f"{kind}s"
    return f"{message} ({len(keys)} {noun}: {shown})"


@dataclass(frozen=True, slots=True)
class Overview:
    """What a plan says of the WHOLE remote when it diffed only part of the customers (the
    rest known unchanged): its fingerprint, its sizes, the unchanged links left out."""

    fingerprint: str
    existing: Mapping[str, int]
    unchanged_links: int


def build_target_plan(
    target: str,
    type_name: str,
    capabilities: Capabilities,
    desired: State,
    remote: RemoteState,
    ownership: Ownership,
    *,
    protected: Iterable[str] = (),
    overview: Overview | None = None,
) -> TargetPlan:
    """Diff, then let the target's capabilities turn what it cannot do into warnings.

    ``overview``: ``desired`` and ``remote`` hold only some of the customers (the ones that can
    change); the overview describes the rest of the remote."""
    phases = capabilities.phases
    result = diff(
        desired,
        remote.state,
        ownership,
        access=Phase.ACCESS in phases,
        customers=Phase.CUSTOMERS in phases,
        compare=capabilities.segment_fields,
    )
    warnings: list[str] = list(remote.warnings)
    kept: list[Change] = []
    dropped: dict[tuple[Phase, Action], list[str]] = {}
    caveated: dict[tuple[Phase, Action], list[str]] = {}
    for change in result.changes:
        k = (change.phase, change.action)
        if k in capabilities.unsupported:
            dropped.setdefault(k, []).append(change.key)
            continue
        if k in capabilities.caveats:
            caveated.setdefault(k, []).append(change.key)
        kept.append(change)
    for k, keys in dropped.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.unsupported[k]))
    for k, keys in caveated.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.caveats[k]))
    if "description" not in capabilities.segment_fields:
        described = sorted(s.id for s in desired.segments.values() if s.description)
        if described:
            warnings.append(
                _group(
                    "segment",
                    described,
                    "this target has no segment descriptions: the descriptions are not sent",
                )
            )
    if Phase.ACCESS not in phases:
        asked = sorted(s for s, teams in desired.access.items() if teams)
        if asked:
            note = capabilities.unsupported.get(
                (Phase.ACCESS, Action.UPDATE), "this target has no access control"
            )
            warnings.append(_group("segment", asked, f"{note}: access lists are not applied"))
    remote_state = remote.state
    if overview is None:
        overview = Overview(
            fingerprint(remote_state),
            {
                "segments": len(remote_state.segments),
                "customers": len(remote_state.customers),
                "links": remote_state.link_count(),
            },
            0,
        )
    return TargetPlan(
        target=target,
        type=type_name,
        changes=tuple(kept),
        warnings=tuple(warnings),
        unmanaged=result.unmanaged,
        sources={p.value: s.value for p, s in remote.sources.items()},
        remote_fingerprint=overview.fingerprint,
        existing=dict(overview.existing),
        unchanged_links=result.unchanged_links + overview.unchanged_links,
        protected=tuple(sorted(set(protected))),
    )


def check_safety(plan: TargetPlan, safety: Safety, *, force: bool = False) -> list[str]:
    """Raise :class:`UnsafePlanError` when the plan removes too much; return notes otherwise.

    ``prevent_destroy`` holds even with ``force``.
    """
    blocked = sorted(
        c.key
        for c in plan.changes
        if isinstance(c, SegmentChange) and c.action is Action.DELETE and c.key in plan.protected
    )
    if blocked:
        raise UnsafePlanError(
            f"target {plan.target!r}: the plan deletes segment(s) with prevent_destroy: "
            f"{', '.join(blocked)}; remove prevent_destroy first (--force does not override it)"
        )
    counts = plan.counts
    removed = {
        "segments": counts.by_phase.get("segments", {}).get("delete", 0),
        "customers": counts.by_phase.get("customers", {}).get("delete", 0),
        "links": counts.links_remove,
    }
    problems: list[str] = []
    for kind, n in removed.items():
        existing = int(plan.existing.get(kind, 0))
        if existing < safety.min_existing or n == 0:
            continue
        share = n / existing
        if share > safety.max_delete_share:
            problems.append(
                f"removes {n:,} of {existing:,} {kind} ({share:.1%}), over the "
                f"{safety.max_delete_share:.0%} limit by {share - safety.max_delete_share:.1%}"
            )
    if problems and not force:
        raise UnsafePlanError(
            f"target {plan.target!r}: unsafe plan: {'; '.join(problems)}. "
            "Re-run with --force if this is intended."
        )
    return [f"target {plan.target!r}: forced: {p}" for p in problems]
