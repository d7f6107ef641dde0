"""Segment sizes over time: each apply records them; ``reconcile history`` shows them; a plan's
review carries the last applied ones."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from _scenario import cli

from reconciler.cli.history import sparkline
from reconciler.statestore import StateStore

EXAMPLE = Path(__file__).parent.parent / "examples"


def _recurring(data: Path, at_least: float) -> int:
    """general-segment-3's members counted from the CSV, without the project's engine."""
    with (data / "customers.csv").open(newline="") as f:
        return sum(
            1
            for row in csv.DictReader(f)
            if row["visits_per_week"] and float(row["visits_per_week"]) >= at_least
        )


@pytest.fixture(scope="module")
def applied_twice(example_applied_locally: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example applied to the sandbox (a copy of the session's template), then applied
    again with one rule edited. The tests only read it: one for the module."""
    ex = tmp_path_factory.mktemp("history") / "ex"
    shutil.copytree(example_applied_locally, ex)
    config = ex / "audiences.yaml"
    text = config.read_text()
    rule = "attribute: visits_per_week\n        gte: "
    edited = text.replace(rule + "1", rule + "2")
    assert edited != text
    config.write_text(edited)
    second = cli("apply", str(config), "--sandbox", "--auto-approve", "--force")
    assert second.returncode == 0, second.stderr
    return config


def test_each_apply_records_every_segments_size_as_counted_from_the_data(
    applied_twice: Path,
) -> None:
    done = cli("history", str(applied_twice), "general-segment-3", "--sandbox", "-f", "json")
    assert done.returncode == 0, done.stderr
    sizes = json.loads(done.stdout)["sizes"]
    data = applied_twice.parent / "data"
    want = [_recurring(data, 1), _recurring(data, 2)]
    assert want[0] > want[1] > 0
    for target in ("epsilon", "talon"):
        mine = [s for s in sizes if s["target"] == target]
        assert [s["members"] for s in mine] == want
        assert [s["outcome"] for s in mine] == ["ok", "ok"]
        assert mine[0]["run"] < mine[1]["run"]


def test_history_draws_the_sizes_and_the_change(applied_twice: Path) -> None:
    data = applied_twice.parent / "data"
    before, after = _recurring(data, 1), _recurring(data, 2)
    overview = cli("history", str(applied_twice), "--sandbox", "--target", "talon")
    assert overview.returncode == 0, overview.stderr
    row = next(line for line in overview.stdout.splitlines() if "general-segment-3" in line)
    assert "talon" in row
    assert "█▁" in row
    assert f"{after:,}" in row
    assert f"{after - before:+,}" in row
    assert "epsilon" not in overview.stdout
    one = cli("history", str(applied_twice), "general-segment-3", "--sandbox", "-t", "epsilon")
    assert one.returncode == 0, one.stderr
    rows = [line for line in one.stdout.splitlines() if "epsilon" in line]
    assert len(rows) == 2
    assert " ok " in rows[0]
    assert f"{after:,}" in rows[1]


def test_the_plan_review_carries_the_last_applied_sizes(applied_twice: Path) -> None:
    """After two applies, the next plan's review shows both recorded sizes beside the new."""
    store = StateStore(applied_twice.parent / ".reconcile" / "sandbox" / "state.db")
    try:
        recent = store.recent_sizes("epsilon", 5)
    finally:
        store.close()
    data = applied_twice.parent / "data"
    assert recent["general-segment-3"] == (_recurring(data, 1), _recurring(data, 2))
    assert set(recent) == {
        "general-segment-1",
        "general-segment-2",
        "general-segment-3",
        "custom-segment-1",
    }


def test_history_before_any_apply_and_of_an_unknown_config_says_so(tmp_path: Path) -> None:
    ex = tmp_path / "ex"
    shutil.copytree(EXAMPLE, ex, ignore=shutil.ignore_patterns(".reconcile"))
    nothing = cli("history", str(ex / "audiences.yaml"), "--sandbox")
    assert nothing.returncode == 1
    assert "no state store yet" in nothing.stderr
    missing = cli("history", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert "nope.yaml: no such config file" in missing.stderr
    assert "Traceback" not in missing.stderr + nothing.stderr


def test_sparkline_scales_between_the_smallest_and_the_largest() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([5, 5, 5]) == "▅▅▅"
    assert sparkline([1, 8, 4]) == "▁█▄"
    assert len(sparkline(list(range(100)))) == 100
