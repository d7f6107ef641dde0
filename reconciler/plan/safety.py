"""What keeps a plan from doing harm: how much of a target it may remove, ``prevent_destroy``,
and the refusal of a saved plan that is stale or meant for somewhere else.

These are the core's rules, for every caller (``Reconciler.apply`` and ``Reconciler.replan`` run
them); a command only reports what they raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import StalePlanError, UnsafePlanError
from .changes import Action, SegmentChange
from .definition import Plan, TargetPlan
from .endpoint import Endpoint
from .planfile import changes_digest

__all__ = ["Safety", "check_config", "check_endpoints", "check_fresh", "check_safety"]

#: how a stale plan's message says to make a new one, unless the caller says better
REPLAN = "reconcile plan --out"


@dataclass(frozen=True, slots=True)
class Safety:
    """octoDNS-style limits on how much of a target one plan may remove."""

    max_delete_share: float = 0.30
    min_existing: int = 10


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
