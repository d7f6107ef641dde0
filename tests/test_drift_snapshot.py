"""The state store's snapshot against a full live read (pure): snapshot_drift, refreshed_state,
store_changes."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.drift import refreshed_state, snapshot_drift, store_changes
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import RemoteState, Source
from reconciler.plan.changes import Phase

SETTINGS = settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: what an Epsilon read says: membership live, segments and access from the state store
EPSILON = {
    Phase.SEGMENTS: Source.STATE_STORE,
    Phase.ACCESS: Source.STATE_STORE,
    Phase.CUSTOMERS: Source.LIVE,
    Phase.LINKS: Source.LIVE,
}
#: what a Talon.One read says: audiences and members live, no access or customer phase
TALONONE = {Phase.SEGMENTS: Source.LIVE, Phase.LINKS: Source.LIVE}


def epsilon_last() -> State:
    b = StateBuilder()
    b.add_segment(Segment("s", "Shoppers", "As in the YAML.")).set_access("s", ["team-1"])
    b.add_segment(Segment("t", "Travellers", "As in the YAML."))
    b.add_customers(["c1", "c2", "c3", "c4"])
    b.set_links("c1", ["s"]).set_links("c2", ["s", "t"]).set_links("c3", ["t"])
    return b.build()


def epsilon_live() -> RemoteState:
    b = StateBuilder()
    # the read carries the state store's segments and access: nothing to compare there
    b.add_segment(Segment("s", "Shoppers", "As in the YAML.")).set_access("s", ["team-1"])
    b.add_segment(Segment("t", "Travellers", "As in the YAML."))
    b.add_customers(["c1", "c2", "c4", "c5", "c6"])
    b.set_links("c1", ["s", "other-team"])  # a segment the reconciler does not manage
    b.set_links("c2", ["s"])  # left t on the platform
    b.set_links("c5", ["s"])  # created and linked on the platform
    b.set_links("c6", ["other-team"])
    return RemoteState(b.build(), EPSILON)


def test_epsilon_membership_is_compared_and_segments_are_not() -> None:
    report = snapshot_drift(epsilon_last(), epsilon_live(), target="eps")
    assert report.target == "eps"
    assert report.checked == ("customers", "links")
    assert report.not_checked == {"segments": "state store", "access": "state store"}
    assert set(report.found) == {"customers"}
    customers = report.found["customers"]
    assert (customers["missing"].count, customers["missing"].examples) == (1, ("c3",))
    assert (customers["unknown"].count, customers["unknown"].examples) == (2, ("c5", "c6"))
    # c1's extra link is to a segment the reconciler does not manage: not a stale record
    assert (customers["differ"].count, customers["differ"].examples) == (1, ("c2",))
    assert customers["differ"].details == {"c2": (["s", "t"], ["s"])}
    assert not report.in_sync
    assert report.counts() == {
        "customers.missing": 1,
        "customers.unknown": 2,
        "customers.differ": 1,
    }


def test_every_segment_counts_when_asked() -> None:
    report = snapshot_drift(epsilon_last(), epsilon_live(), managed_only=False)
    differ = report.found["customers"]["differ"]
    assert differ.examples == ("c1", "c2")
    assert differ.details["c1"] == (["s"], ["other-team", "s"])


def test_a_change_on_the_platform_equal_to_the_desired_state_is_still_found() -> None:
    # the config dropped c1 from s, and someone did the same by hand: no change is pending,
    # but the state store still says c1 is in s
    last = epsilon_last()
    b = StateBuilder().add_customers(last.customers)
    for customer, segs in last.links.items():
        if customer != "c1":
            b.set_links(customer, segs)
    report = snapshot_drift(last, RemoteState(b.build(), EPSILON))
    assert report.counts() == {"customers.differ": 1}
    assert report.found["customers"]["differ"].details == {"c1": (["s"], [])}


def test_as_dict_is_json_with_one_entry_per_area_checked() -> None:
    body = json.loads(json.dumps(snapshot_drift(epsilon_last(), epsilon_live()).as_dict()))
    assert body == {
        "in_sync": False,
        "checked": ["customers", "links"],
        "not_checked": {"segments": "state store", "access": "state store"},
        "customers": {
            "missing": {"count": 1, "examples": ["c3"]},
            "unknown": {"count": 2, "examples": ["c5", "c6"]},
            "differ": {
                "count": 1,
                "examples": ["c2"],
                "details": {"c2": {"state_store": ["s", "t"], "platform": ["s"]}},
            },
        },
    }


def test_in_sync_when_the_platform_holds_what_was_recorded() -> None:
    last = epsilon_last()
    report = snapshot_drift(last, RemoteState(last, EPSILON))
    assert report.in_sync
    assert report.counts() == {}
    assert report.as_dict()["customers"]["differ"] == {"count": 0, "examples": []}


def test_examples_are_the_first_few_sorted() -> None:
    last = StateBuilder().add_customers(f"c{i:02d}" for i in range(12, 0, -1)).build()
    report = snapshot_drift(last, RemoteState(State(), EPSILON), examples=3)
    missing = report.found["customers"]["missing"]
    assert (missing.count, missing.examples) == (12, ("c01", "c02", "c03"))


def talon_last() -> State:
    b = StateBuilder()
    b.add_segment(Segment("a", "Alpha", "Only in the YAML."))
    b.add_segment(Segment("b", "Beta", "Only in the YAML."))
    b.add_segment(Segment("c", "Gamma", "Only in the YAML."))
    b.set_links("x1", ["a"]).set_links("x2", ["a", "c"]).set_links("x3", ["b"])
    return b.build()


def talon_live() -> RemoteState:
    b = StateBuilder()
    # audiences carry a name only; c was deleted on the platform; z was never managed
    b.add_segment(Segment("a", "Alpha"))
    b.add_segment(Segment("b", "Beta renamed by hand"))
    b.add_segment(Segment("z", "Someone else's"))
    b.set_links("x1", ["a"]).set_links("x2", ["a"]).set_links("x4", ["b", "z"])
    b.set_links("x5", ["z"])
    return RemoteState(b.build(), TALONONE)


def test_talonone_segments_on_the_fields_the_platform_carries() -> None:
    report = snapshot_drift(talon_last(), talon_live(), segment_fields=("name",))
    assert report.checked == ("segments", "links")
    assert report.not_checked == {}
    segments = report.found["segments"]
    assert segments["missing"].examples == ("c",)
    assert segments["differ"].examples == ("b",)
    assert segments["differ"].details == {"b": ({"name": "Beta"}, {"name": "Beta renamed by hand"})}
    customers = report.found["customers"]
    # no customer phase: a customer is known by its memberships (x5 is only in z, unmanaged)
    assert customers["missing"].examples == ("x3",)
    assert customers["unknown"].examples == ("x4",)
    assert customers["differ"].examples == ("x2",)
    # the description is not on the platform: comparing it would report every segment
    every_field = snapshot_drift(talon_last(), talon_live())
    assert every_field.found["segments"]["differ"].examples == ("a", "b")


def test_a_state_read_in_full_compares_access_too() -> None:
    last = epsilon_last()
    b = StateBuilder()
    for seg in last.segments.values():
        b.add_segment(seg)
    b.set_access("s", ["team-2"])
    b.add_customers(last.customers)
    b.set_links_many(last.links.items(), sorted)
    report = snapshot_drift(last, b.build())
    assert report.checked == ("segments", "access", "customers", "links")
    assert report.counts() == {"access.differ": 1}
    assert report.found["access"]["differ"].details == {"s": (["team-1"], ["team-2"])}


def test_nothing_is_compared_when_nothing_is_read_live() -> None:
    feed = {p: Source.FEED for p in (Phase.SEGMENTS, Phase.ACCESS, Phase.LINKS)}
    report = snapshot_drift(epsilon_last(), RemoteState(State(), feed))
    assert report.checked == ()
    assert report.found == {}
    assert report.in_sync
    assert report.not_checked == {
        "segments": "last feed written",
        "access": "last feed written",
        "links": "last feed written",
    }


def test_refresh_keeps_what_epsilon_cannot_read() -> None:
    last, live = epsilon_last(), epsilon_live()
    # the read's segments and access are the store's; make them differ to prove they are kept
    b = StateBuilder().add_segment(Segment("s", "Other", "")).set_access("s", ["nobody"])
    b.add_customers(live.state.customers).set_links_many(live.state.links.items(), sorted)
    refreshed = refreshed_state(last, RemoteState(b.build(), EPSILON))
    assert refreshed.segments == last.segments
    assert refreshed.access == last.access
    assert refreshed.customers == live.state.customers
    assert refreshed.links == live.state.links
    assert snapshot_drift(refreshed, live).in_sync
    assert store_changes(last, refreshed) == {
        "customers added": 2,
        "customers removed": 1,
        "links rewritten": 5,
    }


def test_refresh_of_talonone_keeps_the_managed_segments_only() -> None:
    last, live = talon_last(), talon_live()
    refreshed = refreshed_state(last, live, segment_fields=("name",))
    # z is not recorded (it would become managed, and deleted by the next apply); c is gone;
    # b takes the platform's name and keeps its description, which Talon.One does not hold
    assert dict(refreshed.segments) == {
        "a": Segment("a", "Alpha", "Only in the YAML."),
        "b": Segment("b", "Beta renamed by hand", "Only in the YAML."),
    }
    assert refreshed.links == live.state.links
    assert snapshot_drift(refreshed, live, segment_fields=("name",)).in_sync
    assert store_changes(last, refreshed) == {
        "segments removed": 1,
        "segments updated": 1,
        "links rewritten": 4,
    }


# -- properties ---------------------------------------------------------------------------------
_IDS = st.sampled_from(["a", "b", "c", "d"])
_CUSTOMERS = st.sampled_from([f"c{i}" for i in range(8)])


@st.composite
def states(draw: st.DrawFn) -> State:
    b = StateBuilder()
    for seg_id in draw(st.sets(_IDS)):
        b.add_segment(Segment(seg_id, draw(st.sampled_from(["N", "M"])), draw(st.text("xy"))))
        if draw(st.booleans()):
            b.set_access(seg_id, draw(st.sets(st.sampled_from(["t1", "t2"]))))
    b.add_customers(draw(st.sets(_CUSTOMERS)))
    for customer in draw(st.sets(_CUSTOMERS)):
        b.set_links(customer, draw(st.sets(_IDS, min_size=1)))
    return b.build()


_SOURCES = st.fixed_dictionaries(
    {},
    optional={p: st.sampled_from([Source.LIVE, Source.STATE_STORE]) for p in Phase},
)


@SETTINGS
@given(
    states(),
    states(),
    _SOURCES,
    st.sampled_from([("name",), ("name", "description")]),
)
def test_after_a_refresh_the_snapshot_matches_the_read(
    last: State, now: State, sources: dict[Phase, Source], fields: tuple[str, ...]
) -> None:
    live = RemoteState(now, sources)
    refreshed = refreshed_state(last, live, segment_fields=fields)
    assert snapshot_drift(refreshed, live, segment_fields=fields).in_sync
    assert snapshot_drift(refreshed, live, segment_fields=fields, managed_only=False).in_sync
    # nothing read live: nothing recorded; read again: nothing more to record
    assert store_changes(refreshed, refreshed_state(refreshed, live, segment_fields=fields)) == {}
    if not any(src is Source.LIVE for src in sources.values()):
        assert refreshed == last
    # a snapshot that finds nothing stale means the refresh has nothing to record in the
    # compared phases (membership over every segment)
    report = snapshot_drift(last, live, segment_fields=fields, managed_only=False)
    if report.in_sync and Phase.LINKS in sources and sources[Phase.LINKS] is Source.LIVE:
        assert refreshed.links == last.links
