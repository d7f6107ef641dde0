"""The diff: pure set algebra, ownership rules, unmanaged segments carried over."""

from __future__ import annotations

from reconciler.model import Segment, State, StateBuilder
from reconciler.plan.changes import AccessChange, Action, CustomerChange, LinkChange, SegmentChange
from reconciler.plan.diff import Ownership, diff, segment_fields


def state(
    segments: dict[str, str] | None = None,
    access: dict[str, list[str]] | None = None,
    customers: list[str] | None = None,
    links: dict[str, list[str]] | None = None,
) -> State:
    b = StateBuilder()
    for seg_id, name in (segments or {}).items():
        b.add_segment(Segment(seg_id, name))
    for seg_id, teams in (access or {}).items():
        b.set_access(seg_id, teams)
    b.add_customers(customers or [])
    for c, segs in (links or {}).items():
        b.set_links(c, segs)
    return b.build()


def test_in_sync_gives_no_changes() -> None:
    s = state({"a": "A"}, {"a": ["t"]}, ["c1"], {"c1": ["a"]})
    result = diff(s, s)
    assert result.changes == ()
    assert result.unchanged_links == 1


def test_empty_remote_creates_everything_in_phase_order() -> None:
    desired = state({"a": "A"}, {"a": ["t1"]}, ["c1", "c2"], {"c1": ["a"], "c2": ["a"]})
    changes = diff(desired, State()).changes
    assert [(c.phase.value, c.action.value, c.key) for c in changes] == [
        ("segments", "create", "a"),
        ("access", "create", "a"),
        ("customers", "create", "c1"),
        ("customers", "create", "c2"),
        ("links", "update", "c1"),
        ("links", "update", "c2"),
    ]


def test_links_to_unmanaged_segments_are_carried_over() -> None:
    desired = state({"a": "A"}, customers=["c1"], links={"c1": ["a"]})
    remote = state({"a": "A"}, customers=["c1"], links={"c1": ["other-team-segment"]})
    (change,) = diff(desired, remote).changes
    assert isinstance(change, LinkChange)
    assert change.after == {"a", "other-team-segment"}
    assert change.added == {"a"}
    assert change.removed == frozenset()


def test_removed_member_loses_only_the_managed_segment() -> None:
    desired = state({"a": "A"})
    remote = state({"a": "A"}, links={"c1": ["a", "x"]})
    (change,) = diff(desired, remote).changes
    assert change == LinkChange("c1", frozenset({"a", "x"}), frozenset({"x"}))


def test_segment_removed_from_config_is_deleted_when_managed_after_its_links() -> None:
    desired = state({"a": "A"})
    remote = state({"a": "A", "old": "O"}, {"old": ["t"]}, ["c1"], {"c1": ["old", "a"]})
    changes = diff(desired, remote, Ownership(managed=frozenset({"a", "old"}))).changes
    kinds = [(c.phase.value, c.action.value, c.key) for c in changes]
    assert kinds == [
        ("links", "update", "c1"),
        ("access", "delete", "old"),
        ("segments", "delete", "old"),
    ]


def test_unmanaged_remote_segments_are_listed_and_left_alone() -> None:
    remote = state({"theirs": "T"}, links={"c1": ["theirs"]})
    result = diff(State(), remote)
    assert result.changes == ()
    assert result.unmanaged == ("theirs",)


def test_prune_deletes_only_marked_segments_with_the_prefix() -> None:
    remote = state({"aud-1": "1", "aud-2": "2", "other": "3"})
    own = Ownership(marked=frozenset({"aud-1", "other"}), prune=True, prune_prefix="aud-")
    result = diff(State(), remote, own)
    assert [c.key for c in result.changes] == ["aud-1"]
    assert result.unmanaged == ("aud-2", "other")


def test_forget_stops_managing_without_deleting() -> None:
    remote = state({"old": "O"}, links={"c1": ["old"]})
    result = diff(State(), remote, Ownership(managed=frozenset({"old"}), forget=frozenset({"old"})))
    assert [(c.action, c.key) for c in result.changes] == [(Action.FORGET, "old")]


def test_a_forgotten_segment_is_then_unmanaged_and_never_pruned() -> None:
    remote = state({"old": "O"}, links={"c1": ["old"]})
    own = Ownership(forget=frozenset({"old"}), marked=frozenset({"old"}), prune=True)
    result = diff(State(), remote, own)
    assert result.changes == ()
    assert result.unmanaged == ("old",)


def test_rename_is_an_update_naming_the_field() -> None:
    result = diff(state({"a": "New"}), state({"a": "Old"}))
    (change,) = result.changes
    assert isinstance(change, SegmentChange)
    assert change.action is Action.UPDATE
    assert change.fields == ("name",)
    assert segment_fields(Segment("a", "x", "d1"), Segment("a", "y", "d2")) == (
        "description",
        "name",
    )


def test_access_change_and_clear() -> None:
    desired = state({"a": "A", "b": "B"}, {"a": ["t1", "t2"]})
    remote = state({"a": "A", "b": "B"}, {"a": ["t1"], "b": ["t9"]})
    changes = diff(desired, remote).changes
    assert changes == (
        AccessChange(Action.UPDATE, "a", frozenset({"t1"}), frozenset({"t1", "t2"})),
        AccessChange(Action.UPDATE, "b", frozenset({"t9"}), frozenset()),
    )


def test_targets_without_access_or_customers_skip_those_phases() -> None:
    desired = state({"a": "A"}, {"a": ["t1"]}, ["c1"], {"c1": ["a"]})
    changes = diff(desired, state({"a": "A"}), access=False, customers=False).changes
    assert [c.phase.value for c in changes] == ["links"]


def test_existing_customers_are_not_created_again() -> None:
    desired = state(customers=["c1", "c2"])
    changes = diff(desired, state(customers=["c1", "c3"])).changes
    assert changes == (CustomerChange(Action.CREATE, "c2"),)
