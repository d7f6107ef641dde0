"""The end-to-end scenario, unchanged, on every target type; and all three in one YAML."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _scenario import apply, plan, reconciler, write_config, writes
from conftest import ScenarioApply

from reconciler.plan.changes import Phase, step_of

KINDS = ["epsilon", "talonone", "epsilon-feed"]
NAMES = {"epsilon": "eps", "talonone": "talon", "epsilon-feed": "feed"}


def feed_bytes(folder: Path) -> dict[str, bytes]:
    feed = folder / "feed"
    return {p.name: p.read_bytes() for p in sorted(feed.glob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
def test_scenario_converges_on_every_target(fresh_sandbox: Any, tmp_path: Path, kind: str) -> None:
    state = tmp_path / "state.db"
    cfg = write_config(tmp_path, [kind])
    first, results = apply(cfg, fresh_sandbox, state)
    assert first.counts.links_add == 360
    assert all(r.ok for r in results)
    assert not plan(cfg, fresh_sandbox, state).has_changes

    cfg = write_config(tmp_path, [kind], edited=True)
    edited = plan(cfg, fresh_sandbox, state)
    (tp,) = edited.targets
    steps = [step_of(c) for c in tp.changes]
    assert steps == sorted(steps)  # phase order, removals last
    assert edited.counts.links_add == 25
    assert edited.counts.links_remove == 20
    links = {c.key: c for c in tp.changes if c.phase is Phase.LINKS}
    assert set(links) == {f"c{i:04d}" for i in [*range(240, 250), *range(300, 310)]} | {
        f"c{i:04d}" for i in [*range(400, 405), *range(500, 520)]
    }
    assert ("segments", "create", "seg-d") in [(c.phase, c.action, c.key) for c in tp.changes]
    assert ("segments", "delete", "seg-c") in [(c.phase, c.action, c.key) for c in tp.changes]
    _, results = apply(cfg, fresh_sandbox, state)
    assert all(r.ok for r in results)
    assert not plan(cfg, fresh_sandbox, state).has_changes


@pytest.mark.parametrize("kind", KINDS)
def test_apply_twice_writes_nothing_the_second_time(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path, kind: str
) -> None:
    state = tmp_path / "state.db"
    cfg = applied_scenario([kind])
    since = fresh_sandbox.requests()[-1]["id"] if fresh_sandbox.requests() else 0
    before = feed_bytes(tmp_path)
    second, results = apply(cfg, fresh_sandbox, state)
    assert not second.has_changes
    assert results == []
    assert writes(fresh_sandbox, since) == []
    assert feed_bytes(tmp_path) == before


def test_renames_are_applied_where_the_platform_allows(fresh_sandbox: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    apply(write_config(tmp_path, ["talonone", "epsilon-feed"]), fresh_sandbox, state)
    cfg = write_config(tmp_path, ["talonone", "epsilon-feed"], edited=True)
    apply(cfg, fresh_sandbox, state)
    names = {a["integrationId"]: a["name"] for a in fresh_sandbox.state()["talonone"]["audiences"]}
    assert names["seg-b"] == "Beta renamed"
    assert "seg-c" not in names  # deleted on Talon.One
    segment_file = (tmp_path / "feed" / "segments.tsv").read_text()
    assert "seg-b\tBeta renamed\t" in segment_file
    assert "seg-c" not in segment_file


def test_talonone_says_once_it_has_no_access_lists(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    (tp,) = plan(cfg, fresh_sandbox, tmp_path / "state.db").targets
    access = [w for w in tp.caveats if "access" in w]
    assert len(access) == 1
    assert not any("access" in w for w in tp.warnings)  # a caveat, not a warning
    assert "seg-a" in access[0]
    assert all(c.phase is not Phase.ACCESS for c in tp.changes)


def test_one_yaml_three_targets_and_target_narrows(fresh_sandbox: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    cfg = write_config(tmp_path, KINDS)
    narrowed = asyncio.run(reconciler(cfg, fresh_sandbox, state).plan())
    assert [t.target for t in narrowed.targets] == ["eps", "talon", "feed"]
    only = reconciler(cfg, fresh_sandbox, state)
    only_talon = type(only)(only.config, only.store, targets=["talon"], overrides=only.overrides)
    talon_plan = asyncio.run(only_talon.plan())
    assert [t.target for t in talon_plan.targets] == ["talon"]
    asyncio.run(only_talon.apply(talon_plan))
    after = plan(cfg, fresh_sandbox, state)
    assert {t.target: bool(t.changes) for t in after.targets} == {
        "eps": True,
        "talon": False,
        "feed": True,
    }
    _, results = apply(cfg, fresh_sandbox, state)
    assert sorted(r.target for r in results) == ["eps", "feed"]
    assert not plan(cfg, fresh_sandbox, state).has_changes
    assert fresh_sandbox.state()["epsilon"]["customers"]
    assert (tmp_path / "feed" / "customers.tsv").exists()
