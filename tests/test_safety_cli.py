"""Safety through the command line: ``plan`` exits 1 on what apply would refuse, naming it and
the way to accept it; ``apply`` refuses the same plan without ``--force`` (a saved one too) and
applies it with; ``prevent_destroy`` holds even then."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from _scenario import apply, cli, plan, write_config
from conftest import ScenarioApply


def common(sb: Any, tmp: Path) -> list[str]:
    return ["--sandbox-url", sb.url, "--state", str(tmp / "state.db")]


def test_removing_a_prevent_destroy_segment_makes_plan_exit_1(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    cfg.write_text(
        cfg.read_text().replace("    name: Gamma\n", "    name: Gamma\n    prevent_destroy: true\n")
    )
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    cfg.write_text(cfg.read_text().split("  - id: seg-c")[0])
    for extra in ([], ["--detailed-exitcode"], ["--format", "json"]):
        done = cli("plan", str(cfg), *extra, *common(fresh_sandbox, tmp_path))
        assert done.returncode == 1, (extra, done.stderr)
        assert "apply would refuse this plan (1 refusal(s)):" in done.stderr
        assert "the plan deletes a segment with prevent_destroy: seg-c (Gamma)" in done.stderr
        assert "to accept: --force does not override it: declare seg-c again" in done.stderr
        assert "Traceback" not in done.stderr
    forced = cli("apply", str(cfg), "--auto-approve", "--force", *common(fresh_sandbox, tmp_path))
    assert forced.returncode == 1
    assert "apply refuses this plan" in forced.stderr
    assert "prevent_destroy: seg-c" in forced.stderr


def test_a_target_threshold_makes_plan_exit_1_and_its_setting_accepts_it(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = applied_scenario(["epsilon"])
    (tmp_path / "a.txt").write_text("c0000\n")  # seg-a: 250 members → 1
    done = cli("plan", str(cfg), "--detailed-exitcode", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1, done.stderr
    assert "unsafe plan: removes 249 of 360 links (69.2%)" in done.stderr
    assert (
        "to accept: raise `safety: {max_delete_share: 0.7}` on target eps (audiences.yaml:3), "
        "or apply with --force" in done.stderr
    )
    # the reviewer accepts it in the file itself: the same plan is then pending, not refused
    accepted = cfg.read_text().replace(
        "    type: epsilon\n",
        "    type: epsilon\n    safety: {max_delete_share: 0.7, guards: {max_removed_share: 1}}\n",
    )
    cfg.write_text(accepted)
    done = cli("plan", str(cfg), "--detailed-exitcode", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 2, done.stderr
    assert "refuse" not in done.stderr
    assert plan(cfg, fresh_sandbox, tmp_path / "state.db").verdict.safe


def test_apply_refuses_a_saved_plan_whose_verdict_blocks_unless_forced(
    applied_scenario: ScenarioApply, fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = applied_scenario(["epsilon"])
    (tmp_path / "a.txt").write_text("c0000\n")
    saved = tmp_path / "plan.json"
    made = cli("plan", str(cfg), "--out", str(saved), *common(fresh_sandbox, tmp_path))
    assert made.returncode == 1  # saved all the same, for review and for apply --force
    assert saved.exists()
    refused = cli("apply", str(saved), *common(fresh_sandbox, tmp_path))
    assert refused.returncode == 1
    assert "apply refuses this plan" in refused.stderr
    assert "removes 249 of 360 links" in refused.stderr
    # the verdict it was reviewed with is the one applied: accepted in the file since, it is stale
    original = cfg.read_text()
    cfg.write_text(
        original.replace(
            "    type: epsilon\n", "    type: epsilon\n    safety: {max_delete_share: 1}\n"
        )
    )
    stale = cli("apply", str(saved), "--force", *common(fresh_sandbox, tmp_path))
    assert stale.returncode == 1
    assert "the saved plan is stale: its safety verdict is not the verdict of now" in stale.stderr
    assert "no longer refused: target 'eps': unsafe plan: removes 249 of 360 links" in stale.stderr
    cfg.write_text(original)
    forced = cli("apply", str(saved), "--force", *common(fresh_sandbox, tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert "forced: target 'eps': unsafe plan: removes 249 of 360 links" in forced.stderr
    assert not plan(cfg, fresh_sandbox, tmp_path / "state.db").has_changes


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RECURRING = "        attribute: visits_per_week\n        gte: 1\n"


def recurring_shoppers(at_least: float) -> int:
    """general-segment-3's members, counted with the csv module (not the project's engine)."""
    with (EXAMPLES / "data" / "customers.csv").open(newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        return sum(
            1
            for row in rows
            if row["visits_per_week"] and float(row["visits_per_week"]) >= at_least
        )


def test_a_rule_edit_past_a_segments_guard_is_refused_until_accepted_in_the_file(
    example_on_sandbox: Path, fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = example_on_sandbox  # the example applied (a copy of the session's template)
    args = common(fresh_sandbox, tmp_path)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace(RECURRING, RECURRING.replace("gte: 1", "gte: 2")))
    before, after = recurring_shoppers(1), recurring_shoppers(2)
    assert (before - after) / before > 0.3  # the edit the issue describes: -62%
    sizes = (
        f"general-segment-3 (Recurring Shoppers): {before:,} → {after:,} members, "
        f"{after - before:+,} ({(after - before) / before:+.0%}), over its 30% removal guard"
    )
    line = text[: text.index("  - id: general-segment-3")].count("\n") + 1
    accept = (
        "to accept: add `guards: {max_removed_share: 0.65}` on segment general-segment-3 "
        f"(audiences.yaml:{line}), or apply with --force"
    )

    planned = cli("plan", str(cfg), "--detailed-exitcode", *args)
    assert planned.returncode == 1, planned.stderr
    for target in ("epsilon", "talon"):
        assert f"target '{target}': {sizes}" in planned.stderr
    assert planned.stderr.count(accept) == 2
    refused = cli("apply", str(cfg), "--auto-approve", *args)
    assert refused.returncode == 1
    assert "apply refuses this plan" in refused.stderr
    assert sizes in refused.stderr

    # the reviewer accepts it in the pull request: the segment's own guard, raised
    named = "    name: Recurring Shoppers\n"
    accepted = cfg.read_text(encoding="utf-8").replace(
        named, named + "    guards: {max_removed_share: 0.65}\n"
    )
    cfg.write_text(accepted)
    assert cli("plan", str(cfg), *args).returncode == 0
    assert cli("plan", str(cfg), "--detailed-exitcode", *args).returncode == 2

    # or whoever applies forces it, without touching the file
    cfg.write_text(accepted.replace("    guards: {max_removed_share: 0.65}\n", ""))
    forced = cli("apply", str(cfg), "--auto-approve", "--force", *args)
    assert forced.returncode == 0, forced.stderr
    assert f"forced: target 'epsilon': {sizes}" in forced.stderr
    assert cli("plan", str(cfg), "--detailed-exitcode", *args).returncode == 0
