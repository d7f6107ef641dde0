"""What keeps a plan from doing harm, decided when the plan is built: ``prevent_destroy``, how
much of a target one plan may remove, each segment's guards (how many of its members may leave,
how much it may grow, how small it may become); and the refusal of a saved plan that is stale,
meant for somewhere else, or judged otherwise now.

:func:`judge` turns every rule a target's plan crosses into a :class:`~.review.Refusal` of its
:class:`~.review.Verdict`, which the plan carries; :func:`enforce` is what apply does with it.
Each rule has this one implementation, for every caller (``reconcile plan`` exits 1 on the same
verdict that ``Reconciler.apply`` refuses).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..exceptions import StalePlanError, UnsafePlanError
from .changes import Action, CustomerChange, LinkChange, SegmentChange
from .definition import Plan, TargetPlan
from .endpoint import Endpoint
from .planfile import changes_digest
from .review import Refusal, SegmentReview, SegmentStatus, Verdict

__all__ = [
    "Guard",
    "Guards",
    "Safety",
    "check_config",
    "check_endpoints",
    "check_fresh",
    "check_verdict",
    "enforce",
    "judge",
]

#: how a stale plan's message says to make a new one, unless the caller says better
REPLAN = "reconcile plan --out"
#: how to apply past a forceable refusal
FORCE = "apply with --force"
#: the segments held to their guards: not those deleted or forgotten on purpose
_GUARDED = frozenset(SegmentStatus) - {SegmentStatus.DELETED, SegmentStatus.FORGOTTEN}


@dataclass(frozen=True, slots=True)
class Guard:
    """One segment's guards. The two shares count only for a segment that had at least
    ``min_existing`` members before (like octoDNS's per-zone guard); None switches one off.

    ``max_removed_share``: of the members before, the largest share that may leave;
    ``max_growth_share``: the largest net growth, as a share of the members before;
    ``min_members``: the fewest members a segment that changes may have after the plan."""

    max_removed_share: float | None = 0.30
    max_growth_share: float | None = None
    min_members: int | None = None
    min_existing: int = 100

    def merged(self, overrides: Mapping[str, Any]) -> Guard:
        """This guard with the settings a segment gives itself (only those it names)."""
        return dataclasses.replace(self, **overrides) if overrides else self


@dataclass(frozen=True, slots=True)
class Safety:
    """A target's limits: octoDNS-style, on how much of the target one plan may remove; and
    ``guards``, the default guard of each of its segments."""

    max_delete_share: float = 0.30
    min_existing: int = 10
    guards: Guard = field(default_factory=Guard)


@dataclass(frozen=True, slots=True)
class Guards:
    """What one target's plan is judged by: the target's safety, each declared segment's guard
    (the target's default with the segment's own settings), and where each is declared
    (``"audiences.yaml:42"``), so a refusal says where to accept it."""

    safety: Safety = field(default_factory=Safety)
    segments: Mapping[str, Guard] = field(default_factory=lambda: MappingProxyType({}))
    where: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: where the target is declared
    target_where: str = ""
    #: the segments that set their own ``max_removed_share``: the members they lose within it
    #: are accepted by that setting, and not counted again against ``max_delete_share``
    accepting: frozenset[str] = frozenset()

    def of(self, segment: str) -> Guard:
        return self.segments.get(segment, self.safety.guards)


def judge(plan: TargetPlan, guards: Guards, *, forced: bool = False) -> Verdict:
    """The verdict on ``plan``: every rule it crosses, in order (``prevent_destroy``, the
    target's delete shares, then each segment's guards in the review's order)."""
    removals = _Removals.of(plan)
    segments = tuple(
        r for review in plan.review for r in _segment_guards(plan.target, review, guards)
    )
    over = {r.segment for r in segments if r.rule == "max_removed_share"}
    accepted = sum(
        r.removed
        for r in plan.review
        if r.id in guards.accepting and r.id not in over and r.status in _GUARDED
    )
    refusals = (
        *_prevent_destroy(plan, removals.segments),
        *_delete_shares(plan, dataclasses.replace(removals, accepted=accepted), guards),
        *segments,
    )
    return Verdict(tuple(refusals), forced=forced)


@dataclass(frozen=True, slots=True)
class _Removals:
    """What a target's plan removes: the segments it deletes, how many customers it deletes
    and how many links it removes (one pass over the changes: at a million link changes,
    a quarter of a second, where :attr:`TargetPlan.counts` takes seconds)."""

    segments: tuple[SegmentChange, ...]
    customers: int
    links: int
    #: of ``links``, how many segments' own guards accept (see :attr:`Guards.accepting`)
    accepted: int = 0

    @classmethod
    def of(cls, plan: TargetPlan) -> _Removals:
        segments: list[SegmentChange] = []
        customers = links = 0
        for c in plan.changes:
            if type(c) is LinkChange:
                links += len(c.before - c.after)
            elif isinstance(c, SegmentChange) and c.action is Action.DELETE:
                segments.append(c)
            elif isinstance(c, CustomerChange) and c.action is Action.DELETE:
                customers += 1
        return cls(tuple(segments), customers, links)


def _prevent_destroy(plan: TargetPlan, deleted: tuple[SegmentChange, ...]) -> Iterator[Refusal]:
    protected = set(plan.protected)
    for c in deleted:
        if c.key in protected:
            named = f"{c.key} ({c.before.name})" if c.before and c.before.name else c.key
            yield Refusal(
                plan.target,
                c.key,
                "prevent_destroy",
                f"target {plan.target!r}: the plan deletes a segment with prevent_destroy: {named}",
                f"--force does not override it: declare {c.key} again with "
                "`prevent_destroy: false`, apply that, then remove it",
                forceable=False,
            )


def _delete_shares(plan: TargetPlan, removals: _Removals, guards: Guards) -> Iterator[Refusal]:
    safety = guards.safety
    removed = {
        "segments": len(removals.segments),
        "customers": removals.customers,
        "links": max(removals.links - removals.accepted, 0),
    }
    where = f" ({guards.target_where})" if guards.target_where else ""
    besides = {"links": removals.accepted} if removals.accepted else {}
    for kind, n in removed.items():
        existing = int(plan.existing.get(kind, 0))
        if existing < safety.min_existing or n == 0:
            continue
        share = n / existing
        if share > safety.max_delete_share:
            yield Refusal(
                plan.target,
                None,
                "max_delete_share",
                f"target {plan.target!r}: unsafe plan: removes {n:,} of {existing:,} {kind} "
                f"({share:.1%}), over the {safety.max_delete_share:.0%} limit by "
                f"{share - safety.max_delete_share:.1%}"
                + (
                    f" (besides {besides[kind]:,} that segments' own guards accept)"
                    if kind in besides
                    else ""
                ),
                f"raise `safety: {{max_delete_share: {_above(share)}}}` on target "
                f"{plan.target}{where}, or {FORCE}",
            )


def _above(share: float) -> float:
    """The setting that accepts ``share``: the next 0.05 at or above it (0.62 → 0.65)."""
    return round(math.ceil(round(share * 20, 9)) / 20, 2)


def _sizes(review: SegmentReview) -> str:
    """``general-segment-3 (Recurring Shoppers): 1,155 → 438 members, -717 (-62%)``"""
    named = f"{review.id} ({review.name})" if review.name else review.id
    change = f"{review.delta:+,}"
    if review.share is not None:
        change += f" ({review.share:+.0%})"
    sizes = f"{named}: {review.before:,} → {review.after:,} members, {change}"
    if review.removed and review.added:
        sizes += f": {review.added:,} enter, {review.removed:,} leave"
    return sizes


def _segment_guards(target: str, review: SegmentReview, guards: Guards) -> Iterator[Refusal]:
    """The refusals of one segment's guards (none for a segment deleted or forgotten on
    purpose, nor for one whose members do not change)."""
    if review.status not in _GUARDED:
        return
    if not (review.added or review.removed or review.status is SegmentStatus.CREATED):
        return
    guard = guards.of(review.id)
    where = guards.where.get(review.id, "")
    on = f"on segment {review.id}" + (f" ({where})" if where else "")

    def refusal(rule: str, over: str, setting: str) -> Refusal:
        return Refusal(
            target,
            review.id,
            rule,
            f"target {target!r}: {_sizes(review)}, {over}",
            f"add `guards: {{{rule}: {setting}}}` {on}, or {FORCE}",
        )

    large = review.before >= guard.min_existing
    limit = guard.max_removed_share
    if large and limit is not None and review.removed / review.before > limit:
        share = review.removed / review.before
        left = (
            "" if review.removed == -review.delta else f"{review.removed:,} ({share:.0%}) leave, "
        )
        over = f"{left}over its {limit:.0%} removal guard"
        yield refusal("max_removed_share", over, str(_above(share)))
    limit = guard.max_growth_share
    if large and limit is not None and review.delta / review.before > limit:
        share = review.delta / review.before
        yield refusal("max_growth_share", f"over its {limit:.0%} growth guard", str(_above(share)))
    least = guard.min_members
    if least is not None and review.after < least:
        yield refusal(
            "min_members",
            f"under its minimum of {least:,} members",
            f"{review.after} (or null, for none)",
        )


def enforce(plan: TargetPlan, *, force: bool = False) -> list[str]:
    """What apply does with a target's verdict: raise :class:`UnsafePlanError` with every
    refusal that stands (``force`` accepts the forceable ones; never ``prevent_destroy``);
    return a note per refusal accepted by ``force``."""
    verdict = plan.verdict
    if force and not verdict.forced:
        verdict = dataclasses.replace(verdict, forced=True)
    if verdict.blocking:
        raise UnsafePlanError(_refused(verdict.blocking))
    return [f"forced: {r.message}" for r in verdict.refusals]


def _refused(refusals: tuple[Refusal, ...]) -> str:
    """The one message of an :class:`UnsafePlanError`: each refusal and how to accept it."""
    return "; ".join(f"{r.message} (to accept: {r.accept})" for r in refusals)


def check_endpoints(
    saved: Plan, plan_file: Path | str, now: Mapping[str, Endpoint], *, given: str = ""
) -> None:
    """Refuse to apply ``saved`` anywhere else than where each target was planned; ``now``:
    target → where this apply would go; ``given``: the config this apply uses, if named."""
    for t in saved.targets:
        here = now.get(t.target)
        if here is None or t.planned_at is None or here == t.planned_at:
            continue
        raise StalePlanError(
            f"{plan_file}: target {t.target!r} was planned against {t.planned_at.describe()}, "
            f"but this apply would go to {here.describe()}; {t.planned_at.how()} "
            "(or run `reconcile plan --out` again for where it should go)"
        )


def check_config(saved: Plan, plan_file: Path | str, config: Path, digest: str) -> None:
    """Refuse a config given explicitly (``--config``) that is not the one planned from."""
    if digest != saved.config_digest:
        raise StalePlanError(
            f"{plan_file}: {config} is not the config the plan was made from (digest "
            f"{digest[:12]}, the plan's {saved.config_digest[:12]}, recorded as "
            f"{saved.config_path}); apply with that config, or run `reconcile plan --out` again"
        )


def check_fresh(saved: Plan, current: Plan, replan: str = REPLAN) -> None:
    """Refuse ``saved`` unless ``current`` (the plan of now, for the same targets) makes exactly
    the same changes; the message says what moved on (the config, a target's remote state) and
    how to plan again (``replan``, a command)."""
    if changes_digest(saved) == changes_digest(current):
        return
    reasons = []
    if saved.config_digest != current.config_digest:
        reasons.append("the config changed")
    now = {t.target: t.remote_fingerprint for t in current.targets}
    moved = [t.target for t in saved.targets if now.get(t.target) != t.remote_fingerprint]
    if moved:
        reasons.append(f"the remote state of {', '.join(moved)} changed")
    why = " and ".join(reasons) or "the changes differ"
    raise StalePlanError(
        f"the saved plan is stale: {why} since it was made, and the changes it would make are no "
        f"longer the same. Run `{replan}` again and review the new plan."
    )


def _key(r: Refusal) -> tuple[str, str, str]:
    return (r.target, r.segment or "", r.rule)


def check_verdict(saved: Plan, current: Plan, replan: str = REPLAN) -> None:
    """Refuse ``saved`` when the plan of now is judged otherwise than it was: a rule that
    refuses it now and did not then (a segment protected since), or one that no longer does
    (a guard raised in the config since). The verdict reviewed is the verdict applied."""
    was = {_key(r): r for r in saved.verdict.refusals}
    now = {_key(r): r for r in current.verdict.refusals}
    if was.keys() == now.keys():
        return
    moved = [f"now refused: {now[k].message}" for k in now.keys() - was.keys()]
    moved += [f"no longer refused: {was[k].message}" for k in was.keys() - now.keys()]
    raise StalePlanError(
        f"the saved plan is stale: its safety verdict is not the verdict of now "
        f"({'; '.join(sorted(moved))}). Run `{replan}` again and review the new plan."
    )
