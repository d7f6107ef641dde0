"""The plan as a value: ordered changes per target, warnings, counts (its file format is
:mod:`reconciler.plan.planfile`; the methods that read and write it are kept here for callers).

A plan records the digest of the config it came from and a fingerprint of each remote state it
was computed against, so a saved plan can be refused when either has moved on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..exceptions import PlanError
from .changes import STEPS, Action, Change, LinkChange, Phase, Step, step_of
from .endpoint import Endpoint
from .inputs import Refresh, Source
from .review import SegmentReview, Verdict

__all__ = ["FORMAT_VERSION", "Counts", "Plan", "TargetPlan", "count"]

#: the plan file format a plan is written in (see :mod:`reconciler.plan.planfile`). 3: each
#: target carries its review (``segments``) and its ``verdict``, and so does the plan (read:
#: 2, with an empty review). 2: each target records where it was planned (``planned_at``),
#: and a saved plan's ``config.path`` is relative to the plan file. 1 (still read, by
#: ``show``): neither.
FORMAT_VERSION = 3


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


@dataclass(frozen=True, slots=True, weakref_slot=True)
class TargetPlan:
    """One target's changes, in execution order, and what they were planned against (a
    reconciler knows the ones it made by a weak reference: one it did not make, such as a
    saved plan's, is planned again before it is applied)."""

    target: str
    type: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    #: phase → where the remote facts came from
    sources: Mapping[Phase, Source] = field(default_factory=dict)
    remote_fingerprint: str = ""
    #: size of the remote before the plan: segments, customers, links
    existing: Mapping[str, int] = field(default_factory=dict)
    unchanged_links: int = 0
    #: segment ids that may never be deleted (prevent_destroy, now or when last applied)
    protected: tuple[str, ...] = ()
    #: where it was planned (None: a plan of format version 1, which did not record it)
    planned_at: Endpoint | None = None
    #: the review per managed segment (see :mod:`reconciler.plan.review`), in segment id order
    review: tuple[SegmentReview, ...] = ()
    #: what apply would refuse of this target's changes, decided when the plan was built
    verdict: Verdict = field(default_factory=Verdict)
    #: what the platform can never do, whatever the plan (Talon.One has no descriptions):
    #: said once, apart from the warnings, which are about this plan's changes
    caveats: tuple[str, ...] = ()

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

    @property
    def customers_written(self) -> list[str]:
        """The customers this plan writes (created, or their segments set), each once: what
        an apply's verification reads back, and what applying a saved plan reads live first."""
        phases = (Phase.CUSTOMERS, Phase.LINKS)
        return list(dict.fromkeys(c.key for c in self.changes if c.phase in phases))


@dataclass(frozen=True, slots=True)
class Plan:
    config_path: str
    config_digest: str
    targets: tuple[TargetPlan, ...]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    refresh: Refresh = Refresh.FULL
    format_version: int = FORMAT_VERSION

    @property
    def counts(self) -> Counts:
        total = Counts()
        for t in self.targets:
            total = total + t.counts
        return total

    @property
    def verdict(self) -> Verdict:
        """The whole plan's verdict: every target's refusals."""
        verdicts = [t.verdict for t in self.targets]
        return Verdict(
            tuple(r for v in verdicts for r in v.refusals),
            forced=bool(verdicts) and all(v.forced for v in verdicts),
        )

    @property
    def has_changes(self) -> bool:
        return any(t.changes for t in self.targets)

    @property
    def customers_written(self) -> dict[str, list[str]]:
        """Per target, the customers its plan writes (:attr:`TargetPlan.customers_written`)."""
        return {t.target: t.customers_written for t in self.targets}

    def target(self, name: str) -> TargetPlan:
        for t in self.targets:
            if t.target == name:
                return t
        raise PlanError(f"the plan has no target {name!r}")
