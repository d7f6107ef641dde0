"""The review as a value of the plan: each segment's status, sizes, samples and overlap from
one tally, refused when the link changes do not add up; the review and the verdict in the plan
file (format 3, and format 2 read with an empty review); definitions in the state store."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.exceptions import PlanError
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import (
    Capabilities,
    Definition,
    Overview,
    Plan,
    Refusal,
    RemoteState,
    SegmentStatus,
    Source,
    Verdict,
    build_target_plan,
    plan_dict,
    plan_from_dict,
    plan_from_json,
    plan_json,
)
from reconciler.plan._sizes import Sizes, Tally
from reconciler.plan.changes import Action, Phase, SegmentChange
from reconciler.plan.diff import Ownership
from reconciler.statestore import StateStore

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text())
CAPS = Capabilities(batch_size=dict.fromkeys(Phase, 10))
TEAM = "a5166fc4-f874-4741-a721-c05ffd9941a5"


def _states() -> tuple[State, State]:
    """Remote: keep (c0..c9), renamed (c0..c4), access, gone (c5..c9), forgot (c0..c2).
    Desired: keep loses c8, c9 and gains n0, n1; renamed, access (new team), new (c0..c3)."""
    d, r = StateBuilder(), StateBuilder()
    for seg, name in [("keep", "K"), ("renamed", "R2"), ("access", "A"), ("new", "N")]:
        d.add_segment(Segment(seg, name))
    for seg, name in [("keep", "K"), ("renamed", "R"), ("access", "A")]:
        r.add_segment(Segment(seg, name))
    r.add_segment(Segment("gone", "G")).add_segment(Segment("forgot", "F"))
    d.set_access("access", [TEAM])
    r.set_access("access", [])
    have: dict[str, list[str]] = {}
    want: dict[str, list[str]] = {}
    for i in range(10):
        cid = f"c{i}"
        have[cid] = ["keep", *(["renamed"] if i < 5 else ["gone"]), *(["forgot"] if i < 3 else [])]
        want[cid] = [
            *(["keep"] if i < 8 else []),
            *(["renamed"] if i < 5 else []),
            *(["new"] if i < 4 else []),
        ]
    want["n0"], want["n1"] = ["keep"], ["keep", "new"]
    for cid, segs in have.items():
        r.add_customers([cid]).set_links(cid, segs)
    for cid, segs in want.items():
        d.add_customers([cid]).set_links(cid, segs)
    return d.build(), r.build()


def _target(**kw: object) -> Plan:
    desired, remote = _states()
    tp = build_target_plan(
        "t",
        "epsilon",
        CAPS,
        desired,
        RemoteState(remote, {Phase.LINKS: Source.LIVE}),
        Ownership(
            managed=frozenset({"keep", "renamed", "access", "gone", "forgot"}),
            forget=frozenset({"forgot"}),
        ),
        **kw,  # type: ignore[arg-type]
    )
    return Plan("audiences.yaml", "0" * 64, (tp,))


def test_each_segment_has_its_status_sizes_samples_and_overlap() -> None:
    (tp,) = _target().targets
    got = {r.id: (r.status, r.before, r.after, r.added, r.removed) for r in tp.review}
    assert got == {
        "access": (SegmentStatus.UPDATED, 0, 0, 0, 0),
        "forgot": (SegmentStatus.FORGOTTEN, 3, 3, 0, 0),
        "gone": (SegmentStatus.DELETED, 5, 0, 0, 5),
        "keep": (SegmentStatus.MEMBERS, 10, 10, 2, 2),
        "new": (SegmentStatus.CREATED, 0, 5, 5, 0),
        "renamed": (SegmentStatus.RENAMED, 5, 5, 0, 0),
    }
    by_id = {r.id: r for r in tp.review}
    assert set(by_id["keep"].entering) == {"n0", "n1"}
    assert set(by_id["keep"].leaving) == {"c8", "c9"}
    assert len(by_id["new"].entering) == 5
    assert set(by_id["gone"].leaving) <= {f"c{i}" for i in range(5, 10)}
    # overlap after the plan, for the segments that change: keep ∩ new = c0..c3, n1
    assert by_id["new"].overlap == {"keep": 5, "renamed": 4}
    assert by_id["keep"].overlap == {"new": 5, "renamed": 5}
    assert by_id["gone"].overlap == {}
    assert sum(r.removed for r in tp.review) == tp.counts.links_remove
    assert sum(r.added for r in tp.review) == tp.counts.links_add


def test_samples_are_salted_per_segment_and_repeat() -> None:
    first, second = _target().targets[0].review, _target().targets[0].review
    assert [r.entering for r in first] == [r.entering for r in second]
    many = StateBuilder().add_segment(Segment("a", "A")).add_segment(Segment("b", "B"))
    for i in range(200):
        many.add_customers([f"x{i:03}"]).set_links(f"x{i:03}", ["a", "b"])
    tp = build_target_plan(
        "t", "epsilon", CAPS, many.build(), RemoteState(State(), {}), Ownership()
    )
    a, b = tp.review
    assert len(a.entering) == len(b.entering) == 5
    assert a.entering != b.entering  # another salt, other customers
    assert list(a.entering) != sorted(f"x{i:03}" for i in range(200))[:5]


def test_a_tally_that_does_not_add_up_to_the_link_changes_is_refused() -> None:
    desired, remote = _states()
    tally = Tally.of_states(desired, remote, {"keep", "renamed", "access", "gone", "forgot"})
    tally.add("", "keep", 3)  # three members the link changes do not have
    overview = Overview("0" * 32, {}, 0, tally)
    with pytest.raises(PlanError, match=r"target t: the per-segment sizes do not add up.*keep"):
        _target(overview=overview)


def test_a_tally_counts_pairs_of_joined_lists() -> None:
    tally = Tally.of_rows(
        [("a\x1fb\x1ftheirs", "a", 1155), (None, "a\x1fc", 3), ("c", None, 2)], {"a", "b", "c"}
    )
    assert tally.sizes() == {
        "a": Sizes(1155, 1158, 3, 0),
        "b": Sizes(1155, 0, 0, 1155),
        "c": Sizes(2, 3, 3, 2),
    }
    tally.move("a", "a\x1fb", "a")  # one customer read live had already lost b
    assert tally.sizes()["b"] == Sizes(1154, 0, 0, 1154)
    assert tally.overlap(["c"]) == {"c": {"a": 3}}


def test_the_review_and_the_verdict_round_trip_through_the_plan_file() -> None:
    definitions = {"keep": Definition("members: {}\n", "members: {ids: [n0]}\n")}
    plan = _target(definitions=definitions)
    refusal = Refusal("t", "keep", "max_removed_share", "keep: 10 → 8", "--force")
    (tp,) = plan.targets
    tp = dataclasses.replace(tp, verdict=Verdict((refusal,), forced=True))
    plan = dataclasses.replace(plan, targets=(tp,))
    data = json.loads(plan_json(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["format_version"] == 3
    (target,) = data["targets"]
    keep = next(s for s in target["segments"] if s["id"] == "keep")
    assert keep["members_before"] == 10
    assert keep["definition"] == {"applied": "members: {}\n", "declared": "members: {ids: [n0]}\n"}
    assert target["verdict"] == {
        "safe": True,
        "forced": True,
        "refusals": [
            {
                "segment": "keep",
                "rule": "max_removed_share",
                "message": "keep: 10 → 8",
                "accept": "--force",
                "forceable": True,
            }
        ],
    }
    assert data["verdict"]["refusals"][0]["target"] == "t"
    again = plan_from_json(plan_json(plan))
    assert again == plan
    assert again.targets[0].review == tp.review
    assert again.verdict == plan.verdict


def test_a_format_2_plan_reads_with_an_empty_review() -> None:
    data = plan_dict(_target())
    data["format_version"] = 2
    del data["verdict"]
    for target in data["targets"]:
        del target["segments"], target["verdict"]
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    old = plan_from_dict(data)
    assert old.targets[0].review == ()
    assert old.targets[0].verdict == Verdict()
    assert old.targets[0].changes == _target().targets[0].changes


def test_a_review_of_the_wrong_type_is_one_plan_error() -> None:
    data = plan_dict(_target())
    data["targets"][0]["segments"][0]["members_before"] = -1
    with pytest.raises(PlanError, match="members_before: expected a count"):
        plan_from_dict(data)


def test_definitions_are_kept_per_target_and_dropped_with_their_segment(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.set_definitions("t", {"b": "name: B\n", "a": "name: A\n"})
    store.set_definitions("u", {"a": "name: other\n"})
    assert store.definitions("t") == {"a": "name: A\n", "b": "name: B\n"}
    store.record("t", [SegmentChange(Action.DELETE, "a", Segment("a", "A"), None)])
    assert store.definitions("t") == {"b": "name: B\n"}
    assert store.definitions("u") == {"a": "name: other\n"}
    store.set_definitions("t", {"c": "name: C\n"})
    assert store.definitions("t") == {"c": "name: C\n"}
