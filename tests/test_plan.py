"""The plan value: build from capabilities, JSON both ways, schema, safety, renderers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from _schema import assert_valid

from reconciler.exceptions import PlanError, UnsafePlanError
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import (
    Capabilities,
    Guard,
    Guards,
    Plan,
    RemoteState,
    Safety,
    Source,
    build_target_plan,
    changes_digest,
    enforce,
    fingerprint,
    judge,
    plan_from_json,
    plan_json,
)
from reconciler.plan.changes import Action, Phase
from reconciler.plan.diff import Ownership
from reconciler.render import GITHUB_COMMENT_LIMIT, render_markdown, render_text, summary_line

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text())
CAPS = Capabilities(
    batch_size={p: 1 for p in Phase},
    unsupported={(Phase.SEGMENTS, Action.UPDATE): "cannot rename"},
    caveats={(Phase.SEGMENTS, Action.DELETE): "delete keeps the segment"},
)


def desired_and_remote() -> tuple[State, State]:
    d = StateBuilder()
    d.add_segment(Segment("a", "A")).add_segment(Segment("b", "B new"))
    d.set_access("a", ["a5166fc4-f874-4741-a721-c05ffd9941a5"])
    for i in range(5):
        d.add_customers([f"c{i}"]).set_links(f"c{i}", ["a"])
    r = StateBuilder()
    r.add_segment(Segment("b", "B")).add_segment(Segment("gone", "G"))
    r.add_customers(["c0"]).set_links("c0", ["gone", "theirs"])
    return d.build(), r.build()


def make_plan() -> Plan:
    desired, remote = desired_and_remote()
    tp = build_target_plan(
        "eps",
        "epsilon",
        CAPS,
        desired,
        RemoteState(remote, {Phase.SEGMENTS: Source.STATE_STORE, Phase.LINKS: Source.LIVE}),
        Ownership(managed=frozenset({"b", "gone"})),
    )
    return Plan("audiences.yaml", "0" * 64, (tp,))


def test_capabilities_turn_unsupported_changes_into_warnings() -> None:
    plan = make_plan()
    tp = plan.targets[0]
    assert all(not (c.phase is Phase.SEGMENTS and c.action is Action.UPDATE) for c in tp.changes)
    assert any("cannot rename" in w and "b" in w for w in tp.warnings)
    assert any("delete keeps the segment" in w and "gone" in w for w in tp.warnings)
    assert tp.sources == {"segments": "state store", "links": "live read"}


def test_plan_round_trips_through_json_and_matches_the_schema() -> None:
    plan = make_plan()
    data = json.loads(plan_json(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    again = plan_from_json(plan_json(plan))
    assert again == plan
    assert changes_digest(again) == changes_digest(plan)


def test_what_the_platform_never_does_is_a_caveat_kept_in_the_plan_file() -> None:
    caps = Capabilities(
        batch_size={p: 1 for p in Phase},
        phases=frozenset({Phase.SEGMENTS, Phase.LINKS}),
        segment_fields=("name",),
    )
    desired = StateBuilder().add_segment(Segment("vip", "VIP", "the best"))
    desired.set_access("vip", ["t1"])
    tp = build_target_plan(
        "talon", "talonone", caps, desired.build(), RemoteState(State(), {}), Ownership()
    )
    assert tp.warnings == ()
    assert [c.split(":")[0] for c in tp.caveats] == [
        "this target has no segment descriptions",
        "this target has no access control",
    ]
    data = json.loads(plan_json(Plan("a.yaml", "0" * 64, (tp,))))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["targets"][0]["caveats"] == list(tp.caveats)
    assert plan_from_json(json.dumps(data)).targets[0].caveats == tp.caveats


def test_malformed_plan_files_are_refused() -> None:
    with pytest.raises(PlanError, match="not a valid plan file"):
        plan_from_json("{nope")
    with pytest.raises(PlanError, match="format version 9"):
        plan_from_json(json.dumps({"format_version": 9}))


def test_summary_line_names_each_object_for_what_it_is() -> None:
    plan = make_plan()
    assert summary_line(plan) == (
        "Plan: 1 segment to create, 1 to delete; 1 access list to change; "
        "4 customer records to create; 5 memberships to add, 1 to remove."
    )


def test_fingerprint_is_order_independent_and_content_sensitive() -> None:
    a = StateBuilder().set_links("c1", ["x"]).set_links("c2", ["y"]).build()
    b = StateBuilder().set_links("c2", ["y"]).set_links("c1", ["x"]).build()
    c = StateBuilder().set_links("c2", ["x"]).set_links("c1", ["y"]).build()
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def big_removal_plan(protected: tuple[str, ...] = ()) -> Plan:
    remote = StateBuilder().add_segment(Segment("s", "S"))
    for i in range(100):
        remote.set_links(f"c{i}", ["s"])
    desired = StateBuilder().add_segment(Segment("s", "S"))
    for i in range(60):
        desired.set_links(f"c{i}", ["s"])
    tp = build_target_plan(
        "t",
        "epsilon",
        CAPS,
        desired.build(),
        RemoteState(remote.build(), {}),
        Ownership(managed=frozenset({"s"})),
        protected=protected,
    )
    return Plan("a.yaml", "0" * 64, (tp,))


def test_safety_threshold_refuses_then_force_allows() -> None:
    tp = big_removal_plan().targets[0]
    tp = dataclasses.replace(tp, verdict=judge(tp, Guards(Safety())))
    with pytest.raises(UnsafePlanError, match=r"removes 40 of 100 links \(40.0%\).*by 10.0%"):
        enforce(tp)
    notes = enforce(tp, force=True)
    assert len(notes) == 2  # the target's links, and segment s's own removal guard
    assert all(n.startswith("forced: ") for n in notes)
    relaxed = judge(tp, Guards(Safety(max_delete_share=0.5, guards=Guard(max_removed_share=0.5))))
    assert enforce(dataclasses.replace(tp, verdict=relaxed)) == []


def test_prevent_destroy_holds_even_with_force() -> None:
    remote = StateBuilder().add_segment(Segment("keep", "K")).build()
    tp = build_target_plan(
        "t",
        "epsilon",
        CAPS,
        State(),
        RemoteState(remote, {}),
        Ownership(managed=frozenset({"keep"})),
        protected=("keep",),
    )
    tp = dataclasses.replace(tp, verdict=judge(tp, Guards()))
    with pytest.raises(UnsafePlanError, match="prevent_destroy: keep"):
        enforce(tp, force=True)


def test_text_render_marks_and_summarises() -> None:
    text = render_text(make_plan())
    assert "+ segment a" in text
    assert "Plan: 1 segment to create" in text
    assert "Warning" in text


def test_markdown_of_a_huge_plan_fits_a_github_comment() -> None:
    desired = StateBuilder().add_segment(Segment("s", "S"))
    for i in range(100_000):
        desired.set_links(f"customer-{i:06d}", ["s"])
    tp = build_target_plan(
        "t", "epsilon", CAPS, desired.build(), RemoteState(State(), {}), Ownership()
    )
    md = render_markdown(Plan("a.yaml", "0" * 64, (tp,)))
    assert len(md) < GITHUB_COMMENT_LIMIT
    assert "100,000 memberships to add" in md
    assert "reconcile plan --format json" in md
    assert "<details>" in md


def test_the_compiled_validator_refuses_what_jsonschema_refuses_in_a_plan() -> None:
    """The tests check large plans with the compiled validator (``_schema``): it passes this
    plan as jsonschema does, and refuses each of its mutations as jsonschema does."""
    data = json.loads(plan_json(make_plan()))
    target = data["targets"][0]
    mutations = [
        {**data, "format_version": "one"},
        {k: v for k, v in data.items() if k != "targets"},
        {**data, "targets": [{**target, "changes": [{**target["changes"][0], "action": "x"}]}]},
        {**data, "targets": [{**target, "sources": {"links": 3}}]},
        {**data, "targets": [{**target, "extra": True}]},
    ]
    reference = jsonschema.Draft202012Validator(SCHEMA)
    reference.validate(data)
    assert_valid(SCHEMA, data)
    for document in mutations:
        assert not reference.is_valid(document)
        with pytest.raises(AssertionError):
            assert_valid(SCHEMA, document)
