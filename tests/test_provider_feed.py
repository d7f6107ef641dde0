"""The Epsilon file feed: the tables of Epsilon's "Sync Customers & Audience" guide,
determinism, delta statuses, gzip, atomic publishing, refusal of values the format cannot carry,
and read-back."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import ApplyResult, apply_target
from reconciler.exceptions import ConfigError, ProviderError, UnsupportedError
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import Source, TargetPlan, build_target_plan
from reconciler.plan.changes import Action, LinkChange, Phase, SegmentChange
from reconciler.plan.diff import Ownership
from reconciler.providers import _feed_format as fmt
from reconciler.providers import provider_class
from reconciler.providers.base import ProviderContext, ReadScope
from reconciler.providers.feed import EpsilonFeedProvider
from reconciler.statestore import StateStore

TARGET = "feed"
TEAM_1 = "a5166fc4-f874-4741-a721-c05ffd9941a5"
TEAM_2 = "92f4b91f-0089-4102-b13b-6015da8e0174"

#: The Epsilon guide's segment table, cell by cell (the guide prints the cells without their tabs)
SEED_SEGMENTS = [
    ["segment_id", "name", "description", "team_ids"],
    [
        "general-segment-1",
        "High Spending Shoppers",
        "Shoppers with an average weekly shop in the top 15%.",
        "",
    ],
    [
        "general-segment-2",
        "Value Shoppers",
        "Shoppers that have a higher basket % of value driven products.",
        "",
    ],
    ["general-segment-3", "Recurring Shoppers", "Shoppers that shop every week on average.", ""],
    [
        "custom-segment-1",
        "Custom: High Purchase Recency BrandCo",
        "Customers purchasing BrandCo in the last 30 days.",
        f'["{TEAM_1}","{TEAM_2}"]',
    ],
]
#: The Epsilon guide's customer table, as printed (with a space after the comma)
SEED_CUSTOMERS = [
    ["customer_id", "segments"],
    ["cust_12345", '["general-segment-3", "general-segment-4"]'],
    ["cust_67890", '["general-segment-3"]'],
]


def seed_state() -> State:
    b = StateBuilder()
    for _, (seg_id, name, description, _teams) in enumerate(SEED_SEGMENTS[1:]):
        b.add_segment(Segment(seg_id, name, description))
    b.set_access("custom-segment-1", [TEAM_2, TEAM_1])
    b.set_links("cust_12345", ["general-segment-3", "general-segment-4"])
    b.set_links("cust_67890", ["general-segment-3"])
    return b.build()


def tsv(rows: list[list[str]]) -> str:
    return "".join("\t".join(r) + "\n" for r in rows)


class Harness:
    def __init__(self, tmp: Path, directory: str = "feed", **settings: Any) -> None:
        self.tmp = tmp
        self.store = StateStore(tmp / "state.db")
        self.settings = {"directory": directory, "mode": "snapshot", "gzip": False, **settings}

    def provider(self) -> EpsilonFeedProvider:
        return EpsilonFeedProvider(TARGET, self.settings, {}, ProviderContext(self.store, self.tmp))

    def plan(self, desired: State) -> TargetPlan:
        remote = asyncio.run(self.provider().read(ReadScope(segments=frozenset(desired.segments))))
        ownership = Ownership(managed=self.store.managed_segments(TARGET), marked=remote.marked)
        caps = EpsilonFeedProvider.capabilities
        return build_target_plan(TARGET, "epsilon-feed", caps, desired, remote, ownership)

    def apply(self, plan: TargetPlan) -> ApplyResult:
        return asyncio.run(apply_target(self.provider(), plan, self.store))

    def converge(self, desired: State) -> TargetPlan:
        plan = self.plan(desired)
        result = self.apply(plan)
        assert result.failures == []
        assert self.plan(desired).changes == ()
        return plan

    @property
    def directory(self) -> Path:
        return self.provider().directory


def rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in fmt.read_bytes(path).split("\n")[:-1]]


def files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def state(
    segments: Iterable[str],
    links: Mapping[str, Iterable[str]],
    access: Mapping[str, Iterable[str]] | None = None,
) -> State:
    b = StateBuilder()
    for s in segments:
        b.add_segment(Segment(s, s.upper(), f"about {s}"))
    for s, teams in (access or {}).items():
        b.set_access(s, teams)
    for c, segs in links.items():
        b.set_links(c, segs)
    return b.build()


# -- the seed --------------------------------------------------------------------------------
def test_registered_and_capabilities() -> None:
    assert provider_class("epsilon-feed") is EpsilonFeedProvider
    assert EpsilonFeedProvider.capabilities.phases == {Phase.SEGMENTS, Phase.ACCESS, Phase.LINKS}


def test_seed_000_tables_field_for_field(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.converge(seed_state())
    segments = rows(h.directory / "segments.tsv")
    # the same rows as the seed, sorted by id; team ids as a sorted array (a set has no order:
    # the seed happens to print this one unsorted)
    assert segments[0] == SEED_SEGMENTS[0]
    want = sorted(SEED_SEGMENTS[1:])
    assert [r[:3] for r in segments[1:]] == [r[:3] for r in want]
    assert [r[3] for r in segments[1:]] == [
        json.dumps(sorted(json.loads(r[3])), separators=(",", ":")) if r[3] else "" for r in want
    ]
    assert segments[1][3] == f'["{TEAM_2}","{TEAM_1}"]'
    customers = rows(h.directory / "customers.tsv")
    assert customers[0] == SEED_CUSTOMERS[0]
    assert [r[0] for r in customers[1:]] == ["cust_12345", "cust_67890"]
    # list cells: compact JSON (the seed's customer table prints a space; same array)
    for got, seed in zip(customers[1:], SEED_CUSTOMERS[1:], strict=True):
        assert json.loads(got[1]) == json.loads(seed[1])
    assert customers[1][1] == '["general-segment-3","general-segment-4"]'
    assert (h.directory / "segments.tsv").read_bytes().count(b"\r") == 0


def test_seed_rows_as_printed_parse() -> None:
    segments, access = fmt.parse_segments(tsv(SEED_SEGMENTS), "seed")
    assert segments == dict(seed_state().segments)
    assert access == {"custom-segment-1": frozenset({TEAM_1, TEAM_2})}
    links, delta = fmt.parse_customers(tsv(SEED_CUSTOMERS), "seed")
    assert not delta
    assert links == {
        "cust_12345": ["general-segment-3", "general-segment-4"],
        "cust_67890": ["general-segment-3"],
    }


def test_read_round_trips_what_write_wrote(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    remote = asyncio.run(h.provider().read(ReadScope()))
    assert remote.state == State()
    h.converge(seed_state())
    remote = asyncio.run(h.provider().read(ReadScope()))
    assert remote.state.segments == seed_state().segments
    assert remote.state.access == seed_state().access
    assert remote.state.links == seed_state().links
    assert remote.marked == set(seed_state().segments)
    assert set(remote.sources.values()) == {Source.FEED}


# -- determinism -----------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
def test_same_state_same_bytes(tmp_path: Path, compress: bool) -> None:
    a = Harness(tmp_path / "a", gzip=compress)
    b = Harness(tmp_path / "b", gzip=compress)
    a.converge(seed_state())
    b.converge(seed_state())
    assert files(a.directory) == files(b.directory)
    # and rewriting the same feed gives the same bytes again
    before = files(a.directory)
    provider = a.provider()
    asyncio.run(provider.write(Phase.SEGMENTS, []))
    pending = provider._pending
    assert pending is not None
    pending.segments_changed = pending.links_changed = True
    asyncio.run(provider.commit())
    assert files(a.directory) == before
    if compress:
        data = (a.directory / "segments.tsv.gz").read_bytes()
        assert data[3] & 0x08 == 0  # FNAME flag: no file name
        assert data[4:8] == b"\0\0\0\0"  # mtime 0
        assert set(files(a.directory)) == {"segments.tsv.gz", "customers.tsv.gz"}
        assert gzip.decompress(data).decode().startswith("segment_id\tname\t")


def test_switching_compression_removes_the_stale_variant(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.converge(seed_state())
    h.settings["gzip"] = True
    h.converge(state(["x"], {"c": ["x"]}))
    assert set(files(h.directory)) == {"segments.tsv.gz", "customers.tsv.gz"}


# -- delta mode ------------------------------------------------------------------------------
def test_delta_statuses_against_the_last_feed(tmp_path: Path) -> None:
    h = Harness(tmp_path, mode="delta")
    h.converge(state(["a", "b"], {"c1": ["a"], "c2": ["a", "b"], "c3": ["b"]}))
    first = rows(h.directory / "customers.tsv")
    assert first[0] == ["customer_id", "segments", "status"]
    assert {r[2] for r in first[1:]} == {"INSERT"}
    h.converge(state(["a", "b"], {"c1": ["a"], "c2": ["b"], "c4": ["a"]}))
    assert rows(h.directory / "customers.tsv") == [
        ["customer_id", "segments", "status"],
        ["c2", '["b"]', "UPDATE"],
        ["c3", "[]", "DELETE"],
        ["c4", '["a"]', "INSERT"],
    ]
    # the full snapshot is kept beside it, and is what read() returns
    assert rows(h.directory / ".last" / "customers.tsv")[1:] == [
        ["c1", '["a"]'],
        ["c2", '["b"]'],
        ["c4", '["a"]'],
    ]
    remote = asyncio.run(h.provider().read(ReadScope()))
    assert dict(remote.state.links) == {"c1": {"a"}, "c2": {"b"}, "c4": {"a"}}


def test_a_delta_without_its_snapshot_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path, mode="delta")
    h.converge(state(["a"], {"c1": ["a"]}))
    (h.directory / ".last" / "customers.tsv").unlink()
    with pytest.raises(ProviderError, match="delta"):
        asyncio.run(h.provider().read(ReadScope()))


def test_switching_to_snapshot_drops_the_kept_snapshot(tmp_path: Path) -> None:
    h = Harness(tmp_path, mode="delta")
    h.converge(state(["a"], {"c1": ["a"]}))
    h.settings["mode"] = "snapshot"
    h.converge(state(["a"], {"c1": ["a"], "c2": ["a"]}))
    assert set(files(h.directory)) == {"segments.tsv", "customers.tsv"}


# -- atomicity and order ---------------------------------------------------------------------
def test_a_crash_before_the_rename_keeps_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path)
    h.converge(seed_state())
    before = files(h.directory)

    def crash(src: Any, dst: Any) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(f"{fmt.__name__}.os.replace", crash)
    plan = h.plan(state(["x"], {"c": ["x"]}))
    with pytest.raises(ProviderError, match="simulated crash"):
        h.apply(plan)
    monkeypatch.undo()
    assert files(h.directory) == before  # no half-written file, no temporary left behind


def test_published_pairs_stay_consistent_while_deleting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every rename, each segment the published customer file names is in the published
    segment file: the segment file grows first and shrinks last."""
    h = Harness(tmp_path)
    h.converge(state(["old", "keep"], {"c1": ["old", "keep"], "c2": ["old"]}))
    real = os.replace
    seen: list[tuple[set[str], set[str]]] = []

    def spy(src: Any, dst: Any) -> None:
        real(src, dst)
        if Path(dst).parent != h.directory:
            return  # the state store's own files
        segs, _ = fmt.parse_segments(fmt.read_bytes(h.directory / "segments.tsv"), "s")
        links, _ = fmt.parse_customers(fmt.read_bytes(h.directory / "customers.tsv"), "c")
        seen.append((set(segs), {s for ss in links.values() for s in ss}))

    monkeypatch.setattr(f"{fmt.__name__}.os.replace", spy)
    plan = h.plan(state(["keep", "new"], {"c1": ["keep", "new"], "c3": ["new"]}))
    assert {(c.phase, c.action) for c in plan.changes} >= {(Phase.SEGMENTS, Action.DELETE)}
    assert h.apply(plan).failures == []
    assert len(seen) == 3
    for segments, referenced in seen:
        assert referenced <= segments
    assert seen[0][0] == {"old", "keep", "new"}
    assert seen[-1][0] == {"keep", "new"}


def test_values_the_format_cannot_carry_are_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.converge(state(["ok"], {"c1": ["ok"]}))
    before = files(h.directory)
    provider = h.provider()
    bad_segment = SegmentChange(Action.CREATE, "bad", None, Segment("bad", "High\tSpenders"))
    good_segment = SegmentChange(Action.CREATE, "fine", None, Segment("fine", "Fine"))
    results = asyncio.run(provider.write(Phase.SEGMENTS, [bad_segment, good_segment]))
    assert [r.ok for r in results] == [False, True]
    assert "tab" in results[0].error
    results = asyncio.run(
        provider.write(Phase.LINKS, [LinkChange("c\n2", frozenset(), frozenset({"ok"}))])
    )
    assert not results[0].ok
    assert "newline" in results[0].error
    # the writer itself refuses too, before replacing anything
    with pytest.raises(UnsupportedError, match="carriage return"):
        fmt.write_atomic(
            h.directory / "segments.tsv",
            fmt.segment_rows({"x": Segment("x", "X", "a\rb")}, {}),
            compress=False,
        )
    assert files(h.directory) == before


# -- settings --------------------------------------------------------------------------------
def test_directory_relative_to_the_config(tmp_path: Path) -> None:
    h = Harness(tmp_path, directory="out/feed")
    assert h.directory == tmp_path / "out" / "feed"
    absolute = tmp_path / "elsewhere"
    assert Harness(tmp_path, directory=str(absolute)).directory == absolute


def test_unknown_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        Harness(tmp_path, mode="incremental").provider()
