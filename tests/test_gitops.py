"""The pull-request workflow through the CLI: saved plans, safety, drift, import, forget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from _scenario import apply, cli, plan, write_config
from conftest import ScenarioApply

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"


def common(sb: Any, tmp: Path) -> list[str]:
    return ["--sandbox-url", sb.url, "--state", str(tmp / "state.db")]


def link_on_platform(sb: Any, customer: str, segments: list[str]) -> None:
    """Someone changes a customer's segments directly on Epsilon, behind the reconciler."""
    response = httpx.post(
        f"{sb.epsilon_url}/v1/customers/manage-segments",
        headers={"Authorization": f"Basic {sb.credentials['epsilon_api_key']}"},
        json={"customerId": customer, "teamId": RETAILER, "segments": {"segmentIds": segments}},
    )
    assert response.status_code == 200


# -- saved plans ------------------------------------------------------------------------------
def test_saved_plan_applies_when_nothing_moved(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    saved = tmp_path / "plan.json"
    made = cli("plan", str(cfg), "--out", str(saved), *common(fresh_sandbox, tmp_path))
    assert made.returncode == 0, made.stderr
    done = cli("apply", str(saved), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "verify: the remote matches the config" in done.stdout
    assert not plan(cfg, fresh_sandbox, tmp_path / "state.db").has_changes


def test_saved_plan_is_refused_when_the_remote_moved(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path
) -> None:
    applied_scenario(["epsilon"])
    cfg = write_config(tmp_path, ["epsilon"], edited=True)
    saved = tmp_path / "plan.json"
    assert (
        cli("plan", str(cfg), "--out", str(saved), *common(fresh_sandbox, tmp_path)).returncode == 0
    )
    link_on_platform(fresh_sandbox, "c0001", [])
    done = cli("apply", str(saved), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1
    assert "the saved plan is stale: the remote state of eps changed" in done.stderr
    assert "Traceback" not in done.stderr


def test_saved_plan_is_refused_when_the_config_changed(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    saved = tmp_path / "plan.json"
    assert (
        cli("plan", str(cfg), "--out", str(saved), *common(fresh_sandbox, tmp_path)).returncode == 0
    )
    write_config(tmp_path, ["epsilon"], edited=True)
    done = cli("apply", str(saved), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1
    assert "the config changed" in done.stderr


# -- safety -----------------------------------------------------------------------------------
def shrink(cfg: Path) -> None:
    (cfg.parent / "a.txt").write_text("c0000\n")


def test_mass_removal_is_refused_then_forced(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = applied_scenario(["epsilon"])
    shrink(cfg)
    refused = cli("apply", str(cfg), "--auto-approve", *common(fresh_sandbox, tmp_path))
    assert refused.returncode == 1
    assert "unsafe plan: removes 249 of 360 links (69.2%)" in refused.stderr
    assert "over the 30% limit by 39.2%" in refused.stderr
    forced = cli("apply", str(cfg), "--auto-approve", "--force", *common(fresh_sandbox, tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert not plan(cfg, fresh_sandbox, tmp_path / "state.db").has_changes


def test_prevent_destroy_holds_even_with_force(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    text = cfg.read_text().replace(
        "    name: Gamma\n", "    name: Gamma\n    prevent_destroy: true\n"
    )
    cfg.write_text(text)
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    # drop seg-c from the file: the state store remembers it was protected
    cfg.write_text(text.split("  - id: seg-c")[0])
    done = cli("apply", str(cfg), "--auto-approve", "--force", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1
    assert "prevent_destroy: seg-c" in done.stderr
    assert "--force does not override it" in done.stderr


# -- drift ------------------------------------------------------------------------------------
def test_drift_exit_codes(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = applied_scenario(["epsilon"])
    in_sync = cli("drift", str(cfg), *common(fresh_sandbox, tmp_path))
    assert in_sync.returncode == 0, in_sync.stderr
    assert "eps: in sync" in in_sync.stdout

    link_on_platform(fresh_sandbox, "c0001", [])
    drifted = cli("drift", str(cfg), "--format", "json", *common(fresh_sandbox, tmp_path))
    assert drifted.returncode == 2, drifted.stderr
    report = json.loads(drifted.stdout)
    assert report["in_sync"] is False
    assert report["targets"][0]["sides"] == {"remote": 1}
    assert report["targets"][0]["not_read_live"] == ["segments", "access"]

    write_config(tmp_path, ["epsilon"], edited=True)
    both = cli("drift", str(cfg), *common(fresh_sandbox, tmp_path))
    assert both.returncode == 2
    assert "from config edits not yet applied" in both.stdout

    (tmp_path / "broken.yaml").write_text("version: 1\nsegments: 3\n")
    broken = cli("drift", str(tmp_path / "broken.yaml"), *common(fresh_sandbox, tmp_path))
    assert broken.returncode == 1
    assert "broken.yaml:2:" in broken.stderr

    md = cli("drift", str(cfg), "--format", "markdown", *common(fresh_sandbox, tmp_path))
    assert md.returncode == 2
    assert md.stdout.startswith("## Drift detected")


# -- import -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["epsilon", "talonone", "epsilon-feed"])
def test_import_then_plan_shows_zero_changes(fresh_sandbox: Any, tmp_path: Path, kind: str) -> None:
    source = write_config(tmp_path / "before", [kind])
    apply(source, fresh_sandbox, tmp_path / "before" / "state.db")
    out = tmp_path / "after" / "imported.yaml"
    state = ["--sandbox-url", fresh_sandbox.url, "--state", str(tmp_path / "after" / "state.db")]
    target = {"epsilon": "eps", "talonone": "talon", "epsilon-feed": "feed"}[kind]
    done = cli("import", str(source), "--target", target, "--out", str(out), *state)
    assert done.returncode == 0, done.stderr
    assert len(list((out.parent / "data").glob("seg-a-*.txt"))) == 1  # 250 members: a file
    assert "c0300" in out.read_text()  # 10 members: inline
    assert cli("validate", str(out)).returncode == 0
    after = cli("plan", str(out), "--detailed-exitcode", *state)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "No changes." in after.stdout


# -- explain and forget -----------------------------------------------------------------------
def test_explain_names_the_file_and_the_ids(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    done = cli("explain", "c0210", str(cfg))
    assert done.returncode == 0, done.stderr
    assert "c0210 is in 2 segment(s)" in done.stdout
    assert "in seg-a on eps" in done.stdout
    assert "by file: a.txt" in done.stdout
    assert "by ids" in done.stdout


def test_released_segment_is_forgotten_not_deleted(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    text = cfg.read_text().split("  - id: seg-c")[0]
    cfg.write_text(text + "removed:\n  - {id: seg-c, destroy: false}\n")
    released = plan(cfg, fresh_sandbox, state)
    (tp,) = released.targets
    assert [(c.action.value, c.key) for c in tp.changes] == [("forget", "seg-c")]
    apply(cfg, fresh_sandbox, state)
    audiences = {a["integrationId"] for a in fresh_sandbox.state()["talonone"]["audiences"]}
    assert "seg-c" in audiences
    again = plan(cfg, fresh_sandbox, state)
    assert not again.has_changes
    assert again.targets[0].unmanaged == ("seg-c",)


def test_explain_names_the_rule_and_where_it_is_written() -> None:
    example = Path(__file__).parent.parent / "examples" / "audiences.yaml"
    done = cli("explain", "cust_00001", str(example), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rules = [r for r in report["reasons"] if r["via"] == "rule"]
    assert rules, report
    first = rules[0]
    assert first["detail"].startswith("shoppers: ")
    assert first["line"] > 0
    assert set(first["targets"]) == {"epsilon", "talon"}
    text = cli("explain", "cust_00001", str(example))
    assert f"by rule: {first['detail']} (audiences.yaml:{first['line']}:" in text.stdout
