"""The model: Segment and State values, and what StateBuilder makes of its input."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.model import EMPTY, Segment, State, StateBuilder


def _state() -> State:
    return (
        StateBuilder()
        .add_segment(Segment("a", "Alpha", "the alphas"))
        .add_segment(Segment("b", "Beta"))
        .set_access("a", ["t1", "t2", "t1"])
        .add_customers(["c1", "c2", "c3"])
        .set_links("c1", ["a", "b"])
        .set_links("c2", ["b"])
        .build()
    )


def test_a_segment_is_a_value() -> None:
    assert Segment("a", "Alpha") == Segment("a", "Alpha", "")
    assert Segment("a", "Alpha") != Segment("a", "Alpha", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Segment("a", "Alpha").name = "Other"  # type: ignore[misc]


def test_an_empty_state() -> None:
    state = StateBuilder().build()
    assert state == State()
    assert dict(state.segments) == {}
    assert state.customers == EMPTY
    assert state.link_count() == 0
    assert state.members_by_segment() == {}


def test_the_builder_gives_the_state_it_was_told() -> None:
    state = _state()
    assert dict(state.segments) == {
        "a": Segment("a", "Alpha", "the alphas"),
        "b": Segment("b", "Beta"),
    }
    assert dict(state.access) == {"a": {"t1", "t2"}}
    assert state.customers == {"c1", "c2", "c3"}
    assert dict(state.links) == {"c1": {"a", "b"}, "c2": {"b"}}
    assert state.members("b") == {"c1", "c2"}
    assert state.members("nope") == EMPTY
    assert state.members_by_segment() == {"a": {"c1"}, "b": {"c1", "c2"}}
    assert state.link_count() == 3


def test_the_built_state_is_read_only_and_detached_from_the_builder() -> None:
    builder = StateBuilder().add_segment(Segment("a", "Alpha"))
    state = builder.build()
    builder.add_segment(Segment("b", "Beta"))
    assert list(state.segments) == ["a"]
    with pytest.raises(TypeError):
        state.segments["x"] = Segment("x", "X")  # type: ignore[index]


def test_identical_segment_sets_are_one_object() -> None:
    builder = StateBuilder().set_links("c1", ["a", "b"]).set_links("c2", ["b", "a"])
    builder.add_link("c3", "a").add_link("c3", "b").add_link("c3", "b")
    state = builder.build()
    assert state.links["c1"] is state.links["c2"] is state.links["c3"]


def test_an_empty_link_set_removes_the_customer_from_links() -> None:
    state = StateBuilder().set_links("c1", ["a"]).set_links("c1", []).build()
    assert dict(state.links) == {}


def test_set_links_many_reads_each_distinct_key_once() -> None:
    calls: list[str] = []

    def split(key: str) -> list[str]:
        calls.append(key)
        return key.split(",") if key else []

    rows = [("c1", "a,b"), ("c2", "a,b"), ("c3", ""), ("c4", "b")]
    state = StateBuilder().set_links("c3", ["x"]).set_links_many(rows, split).build()
    assert sorted(calls) == ["", "a,b", "b"]
    assert dict(state.links) == {"c1": {"a", "b"}, "c2": {"a", "b"}, "c4": {"b"}}
    assert state.links["c1"] is state.links["c2"]


def test_restricted_to_keeps_only_those_segments() -> None:
    state = _state().restricted_to(["b"])
    assert list(state.segments) == ["b"]
    assert dict(state.access) == {}
    assert state.customers == {"c1", "c2", "c3"}
    assert dict(state.links) == {"c1": {"b"}, "c2": {"b"}}
