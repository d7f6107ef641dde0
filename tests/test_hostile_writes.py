"""Hostile writes: request packing across a whole step, import of platforms the reconciler
never touched (members kept, file names safe, under the apply lock), and applies that recover
when the platform lost what the state store remembers."""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, ClassVar

import yaml
from _scenario import RETAILER, TEAM_1, apply, cli, plan, write_config

from reconciler.apply import ApplyResult, apply_target
from reconciler.exceptions import BatchRejected
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import Capabilities, RemoteState, TargetPlan, build_target_plan
from reconciler.plan.changes import Change, LinkChange, Phase
from reconciler.plan.diff import Ownership
from reconciler.providers.base import (
    ItemResult,
    Provider,
    ProviderContext,
    ReadScope,
)
from reconciler.providers.talonone import MAX_ACTIONS, TalonOneProvider, split_link
from reconciler.sandbox import Sandbox, seed_state
from reconciler.statestore import StateStore

PLATFORM = "audience-reconciler"


# -- Talon.One: membership requests packed across the whole step ---------------------------
def _talon(sandbox: Sandbox, store: StateStore, tmp: Path) -> TalonOneProvider:
    settings, credentials = TalonOneProvider.sandbox_overrides(sandbox)
    return TalonOneProvider(
        "talon",
        {**settings, "platform_name": PLATFORM, "management_rps": 10_000.0},
        credentials,
        ProviderContext(store, tmp),
    )


def _talon_plan(sandbox: Sandbox, store: StateStore, tmp: Path, desired: State) -> TargetPlan:
    provider = _talon(sandbox, store, tmp)

    async def read() -> RemoteState:
        try:
            return await provider.read(ReadScope(segments=frozenset(desired.segments)))
        finally:
            await provider.aclose()

    remote = asyncio.run(read())
    ownership = Ownership(managed=store.managed_segments("talon"), marked=remote.marked)
    return build_target_plan(
        "talon", "talonone", TalonOneProvider.capabilities, desired, remote, ownership
    )


def _talon_apply(sandbox: Sandbox, store: StateStore, tmp: Path, tp: TargetPlan) -> ApplyResult:
    provider = _talon(sandbox, store, tmp)

    async def go() -> ApplyResult:
        try:
            return await apply_target(provider, tp, store)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def _uneven(customers: dict[str, int], audiences: int = 3) -> State:
    """Customer → how many of the audiences ``t0`` .. ``t{audiences-1}`` it joins."""
    b = StateBuilder()
    names = [f"t{j}" for j in range(audiences)]
    for name in names:
        b.add_segment(Segment(name, name.upper()))
    for cid, n in customers.items():
        b.set_links(cid, names[:n])
    return b.build()


def _link_writes(sandbox: Sandbox, since: int) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox.requests(since)
        if r["method"] == "PUT" and r["path"].endswith("/cdp/customer_profiles/audiences")
    ]


def _last_request(sandbox: Sandbox) -> int:
    log = sandbox.requests()
    return int(log[-1]["id"]) if log else 0


def test_talonone_link_requests_are_the_minimum_over_the_whole_step(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    # 1500 customers, 3000 actions: 2100 in the first 1000 customers, 900 in the last 500 —
    # packed per 1000 customers that is 3 + 1 requests; over the whole step, 3
    sizes = {f"u{i:04d}": (3 if i < 100 else 2) for i in range(1000)}
    sizes |= {f"u{i:04d}": (2 if i < 1400 else 1) for i in range(1000, 1500)}
    desired = _uneven(sizes)
    store = StateStore(tmp_path / "state.db")
    tp = _talon_plan(fresh_sandbox, store, tmp_path, desired)
    actions = tp.counts.links_add + tp.counts.links_remove
    assert actions == 3000
    since = _last_request(fresh_sandbox)
    result = _talon_apply(fresh_sandbox, store, tmp_path, tp)
    assert result.failures == []
    writes = _link_writes(fresh_sandbox, since)
    assert len(writes) == math.ceil(actions / MAX_ACTIONS) == 3
    assert {r["status"] for r in writes} == {204}
    assert store.load("talon").links == desired.links
    assert not _talon_plan(fresh_sandbox, store, tmp_path, desired).changes


def test_talonone_a_rejected_request_still_isolates_the_bad_customer(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    bad = "x" * 1001  # longer than the 1000 characters a customerProfileId may have
    sizes = {f"u{i:04d}": 1 + i % 3 for i in range(900)} | {bad: 3}
    desired = _uneven(sizes)
    store = StateStore(tmp_path / "state.db")
    tp = _talon_plan(fresh_sandbox, store, tmp_path, desired)
    result = _talon_apply(fresh_sandbox, store, tmp_path, tp)
    assert [(f.phase, f.key) for f in result.failures] == [("links", bad)]
    assert "customerProfileId" in result.failures[0].error
    recorded = store.load("talon").links
    assert bad not in recorded
    assert {c: s for c, s in desired.links.items() if c != bad} == dict(recorded)
    left = _talon_plan(fresh_sandbox, store, tmp_path, desired).changes
    assert [c.key for c in left] == [bad]


class _Splitting(Provider):
    """Links cost their actions and split like Talon.One's; one segment is refused."""

    type: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batch_size={Phase.SEGMENTS: 1, Phase.LINKS: 4},
        phases=frozenset({Phase.SEGMENTS, Phase.LINKS}),
        concurrency=1,
    )

    def __init__(self, store: StateStore, tmp: Path) -> None:
        super().__init__("mem", {}, {}, ProviderContext(store, tmp))
        self.calls: list[list[tuple[str, int]]] = []

    async def read(self, scope: ReadScope) -> RemoteState:
        return RemoteState(State(), {})

    def cost(self, change: Change) -> int:
        return len(change.added) + len(change.removed) if isinstance(change, LinkChange) else 1

    def split(self, change: Change, room: int) -> tuple[Change, Change] | None:
        return split_link(change, room) if isinstance(change, LinkChange) else None

    async def write(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        if phase is Phase.LINKS:
            self.calls.append([(c.key, self.cost(c)) for c in changes])
        if any(isinstance(c, LinkChange) and "s5" in c.added for c in changes):
            if len(changes) > 1:
                raise BatchRejected("HTTP 400: s5 refused")
            return [ItemResult(changes[0].key, False, "s5 refused")]
        return [ItemResult(c.key, True) for c in changes]


def test_a_change_split_across_requests_counts_once_and_fails_whole(tmp_path: Path) -> None:
    b = StateBuilder()
    for j in range(7):
        b.add_segment(Segment(f"s{j}", f"S{j}"))
    b.set_links("a", ["s0", "s1", "s2"])
    b.set_links("b", ["s0", "s1", "s2", "s3", "s4", "s5", "s6"])  # split over 2 requests
    b.set_links("c", ["s0", "s1"])
    desired = b.build()
    store = StateStore(tmp_path / "s.db")
    provider = _Splitting(store, tmp_path)
    tp = build_target_plan(
        "mem", "memory", _Splitting.capabilities, desired, RemoteState(State(), {}), Ownership()
    )
    result = asyncio.run(apply_target(provider, tp, store))
    # 12 actions, 4 a request: 3 full requests; the one holding b's s5 is refused whole,
    # then split to isolate b
    assert provider.calls == [
        [("a", 3), ("b", 1)],
        [("b", 4)],
        [("b", 2), ("c", 2)],
        [("b", 2)],
        [("c", 2)],
    ]
    assert [(f.phase, f.key) for f in result.failures] == [("links", "b")]
    assert result.applied == 7 + 2  # the segments, a and c; b counted once, as failed
    assert set(store.load("mem").links) == {"a", "c"}


def test_the_benchmark_scenario_has_uneven_customers() -> None:
    from benchmarks import talonone_requests as bench

    sizes = {len(bench._yesterday(i)) + len(bench._today(i)) for i in range(60)}
    assert len(sizes) > 3


# -- import: every audience adopted with its members ---------------------------------------
def _state_args(sandbox: Sandbox, folder: Path) -> list[str]:
    return ["--sandbox-url", sandbox.url, "--state", str(folder / "state.db")]


def _run_import(sandbox: Sandbox, source: Path, target: str, out: Path) -> CompletedProcess[str]:
    """``reconcile import`` of ``target`` into ``out`` (its state store beside it), succeeded."""
    done = cli(
        "import", str(source), "--target", target, "--out", str(out),
        *_state_args(sandbox, out.parent),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _import(sandbox: Sandbox, tmp_path: Path, kind: str, target: str) -> Path:
    source = write_config(tmp_path / "before", [kind])
    out = tmp_path / "after" / "imported.yaml"
    _run_import(sandbox, source, target, out)
    return out


def _plans_to_zero(sandbox: Sandbox, out: Path) -> None:
    assert cli("validate", str(out)).returncode == 0, cli("validate", str(out)).stderr
    after = cli("plan", str(out), "--detailed-exitcode", *_state_args(sandbox, out.parent))
    assert after.returncode == 0, after.stdout + after.stderr
    assert "No changes." in after.stdout


def _members(out: Path) -> dict[str, list[str]]:
    doc = yaml.safe_load(out.read_text())
    found: dict[str, list[str]] = {}
    for seg in doc["segments"]:
        members = seg["members"]
        ids = list(members.get("ids", []))
        for rel in members.get("files", []):
            ids += (out.parent / rel).read_text().split()
        found[seg["id"]] = sorted(ids)
    return found


def test_import_talonone_adopts_audiences_made_elsewhere_with_members(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    many = [f"m{i:03d}" for i in range(60)]
    seed_state(
        fresh_sandbox,
        {
            "talonone": {
                "audiences": [
                    {"integrationId": "crm-vip", "name": "CRM VIP", "integration": "other-cdp",
                     "members": ["p1", "p2"]},
                    {"integrationId": "by-hand", "name": "By hand", "integration": "",
                     "members": many},
                    {"integrationId": "nobody", "name": "Nobody", "integration": "other-cdp",
                     "members": []},
                ]
            }
        },
    )  # fmt: skip
    before = fresh_sandbox.state()["talonone"]["audiences"]
    out = _import(fresh_sandbox, tmp_path, "talonone", "talon")
    assert _members(out) == {"by-hand": many, "crm-vip": ["p1", "p2"], "nobody": []}
    _plans_to_zero(fresh_sandbox, out)
    assert fresh_sandbox.state()["talonone"]["audiences"] == before


def test_import_epsilon_never_touched_plans_to_zero(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    seed_state(
        fresh_sandbox,
        {
            "epsilon": {
                "segments": [
                    {"segmentId": "ui-made", "name": "Made in the UI", "description": "d",
                     "accessTeamIds": [TEAM_1]},
                    {"segmentId": "other", "name": "Other", "description": ""},
                ],
                "customers": [
                    {"id": "e1", "segmentIds": ["ui-made", "other"]},
                    {"id": "e2", "segmentIds": ["other"]},
                    {"id": "e3", "segmentIds": []},
                ],
            }
        },
    )  # fmt: skip
    out = _import(fresh_sandbox, tmp_path, "epsilon", "eps")
    assert _members(out) == {"other": ["e1", "e2"], "ui-made": ["e1"]}
    _plans_to_zero(fresh_sandbox, out)


def test_import_feed_written_by_another_tool_plans_to_zero(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    feed = tmp_path / "before" / "feed"
    feed.mkdir(parents=True)
    (feed / "segments.tsv").write_text(
        "segment_id\tname\tdescription\tteam_ids\n"
        f'hand-1\tHand one\tWritten by hand\t["{TEAM_1}"]\nhand-2\tHand two\t\t[]\n'
    )
    (feed / "customers.tsv").write_text(
        'customer_id\tsegments\nf1\t["hand-1","hand-2"]\nf2\t["hand-2"]\n'
    )
    out = _import(fresh_sandbox, tmp_path, "epsilon-feed", "feed")
    assert _members(out) == {"hand-1": ["f1"], "hand-2": ["f1", "f2"]}
    _plans_to_zero(fresh_sandbox, out)


# -- import: file names from remote ids ----------------------------------------------------
def test_import_file_names_are_safe_and_distinct(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    many = [f"m{i:03d}" for i in range(60)]
    audiences = [
        {"integrationId": iid, "name": iid, "integration": "other", "members": many}
        for iid in ("../../escape", "vip:1", "vip_1", "VIP_1", "/abs/path")
    ]
    seed_state(fresh_sandbox, {"talonone": {"audiences": audiences}})
    source = write_config(tmp_path / "before", ["talonone"])
    out = tmp_path / "after" / "imported.yaml"
    done = _run_import(fresh_sandbox, source, "talon", out)
    written = sorted(p for p in tmp_path.rglob("*.txt") if p.parent.name != "before")
    data = out.parent / "data"
    assert all(p.parent == data for p in written), written
    names = [p.name for p in written]
    assert len(set(n.lower() for n in names)) == len(names) == 3  # vip:1, vip_1, VIP_1
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{8}\.txt", n) for n in names)
    # ids a config cannot declare are left out, said so, and left alone
    assert "'../../escape'" in done.stderr
    assert "'/abs/path'" in done.stderr
    assert set(_members(out)) == {"vip:1", "vip_1", "VIP_1"}
    _plans_to_zero(fresh_sandbox, out)
    # the same import again names the files the same way
    again = tmp_path / "again" / "imported.yaml"
    done = _run_import(fresh_sandbox, source, "talon", again)
    assert sorted(p.name for p in (again.parent / "data").iterdir()) == names


def test_import_leaves_out_what_a_config_cannot_hold(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    seed_state(
        fresh_sandbox,
        {
            "talonone": {
                "audiences": [
                    {"integrationId": "tabbed", "name": "a\tb", "members": ["p1"]},
                    {"integrationId": "spaced", "name": "Spaced", "members": ["has space"]},
                    {"integrationId": "fine", "name": "Fine", "members": ["p1", "p2"]},
                ]
            }
        },
    )
    before = fresh_sandbox.state()["talonone"]["audiences"]
    source = write_config(tmp_path / "before", ["talonone"])
    out = tmp_path / "after" / "imported.yaml"
    done = _run_import(fresh_sandbox, source, "talon", out)
    assert "segment 'tabbed' left out, its name cannot be written in a config" in done.stderr
    assert "segment 'spaced' left out, member 'has space' is not a customer id" in done.stderr
    assert _members(out) == {"fine": ["p1", "p2"]}
    _plans_to_zero(fresh_sandbox, out)
    assert fresh_sandbox.state()["talonone"]["audiences"] == before


# -- import takes the apply lock ------------------------------------------------------------
def test_import_refuses_while_an_apply_holds_the_lock(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_config(tmp_path / "before", ["talonone"])
    apply(source, fresh_sandbox, tmp_path / "before" / "state.db")
    out = tmp_path / "after" / "imported.yaml"
    store = StateStore(tmp_path / "after" / "state.db")
    args = ["import", str(source), "--target", "talon", "--out", str(out)]
    args += _state_args(fresh_sandbox, tmp_path / "after")
    with store.lock("talon"):
        refused = cli(*args)
    assert refused.returncode == 1
    assert "another apply is running on target 'talon'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not out.exists()
    assert store.load("talon").segments == {}
    # --lock-wait waits for the lock as apply does
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.lock("talon"):
            held.set()
            release.wait(60)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(60)
    timer = threading.Timer(1.0, release.set)
    timer.start()
    try:
        waited = cli(*args, "--lock-wait", "90")
    finally:
        release.set()
        thread.join(60)
        timer.cancel()
    assert waited.returncode == 0, waited.stderr
    assert set(store.load("talon").segments) == {"seg-a", "seg-b", "seg-c"}
    store.close()


# -- Epsilon: the platform lost what the state store remembers -----------------------------
def _drop_epsilon_segments(sandbox: Sandbox, only: str | None = None) -> None:
    """Delete Epsilon segments (every one, or ``only``) and their access lists as its UI
    would, customers and their links kept."""
    db = sqlite3.connect(sandbox.db_path, timeout=30)
    try:
        for table in ("eps_segments", "eps_segment_access"):
            db.execute(f"DELETE FROM {table} WHERE ? IS NULL OR segment_id = ?", (only, only))
        db.commit()
    finally:
        db.close()


def test_epsilon_apply_recovers_after_an_account_reset(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    fresh_sandbox.reset()  # everything gone: segments, access lists, customers, links
    _, results = apply(cfg, fresh_sandbox, state)
    assert [f for r in results for f in r.failures] == []
    assert not plan(cfg, fresh_sandbox, state).has_changes
    eps = fresh_sandbox.state()["epsilon"]
    access = {s["segmentId"]: len(s["accessTeamIds"]) for s in eps["segments"]}
    assert access == {"seg-a": 2, "seg-b": 0, "seg-c": 0}


def test_epsilon_apply_recovers_segments_deleted_in_the_ui(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    _drop_epsilon_segments(fresh_sandbox)
    write_config(tmp_path, ["epsilon"], edited=True)  # new links and an access change
    _, results = apply(cfg, fresh_sandbox, state)
    assert [f for r in results for f in r.failures] == []
    assert not plan(cfg, fresh_sandbox, state).has_changes
    eps = fresh_sandbox.state()["epsilon"]
    segs = {s["segmentId"]: s for s in eps["segments"]}
    assert {"seg-a", "seg-b", "seg-d"} <= set(segs)
    assert segs["seg-a"]["accessTeamIds"] == [TEAM_1]
    assert segs["seg-a"]["retailerTeamId"] == RETAILER


def test_epsilon_a_lost_segment_it_does_not_manage_is_named(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    seed_state(
        fresh_sandbox,
        {
            "epsilon": {
                "segments": [{"segmentId": "theirs", "name": "Theirs", "description": ""}],
                "customers": [{"id": "c0245", "segmentIds": ["theirs"]}],
            }
        },
    )
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    _drop_epsilon_segments(fresh_sandbox, "theirs")
    write_config(tmp_path, ["epsilon"], edited=True)  # c0245 leaves seg-a
    _, results = apply(cfg, fresh_sandbox, state)
    failures = [f for r in results for f in r.failures]
    assert [(f.phase, f.key) for f in failures] == [("links", "c0245")]
    assert "unknown segment id(s): theirs" in failures[0].error
    assert "not managed here, so it cannot be re-created" in failures[0].error
    # seg-b, the managed segment in its list, was checked (409: still there), not re-created
    creates = [r for r in fresh_sandbox.requests() if r["route"] == "POST /epsilon/v1/segments"]
    assert [r["status"] for r in creates] == [200, 200, 200, 200, 409]  # a, b, c; d; b again
    assert plan(cfg, fresh_sandbox, state).targets[0].changes[0].key == "c0245"


def test_talonone_apply_recovers_after_an_account_reset(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    fresh_sandbox.reset()
    _, results = apply(cfg, fresh_sandbox, state)
    assert [f for r in results for f in r.failures] == []
    assert not plan(cfg, fresh_sandbox, state).has_changes
