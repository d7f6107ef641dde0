"""End to end on Epsilon through the sandbox: apply, edit, re-plan, minimal writes, crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _command import invoke
from _scenario import TEAM_1, apply, plan, write_config, writes
from _schema import assert_valid

from reconciler.plan import TargetPlan
from reconciler.plan.changes import Action, LinkChange
from reconciler.sandbox import Sandbox

ROOT = Path(__file__).parent.parent


def kinds(p: TargetPlan) -> list[tuple[str, str, str]]:
    return [(c.phase.value, c.action.value, c.key) for c in p.changes]


def test_empty_remote_apply_then_no_changes(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    first, results = apply(cfg, fresh_sandbox, state)
    assert first.counts.links_add == 250 + 100 + 10  # memberships, over 310 customers
    assert [r.ok for r in results] == [True]
    assert results[0].remaining == 0
    # minimal writes: 3 segments, 1 access list, ceil(310/100) customer batches, 310 links
    log = writes(fresh_sandbox)
    routes = [r["route"] for r in log]
    assert routes.count("POST /epsilon/v1/segments") == 3
    assert sum("manage-access" in r for r in routes) == 1
    assert routes.count("POST /epsilon/v1/customers") == 4
    assert routes.count("POST /epsilon/v1/customers/manage-segments") == 310
    assert len(log) == 3 + 1 + 4 + 310
    assert not plan(cfg, fresh_sandbox, state).has_changes


def test_edit_plans_exactly_those_changes_in_phase_order(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    apply(write_config(tmp_path, ["epsilon"]), fresh_sandbox, state)
    cfg = write_config(tmp_path, ["epsilon"], edited=True)
    edited = plan(cfg, fresh_sandbox, state)
    (tp,) = edited.targets
    got = kinds(tp)
    phases = [k[0] for k in got]
    assert got[0] == ("segments", "create", "seg-d")
    assert got[1] == ("access", "update", "seg-a")
    assert got[-1] == ("segments", "delete", "seg-c")
    assert phases[2:-1] == ["customers"] * 25 + ["links"] * 45
    link_changes = {c.key: c for c in tp.changes if isinstance(c, LinkChange)}
    assert link_changes["c0245"].removed == {"seg-a"}
    assert link_changes["c0402"].added == {"seg-a"}
    assert link_changes["c0305"].removed == {"seg-c"}
    assert link_changes["c0510"].added == {"seg-d"}
    # the rename and the delete can't be done through the API: said, pointing to the feed
    assert any("seg-b" in w and "rename" in w and "epsilon-feed" in w for w in tp.warnings)
    assert any("seg-c" in w and "cannot delete" in w and "epsilon-feed" in w for w in tp.warnings)
    assert edited.counts.links_add == 25
    assert edited.counts.links_remove == 20

    since = fresh_sandbox.requests()[-1]["id"]
    _, results = apply(cfg, fresh_sandbox, state)
    assert results[0].ok
    log = writes(fresh_sandbox, since)
    order = [r["route"] for r in log]
    assert order[0] == "POST /epsilon/v1/segments"
    assert "manage-access" in order[1]
    assert order[2] == "POST /epsilon/v1/customers"
    assert order[3:] == ["POST /epsilon/v1/customers/manage-segments"] * 45
    remote = fresh_sandbox.state()["epsilon"]
    seg_a = next(s for s in remote["segments"] if s["segmentId"] == "seg-a")
    assert seg_a["accessTeamIds"] == [TEAM_1]
    after = plan(cfg, fresh_sandbox, state)
    assert not after.has_changes
    assert any("seg-b" in w for w in after.targets[0].warnings)  # still named Beta remotely


def test_apply_twice_sends_no_writes_the_second_time(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    since = fresh_sandbox.requests()[-1]["id"]
    second, results = apply(cfg, fresh_sandbox, state)
    assert not second.has_changes
    assert results == []
    assert writes(fresh_sandbox, since) == []


def test_links_keep_segments_this_config_does_not_manage(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    fresh_sandbox.seed(
        {
            "epsilon": {
                "segments": [{"segmentId": "other-team", "name": "Theirs", "description": "x"}],
                "customers": [{"id": "c0001", "segmentIds": ["other-team"]}],
            }
        }
    )
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    p = plan(cfg, fresh_sandbox, state)
    assert p.targets[0].unmanaged == ()  # Epsilon can't list segments: nothing to report
    apply(cfg, fresh_sandbox, state)
    customers = {c["id"]: c for c in fresh_sandbox.state()["epsilon"]["customers"]}
    assert set(customers["c0001"]["segmentIds"]) == {"other-team", "seg-a"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def test_killed_apply_converges_on_rerun_without_duplicates(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = str(tmp_path / "state.db")
    common = ["--sandbox-url", fresh_sandbox.url, "--state", state]
    proc = _cli("apply", str(cfg), "--auto-approve", *common)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        links = [r for r in writes(fresh_sandbox) if r["route"].endswith("manage-segments")]
        if len(links) >= 60:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [r for r in writes(fresh_sandbox) if r["route"].endswith("manage-segments")]
    assert 60 <= len(done) < 310, "the apply was not interrupted halfway"

    code, out, err = invoke("apply", str(cfg), "--auto-approve", *common)  # the next run
    assert code == 0, err
    assert "interrupted" in err
    assert "verify: the remote matches the config" in out
    log = writes(fresh_sandbox)
    created = [r for r in log if r["route"] == "POST /epsilon/v1/segments"]
    assert [r["status"] for r in created] == [200, 200, 200]  # each segment created once
    assert not plan(cfg, fresh_sandbox, Path(state)).has_changes


def test_plan_json_matches_the_plan_schema_and_exit_codes(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    common = ["--sandbox-url", fresh_sandbox.url, "--state", str(tmp_path / "s.db")]
    code, out, err = invoke("plan", str(cfg), "--format", "json", "--detailed-exitcode", *common)
    assert code == 2, err
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    data = json.loads(out)
    assert_valid(schema, data)
    assert data["targets"][0]["sources"] == {
        "segments": "state store",
        "access": "state store",
        "customers": "live read",
        "links": "live read",
    }
    assert {c["action"] for c in data["targets"][0]["changes"]} >= {Action.CREATE.value}
