"""Changes: the four phases, the execution order of STEPS, removals after links, reversed."""

from __future__ import annotations

import pytest

from reconciler.model import Segment
from reconciler.plan.changes import (
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


def test_the_phases_in_order() -> None:
    assert [p.value for p in Phase] == ["segments", "access", "customers", "links"]
    assert [a.value for a in Action] == ["create", "update", "delete", "forget"]


def test_steps_upsert_phase_by_phase_then_links_then_removals_reversed() -> None:
    upsert = {Action.CREATE, Action.UPDATE}
    remove = {Action.DELETE, Action.FORGET}
    assert [(s.phase, set(s.actions)) for s in STEPS] == [
        (Phase.SEGMENTS, upsert),
        (Phase.ACCESS, upsert),
        (Phase.CUSTOMERS, upsert),
        (Phase.LINKS, {Action.UPDATE}),
        (Phase.CUSTOMERS, remove),
        (Phase.ACCESS, remove),
        (Phase.SEGMENTS, remove),
    ]
    removals = [s.phase for s in STEPS if Action.DELETE in s.actions]
    creations = [s.phase for s in STEPS if Action.CREATE in s.actions]
    assert removals == creations[::-1]


def test_step_names_mark_removals() -> None:
    assert [s.name for s in STEPS] == [
        "segments",
        "access",
        "customers",
        "links",
        "customers (removals)",
        "access (removals)",
        "segments (removals)",
    ]
    assert Step(Phase.SEGMENTS, frozenset({Action.FORGET})).name == "segments (removals)"


@pytest.mark.parametrize(
    ("change", "index"),
    [
        (SegmentChange(Action.CREATE, "s", after=Segment("s", "S")), 0),
        (SegmentChange(Action.UPDATE, "s", fields=("name",)), 0),
        (AccessChange(Action.UPDATE, "s", after=frozenset({"t"})), 1),
        (CustomerChange(Action.CREATE, "c"), 2),
        (LinkChange("c", frozenset(), frozenset({"s"})), 3),
        (CustomerChange(Action.DELETE, "c"), 4),
        (AccessChange(Action.DELETE, "s", before=frozenset({"t"})), 5),
        (SegmentChange(Action.DELETE, "s"), 6),
        (SegmentChange(Action.FORGET, "s"), 6),
    ],
)
def test_step_of_each_kind_of_change(change: Change, index: int) -> None:
    assert step_of(change) == index


def test_a_segment_is_emptied_before_it_is_deleted() -> None:
    unlink = LinkChange("c", frozenset({"s"}), frozenset())
    delete = SegmentChange(Action.DELETE, "s")
    revoke = AccessChange(Action.DELETE, "s", before=frozenset({"t"}))
    assert step_of(unlink) < step_of(revoke) < step_of(delete)


def test_a_link_change_is_an_update_with_its_difference() -> None:
    change = LinkChange("c", frozenset({"a", "b"}), frozenset({"b", "c"}))
    assert change.action is Action.UPDATE
    assert change.phase is Phase.LINKS
    assert change.added == {"c"}
    assert change.removed == {"a"}


def test_changes_are_values() -> None:
    assert CustomerChange(Action.CREATE, "c") == CustomerChange(Action.CREATE, "c")
    assert hash(AccessChange(Action.CREATE, "s")) == hash(AccessChange(Action.CREATE, "s"))
    with pytest.raises(AttributeError):
        CustomerChange(Action.CREATE, "c").key = "d"  # type: ignore[misc]
