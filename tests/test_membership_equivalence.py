"""``plan --refresh=auto`` (the diff in DuckDB against the snapshot) plans exactly what a full
read plans, over random edits: memberships moved, a segment deleted (its members unlinked), a
segment added, a segment forgotten (``removed: destroy: false``), customers leaving every
segment, and a segment on the platform that the config does not manage."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.membership import Wanted
from reconciler.plan import Plan, Refresh, Source, TargetPlan
from reconciler.plan.changes import LinkChange, Phase
from reconciler.runtime import Overrides
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
TEAM = "a5166fc4-f874-4741-a721-c05ffd9941a5"
N = 4000


#: the config's one target (the sandbox replaces its URL and credentials)
TARGET = [
    "version: 1",
    "targets:",
    "  eps:",
    "    type: epsilon",
    "    base_url: http://127.0.0.1:9/never-used",
    f"    retailer_team_id: {RETAILER}",
    "    bearer_token: ${EQ_TOKEN}",
    "    api_key: ${EQ_KEY}",
]


def cid(i: int) -> str:
    return f"q{i:05d}"


def write(folder: Path, members: dict[str, list[str]], forget: list[str]) -> Path:
    lines = [*TARGET, "segments:"]
    for seg, ids in members.items():
        (folder / f"{seg}.txt").write_text("".join(f"{c}\n" for c in ids))
        lines += [
            f"  - id: {seg}",
            f"    name: {seg.upper()}",
            f"    access: [{TEAM}]",
            "    members:",
            f"      files: [{seg}.txt]",
        ]
    if forget:
        lines.append("removed:")
        lines += [f"  - {{id: {seg}, destroy: false}}" for seg in forget]
    path = folder / "audiences.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _assert_same(auto: Plan, full: Plan) -> TargetPlan:
    """The targeted plan is the full read's: changes, fingerprint, sizes, warnings."""
    (a,), (f,) = auto.targets, full.targets
    assert a.sources[Phase.LINKS] == Source.TARGETED.value
    assert [c for c in a.changes] == [c for c in f.changes]
    assert a.remote_fingerprint == f.remote_fingerprint
    assert dict(a.existing) == dict(f.existing)
    assert a.unchanged_links == f.unchanged_links
    assert a.warnings == f.warnings
    assert a.changes  # the edit is not empty
    return a


def reconciler(path: Path, sandbox: Any) -> Reconciler:
    store = StateStore(path.parent / "state.db")
    return Reconciler(load(path), store, overrides=Overrides.for_sandbox(sandbox))


@pytest.mark.parametrize("seed", range(5))
def test_auto_equals_full_after_random_edits(fresh_sandbox: Any, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    everyone = [cid(i) for i in range(N)]
    before = {s: sorted(rng.sample(everyone, rng.randrange(100, 400))) for s in "abc"}
    # a segment of someone else's on the platform, carried over by every whole-list write
    theirs = set(rng.sample(everyone, 200))
    fresh_sandbox.seed(
        {
            "epsilon": {
                "segments": [{"segmentId": "x", "name": "X", "description": ""}],
                "customers": [
                    {"id": c, "segmentIds": ["x"] if c in theirs else []} for c in everyone
                ],
            }
        }
    )
    rec = reconciler(write(tmp_path, before, []), fresh_sandbox)
    (first,) = asyncio.run(rec.apply(asyncio.run(rec.plan()), verify=False))
    assert first.failures == []
    # the store learns every customer the platform holds (what `reconcile refresh` does)
    rec.store.replace("eps", asyncio.run(rec.read("eps")).state)

    after = {s: list(m) for s, m in before.items()}
    for s in list(after):  # churn: some leave, some join
        out = set(rng.sample(after[s], len(after[s]) // 50))
        after[s] = sorted((set(after[s]) - out) | set(rng.sample(everyone, 20)))
    forget: list[str] = []
    edit = seed % 4
    if edit == 0:
        del after["c"]  # deleted: its members are unlinked
    elif edit == 1:
        after["d"] = sorted(rng.sample(everyone, 300))  # a new segment
    elif edit == 2:
        del after["b"]
        forget = ["b"]  # released, not deleted
    else:
        gone = set(rng.sample(everyone, 100))  # these customers leave every segment
        after = {s: [c for c in m if c not in gone] for s, m in after.items()}
    rec = reconciler(write(tmp_path, after, forget), fresh_sandbox)
    rec.sample, rec.sample_seed = 300, seed

    auto = asyncio.run(rec.plan(Refresh.AUTO))
    full = asyncio.run(rec.plan(Refresh.FULL))
    _assert_same(auto, full)

    # applied from the targeted plan, the platform ends where a full plan says nothing is left
    (result,) = asyncio.run(rec.apply(auto, verify=False, force=True))
    assert result.failures == []
    assert not asyncio.run(rec.plan(Refresh.FULL)).has_changes
    assert not asyncio.run(rec.plan(Refresh.AUTO)).has_changes


@pytest.mark.parametrize("kind", ["epsilon", "talonone"])
def test_refresh_false_from_the_snapshot_equals_the_state_store(
    fresh_sandbox: Any, tmp_path: Path, kind: str
) -> None:
    """``--refresh=false`` diffs in DuckDB too, and plans what a plan from the whole
    state-store record plans (fingerprint, sizes, sources included)."""
    import _scenario

    state = tmp_path / "state.db"
    _scenario.apply(_scenario.write_config(tmp_path, [kind]), fresh_sandbox, state)
    edited = _scenario.write_config(tmp_path, [kind], edited=True)
    rec = _scenario.reconciler(edited, fresh_sandbox, state)
    assert rec.store.snapshot(rec.target_names[0]) is not None
    fast = asyncio.run(rec.plan(Refresh.NONE))
    rec.store._db.execute("DELETE FROM snapshots")  # no snapshot: the whole record is loaded
    assert rec.store.snapshot(rec.target_names[0]) is None
    slow = asyncio.run(rec.plan(Refresh.NONE))
    (a,), (b,) = fast.targets, slow.targets
    assert a.changes == b.changes
    assert a.changes
    assert a.remote_fingerprint == b.remote_fingerprint
    assert dict(a.existing) == dict(b.existing)
    assert a.unchanged_links == b.unchanged_links
    assert a.sources == b.sources
    assert a.warnings == b.warnings


def _rules_config(folder: Path, exclude: bool) -> Path:
    lines = [
        *TARGET,
        "customer_sources:",
        "  shoppers: {path: shoppers.csv, id_column: id}",
        "segments:",
        "  - id: high",
        "    name: High",
        f"    access: [{TEAM}]",
        "    members:",
        "      rule: {source: shoppers, attribute: score, gte: 50}",
        "  - id: north",
        "    name: North",
        f"    access: [{TEAM}]",
        "    members:",
        "      rule: {source: shoppers, attribute: region, eq: north}",
    ]
    if exclude:
        lines += ["      exclude:", "        rule: {source: shoppers, attribute: score, lt: 5}"]
    path = folder / "audiences.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _shoppers(folder: Path, rows: list[tuple[str, int, str]]) -> None:
    text = "id,score,region\n" + "".join(f"{c},{s},{r}\n" for c, s, r in rows)
    (folder / "shoppers.csv").write_text(text)


@pytest.mark.parametrize("case", ["unique", "repeated ids", "exclusion"])
def test_auto_equals_full_with_rules_over_a_source(
    fresh_sandbox: Any, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules over one source: its rows are the customers' masks as read (no grouping) unless a
    customer has two rows (then they are OR'ed, as a full plan does) or a rule excludes."""
    rng = random.Random(7)
    regions = ["north", "south", "east"]
    rows = [(cid(i), rng.randrange(100), rng.choice(regions)) for i in range(N // 2)]
    _shoppers(tmp_path, rows)
    path = _rules_config(tmp_path, exclude=case == "exclusion")
    rec = reconciler(path, fresh_sandbox)
    (first,) = asyncio.run(rec.apply(asyncio.run(rec.plan()), verify=False))
    assert first.failures == []
    rec.store.replace("eps", asyncio.run(rec.read("eps")).state)

    today = [(c, rng.randrange(100) if rng.random() < 0.05 else s, r) for c, s, r in rows]
    today += [(cid(i), rng.randrange(100), rng.choice(regions)) for i in range(N, N + 30)]
    if case == "repeated ids":
        # an applied customer read twice (its second row adds a segment), a new one twice
        low = next(c for c, s, r in today if s < 50 and r != "north")
        today += [(low, 90, "south"), (cid(N), 1, "north"), (cid(N), 99, "east")]
    rng.shuffle(today)
    _shoppers(tmp_path, today)
    rec = reconciler(path, fresh_sandbox)
    rec.sample, rec.sample_seed = 100, 3
    grouped: list[bool] = []
    real = Wanted.group

    def group(self: Wanted, con: Any) -> Wanted:
        grouped.append(True)
        return real(self, con)

    monkeypatch.setattr(Wanted, "group", group)

    auto = asyncio.run(rec.plan(Refresh.AUTO))
    # the repeated rows were found by the join, and grouped (only then)
    assert grouped == ([True] if case == "repeated ids" else [])
    full = asyncio.run(rec.plan(Refresh.FULL))
    a = _assert_same(auto, full)
    if case == "repeated ids":
        (new,) = [c for c in a.changes if c.key == cid(N) and isinstance(c, LinkChange)]
        assert sorted(new.after) == ["high", "north"]
