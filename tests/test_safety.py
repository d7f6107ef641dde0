"""The verdict a plan carries: every rule apply enforces, decided when the plan is built, each
refusal naming the segment, its sizes and the way to accept it; and the guards' settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler.config import load
from reconciler.exceptions import StalePlanError, UnsafePlanError
from reconciler.plan import (
    Guard,
    Guards,
    Plan,
    Safety,
    SegmentReview,
    SegmentStatus,
    TargetPlan,
    check_verdict,
    enforce,
    judge,
)
from reconciler.plan.changes import Action, LinkChange, SegmentChange


def review(
    before: int,
    after: int,
    *,
    added: int | None = None,
    removed: int | None = None,
    status: SegmentStatus = SegmentStatus.MEMBERS,
    id: str = "general-segment-3",
    name: str = "Recurring Shoppers",
) -> SegmentReview:
    """A segment's review; without ``added``/``removed``, the change is all one way."""
    added = max(after - before, 0) if added is None else added
    removed = max(before - after, 0) if removed is None else removed
    assert after == before + added - removed
    return SegmentReview(id, name, status, before, after, added, removed)


def target(*reviews: SegmentReview, changes: tuple[SegmentChange, ...] = ()) -> TargetPlan:
    return TargetPlan("eps", "epsilon", changes, review=reviews)


def guards(**segments: Guard) -> Guards:
    where = {s: f"audiences.yaml:{10 + i}" for i, s in enumerate(segments)}
    return Guards(Safety(), segments, where, "audiences.yaml:3")


def test_a_segment_shrinking_past_its_guard_is_refused_with_its_sizes_and_the_way_to_accept() -> (
    None
):
    verdict = judge(target(review(1155, 438)), guards())
    assert not verdict.safe
    (refusal,) = verdict.refusals
    assert refusal.rule == "max_removed_share"
    assert refusal.segment == "general-segment-3"
    assert refusal.message == (
        "target 'eps': general-segment-3 (Recurring Shoppers): 1,155 → 438 members, -717 (-62%), "
        "over its 30% removal guard"
    )
    assert refusal.accept == (
        "add `guards: {max_removed_share: 0.65}` on segment general-segment-3, "
        "or apply with --force"
    )
    assert refusal.forceable


def test_the_removal_guard_counts_who_leaves_not_the_net_change() -> None:
    # 400 leave and 350 enter: the segment barely shrinks, but 40% of its members change
    verdict = judge(target(review(1000, 950, added=350, removed=400)), guards())
    (refusal,) = verdict.refusals
    assert "1,000 → 950 members, -50 (-5%): 350 enter, 400 leave" in refusal.message
    assert "400 (40%) leave, over its 30% removal guard" in refusal.message
    assert "max_removed_share: 0.4}" in refusal.accept


def test_the_segments_own_guard_accepts_the_change_and_says_where() -> None:
    plan = target(review(1155, 438))
    assert judge(plan, guards(**{"general-segment-3": Guard(max_removed_share=0.65)})).safe
    tight = guards(**{"general-segment-3": Guard(max_removed_share=0.5)})
    (refusal,) = judge(plan, tight).refusals
    assert "over its 50% removal guard" in refusal.message
    assert "on segment general-segment-3 (audiences.yaml:10)" in refusal.accept
    assert judge(plan, guards(**{"general-segment-3": Guard(max_removed_share=None)})).safe


def test_small_segments_are_not_held_to_the_share_guards() -> None:
    assert judge(target(review(99, 1)), guards()).safe
    assert not judge(target(review(100, 1)), guards()).safe
    lowered = guards(**{"general-segment-3": Guard(min_existing=10)})
    assert not judge(target(review(99, 1)), lowered).safe


def test_growth_and_minimum_size_guards() -> None:
    growth = guards(**{"general-segment-3": Guard(max_growth_share=1.0)})
    assert judge(target(review(200, 400)), growth).safe  # doubling is exactly the limit
    (refusal,) = judge(target(review(200, 700)), growth).refusals
    assert refusal.rule == "max_growth_share"
    assert "200 → 700 members, +500 (+250%), over its 100% growth guard" in refusal.message
    assert "max_growth_share: 2.5}" in refusal.accept

    least = guards(**{"general-segment-3": Guard(min_members=50)})
    new = review(0, 20, status=SegmentStatus.CREATED)
    (refusal,) = judge(target(new), least).refusals
    assert refusal.rule == "min_members"
    assert "0 → 20 members, +20, under its minimum of 50 members" in refusal.message
    assert "min_members: 20 (or null, for none)}" in refusal.accept
    assert judge(target(review(0, 50, status=SegmentStatus.CREATED)), least).safe


def test_segments_deleted_on_purpose_or_unchanged_are_not_guarded() -> None:
    least = guards(**{"general-segment-3": Guard(min_members=50)})
    deleted = review(1000, 0, status=SegmentStatus.DELETED)
    assert judge(target(deleted), least).safe
    unchanged = review(10, 10, status=SegmentStatus.UNCHANGED)
    assert judge(target(unchanged), least).safe


def test_prevent_destroy_is_refused_at_plan_time_and_force_never_overrides_it() -> None:
    delete = SegmentChange(Action.DELETE, "keep", None)
    plan = dataclasses.replace(target(changes=(delete,)), protected=("keep",))
    plan = dataclasses.replace(plan, verdict=judge(plan, guards()))
    (refusal,) = plan.verdict.refusals
    assert (refusal.rule, refusal.segment, refusal.forceable) == ("prevent_destroy", "keep", False)
    assert "prevent_destroy: keep" in refusal.message
    assert "--force does not override it" in refusal.accept
    with pytest.raises(UnsafePlanError, match="prevent_destroy: keep"):
        enforce(plan, force=True)
    assert not dataclasses.replace(plan.verdict, forced=True).safe


def test_force_accepts_every_forceable_refusal_and_notes_each() -> None:
    plan = target(review(1155, 438), review(500, 100, id="s2", name="Two"))
    plan = dataclasses.replace(plan, verdict=judge(plan, guards()))
    with pytest.raises(UnsafePlanError) as refused:
        enforce(plan)
    assert "general-segment-3 (Recurring Shoppers)" in str(refused.value)
    assert "s2 (Two): 500 → 100 members" in str(refused.value)
    assert "to accept: add `guards: {max_removed_share: 0.65}`" in str(refused.value)
    notes = enforce(plan, force=True)
    assert [n.split(":")[0] for n in notes] == ["forced", "forced"]
    assert dataclasses.replace(plan.verdict, forced=True).safe


def test_the_target_thresholds_name_the_target_and_its_setting() -> None:
    removing = tuple(SegmentChange(Action.DELETE, f"s{i}", None) for i in range(2))
    plan = dataclasses.replace(target(changes=removing), existing={"segments": 5})
    assert judge(plan, guards()).safe  # 5 segments: fewer than min_existing (10)
    (refusal,) = judge(plan, Guards(Safety(min_existing=5), target_where="a.yaml:3")).refusals
    assert (refusal.rule, refusal.segment) == ("max_delete_share", None)
    assert refusal.message == (
        "target 'eps': unsafe plan: removes 2 of 5 segments (40.0%), over the 30% limit by 10.0%"
    )
    assert refusal.accept == (
        "raise `safety: {max_delete_share: 0.4}` on target eps (a.yaml:3), or apply with --force"
    )


def plan_of(*targets: TargetPlan) -> Plan:
    return Plan("a.yaml", "0" * 64, targets)


def test_a_saved_plan_judged_otherwise_now_is_stale() -> None:
    shrinking = target(review(1155, 438))
    refused = dataclasses.replace(shrinking, verdict=judge(shrinking, guards()))
    accepted = dataclasses.replace(
        shrinking,
        verdict=judge(shrinking, guards(**{"general-segment-3": Guard(max_removed_share=0.7)})),
    )
    check_verdict(plan_of(refused), plan_of(refused))
    with pytest.raises(StalePlanError, match="no longer refused: target 'eps': general-segment-3"):
        check_verdict(plan_of(refused), plan_of(accepted))
    with pytest.raises(StalePlanError, match=r"now refused: .*over its 30% removal guard"):
        check_verdict(plan_of(accepted), plan_of(refused))


GUARDED = """\
version: 1
targets:
  eps:
    type: epsilon-feed
    directory: feed
    safety:
      max_delete_share: 0.5
      guards: {max_removed_share: 0.2, min_members: 5}
  other:
    type: epsilon-feed
    directory: feed2
segments:
  - id: wide
    name: Wide
    members: {ids: [a]}
  - id: accepted
    name: Accepted
    guards: {max_removed_share: 0.7, min_members: null}
    members: {ids: [a]}
  - id: elsewhere
    name: Elsewhere
    targets: [other]
    members: {ids: [a]}
"""


def test_guards_are_read_per_target_and_overridden_per_segment(tmp_path: Path) -> None:
    path = tmp_path / "audiences.yaml"
    path.write_text(GUARDED)
    config = load(path)
    eps = config.guards("eps")
    assert eps.safety.max_delete_share == 0.5
    assert eps.of("wide") == Guard(max_removed_share=0.2, min_members=5)
    assert eps.of("accepted") == Guard(max_removed_share=0.7, min_members=None)
    assert eps.where["accepted"] == "audiences.yaml:16"  # where the segment is declared
    assert eps.target_where == "audiences.yaml:3"
    assert eps.accepting == {"accepted"}  # it sets its own max_removed_share
    assert "elsewhere" not in eps.segments
    other = config.guards("other")
    assert other.of("elsewhere") == Guard()  # the default: 30% of segments of 100 or more
    # on both targets (it names none): its own settings over each target's defaults
    assert other.of("accepted") == Guard(max_removed_share=0.7, min_members=None)
    assert other.of("wide") == Guard()


def test_removals_a_segments_own_guard_accepts_are_not_counted_again_for_the_target() -> None:
    shrinking = dataclasses.replace(
        target(review(1155, 438)),
        changes=tuple(
            LinkChange(f"c{i}", frozenset({"general-segment-3"}), frozenset()) for i in range(717)
        ),
        existing={"links": 2329},
    )
    rules = [r.rule for r in judge(shrinking, guards()).refusals]
    assert rules == ["max_delete_share", "max_removed_share"]
    own = Guard(max_removed_share=0.65)
    accepted = dataclasses.replace(
        guards(**{"general-segment-3": own}), accepting=frozenset({"general-segment-3"})
    )
    assert judge(shrinking, accepted).safe
    # a guard set on the segment but not high enough accepts nothing
    low = dataclasses.replace(
        guards(**{"general-segment-3": Guard(max_removed_share=0.5)}),
        accepting=frozenset({"general-segment-3"}),
    )
    rules = [r.rule for r in judge(shrinking, low).refusals]
    assert rules == ["max_delete_share", "max_removed_share"]
