"""The review a plan carries per managed segment: sizes computed where the diff runs (DuckDB
over the snapshot for Epsilon, the two States of a full read for Talon.One) equal an
independent count of the example; samples repeat; definitions are kept at each apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _example_counts import EXAMPLE, check_review, example_members
from _scenario import cli
from _schema import assert_valid

from reconciler.sandbox import Sandbox

SCHEMA = json.loads((EXAMPLE.parent / "schemas" / "plan.schema.json").read_text())
RULE = "        attribute: visits_per_week\n        gte: 1\n"
EDITED = "        attribute: visits_per_week\n        gte: 2\n"


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


def _plan_json(config: Path, common: list[str]) -> dict[str, Any]:
    done = cli("plan", str(config), "--format", "json", *common)
    assert done.returncode in (0, 1), done.stderr  # 1: apply would refuse it (its verdict)
    data: dict[str, Any] = json.loads(done.stdout)
    assert_valid(SCHEMA, data)
    return data


@pytest.fixture
def applied(
    example_on_sandbox: Path, fresh_sandbox: Sandbox, tmp_path: Path
) -> tuple[Path, list[str]]:
    """The example applied to both targets of the sandbox (a copy of the session's template),
    and the flags that reach them."""
    common = ["--sandbox-url", fresh_sandbox.url, "--state", str(tmp_path / "state.db")]
    return example_on_sandbox, common


@pytest.mark.parametrize(
    ("refresh", "links"),
    [
        # from the state store: both targets diffed by DuckDB against the snapshot
        ("false", "state store"),
        # read in full: the two States diffed (and counted) in Python
        ("full", "live read"),
    ],
)
def test_one_rule_edited_gives_sizes_equal_to_an_independent_count(
    applied: tuple[Path, list[str]], refresh: str, links: str
) -> None:
    config, common = applied
    _edit(config, RULE, EDITED)
    data = _plan_json(config, [*common, f"--refresh={refresh}"])
    before, after = example_members(), example_members(visits=2)
    assert len(before["general-segment-3"]) - len(after["general-segment-3"]) > 100
    epsilon, talon = (data["targets"][i] for i in (0, 1))
    assert epsilon["sources"]["links"] == talon["sources"]["links"] == links
    check_review(epsilon["segments"], before, after)
    talon_ids = [s for s in before if s != "custom-segment-1"]
    check_review(
        talon["segments"],
        {s: before[s] for s in talon_ids},
        {s: after[s] for s in talon_ids},
    )
    # the per-segment removals add up to the plan's
    for target in (epsilon, talon):
        removed = sum(s["members_removed"] for s in target["segments"])
        assert removed == target["summary"]["links_remove"] > 0


def test_the_samples_are_the_same_when_planned_again(applied: tuple[Path, list[str]]) -> None:
    config, common = applied
    _edit(config, RULE, EDITED)
    first, second = _plan_json(config, common), _plan_json(config, common)

    def samples(data: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
        return [
            (s["id"], s["entering"], s["leaving"]) for t in data["targets"] for s in t["segments"]
        ]

    assert samples(first) == samples(second)
    leaving = [s["leaving"] for t in first["targets"] for s in t["segments"] if s["leaving"]]
    assert len(leaving) == 2
    assert all(len(ids) == 5 for ids in leaving)
    # salted per target and segment: not simply the lowest ids
    gone = sorted(
        example_members()["general-segment-3"] - example_members(visits=2)["general-segment-3"]
    )
    assert leaving[0] != gone[:5] or leaving[1] != gone[:5]
    assert leaving[0] != leaving[1]


def test_the_definition_applied_is_kept_and_a_rule_edit_shows_it(
    applied: tuple[Path, list[str]],
) -> None:
    config, common = applied
    unchanged = _plan_json(config, common)
    for target in unchanged["targets"]:
        for seg in target["segments"]:
            assert seg["definition"]["applied"] == seg["definition"]["declared"] != ""
    _edit(config, RULE, EDITED)
    edited = _plan_json(config, common)
    for target in edited["targets"]:
        by_id = {s["id"]: s["definition"] for s in target["segments"]}
        definition = by_id.pop("general-segment-3")
        assert "gte: 1\n" in definition["applied"]
        assert "gte: 2\n" in definition["declared"]
        assert definition["applied"].replace("gte: 1\n", "gte: 2\n") == definition["declared"]
        assert all(d["applied"] == d["declared"] for d in by_id.values())
    # once applied, the edited rule is the one recorded
    done = cli("apply", str(config), "--auto-approve", "--force", *common)
    assert done.returncode == 0, done.stderr
    again = _plan_json(config, common)
    for target in again["targets"]:
        (seg3,) = (s for s in target["segments"] if s["id"] == "general-segment-3")
        assert seg3["definition"]["applied"] == seg3["definition"]["declared"]
        assert "gte: 2\n" in seg3["definition"]["applied"]
        assert seg3["status"] == "unchanged"
        assert seg3["members_added"] == 0


def test_a_removed_segment_is_reviewed_as_deleted_with_its_applied_definition(
    applied: tuple[Path, list[str]],
) -> None:
    config, common = applied
    text = config.read_text(encoding="utf-8")
    start = text.index("  - id: general-segment-2")
    end = text.index("  - id: general-segment-3")
    config.write_text(text[:start] + text[end:], encoding="utf-8")
    data = _plan_json(config, common)
    members = example_members()["general-segment-2"]
    for target in data["targets"]:
        (seg,) = (s for s in target["segments"] if s["id"] == "general-segment-2")
        assert seg["status"] == "deleted"
        assert (seg["members_before"], seg["members_after"]) == (len(members), 0)
        assert seg["members_removed"] == len(members)
        assert seg["definition"]["declared"] == ""
        assert "value_basket_share" in seg["definition"]["applied"]
        assert seg["overlap"] == {}


def test_the_text_and_markdown_tables_show_the_independently_counted_sizes(
    applied: tuple[Path, list[str]],
) -> None:
    """The same sizes as the JSON's, in the terminal's table and the pull request's: the
    segment that changes has its row on each target, the others none."""
    config, common = applied
    _edit(config, RULE, EDITED)
    before, after = example_members(), example_members(visits=2)
    changed = [seg for seg in before if before[seg] != after[seg]]
    assert changed == ["general-segment-3"]
    text = cli("--no-color", "plan", str(config), *common)
    markdown = cli("plan", str(config), "--format", "markdown", *common)
    for done in (text, markdown):
        assert done.returncode == 1, done.stderr  # general-segment-3 shrinks past its guard
    for seg in before:
        was, now = len(before[seg]), len(after[seg])
        entering, leaving = len(after[seg] - before[seg]), len(before[seg] - after[seg])
        rows = [line.split() for line in text.stdout.splitlines() if f"  {seg} (" in line]
        md_rows = [  # the table's rows (the overlap fold's rows hold no "before → after")
            line
            for line in markdown.stdout.splitlines()
            if line.startswith(f"| `{seg}`") and " → " in line
        ]
        if seg not in changed:
            assert rows == [], seg
            assert md_rows == [], seg
            continue
        assert len(rows) == len(md_rows) == 2, (rows, md_rows)  # epsilon and talon
        for row in rows:
            at = row.index(f"{was:,}")
            assert row[at : at + 4] == [f"{was:,}", f"{now:,}", f"{entering:,}", f"-{leaving:,}"]
        for line in md_rows:
            assert f"| {was:,} → {now:,} | {entering:,} | -{leaving:,} |" in line, line
