"""``reconcile state``: list, show, rm, journal and prune on an applied config (the sandbox), and
the store's own methods under them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from _scenario import TEAM_1, TEAM_2, cli, write_config

from reconciler.statestore import SCHEMA_VERSION, StateStore


def _json(*args: str) -> dict[str, Any]:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert isinstance(body, dict)
    return body


def test_state_list_show_journal_and_rm_on_an_applied_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["epsilon", "talonone"])
    c = str(path)
    applied = cli("apply", c, "--sandbox", "--auto-approve")
    assert applied.returncode == 0, applied.stderr

    listed = _json("state", "list", "-c", c, "--sandbox", "--format", "json")
    by_target = {t["target"]: t for t in listed["targets"]}
    assert set(by_target) == {"eps", "talon"}
    assert by_target["eps"]["segments"] == ["seg-a", "seg-b", "seg-c"]
    assert by_target["eps"]["customers"] == 310
    assert by_target["eps"]["links"] == 250 + 100 + 10
    assert by_target["eps"]["last_run"]["status"] == "ok"
    assert listed["schema_version"] == SCHEMA_VERSION

    shown = _json("state", "show", "eps", "seg-a", "-c", c, "--sandbox", "-f", "json")
    assert (shown["name"], shown["members"]) == ("Alpha", 250)
    assert shown["access"] == sorted([TEAM_1, TEAM_2])
    text = cli("state", "show", "eps", "-c", c, "--sandbox")
    assert "eps / seg-b" in text.stdout
    assert "members: 100" in text.stdout

    journal = _json("state", "journal", "-c", c, "--sandbox", "-f", "json", "-t", "eps")
    (run,) = journal["runs"]
    steps = {s["step"]: s for s in run["steps"]}
    assert steps["customers"]["ok"] == 310
    assert steps["links"]["failed"] == 0

    # off a terminal, rm refuses without --yes and forgets nothing
    refused = cli("state", "rm", "eps", "seg-a", "-c", c, "--sandbox")
    assert refused.returncode == 1
    assert "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    forgot = cli("state", "rm", "eps", "seg-a", "-c", c, "--sandbox", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    assert "platform was not touched" in forgot.stdout
    shown_gone = cli("state", "show", "eps", "seg-a", "-c", c, "--sandbox")
    assert shown_gone.returncode == 1
    assert "records no segment 'seg-a'" in shown_gone.stderr

    # the next plan creates what was forgotten again (its fields and access list)
    planned = _json("plan", c, "--sandbox", "-f", "json", "-t", "eps")
    changes = planned["targets"][0]["changes"]
    created = {(ch["phase"], ch["action"], ch["key"]) for ch in changes}
    assert ("segments", "create", "seg-a") in created
    assert ("access", "create", "seg-a") in created
    again = cli("apply", c, "--sandbox", "--auto-approve", "-t", "eps")
    assert again.returncode == 0, again.stderr
    shown = _json("state", "show", "eps", "seg-a", "-c", c, "--sandbox", "-f", "json")
    assert shown["access"] == sorted([TEAM_1, TEAM_2])


def test_reading_commands_never_create_a_store(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["epsilon"])
    listed = cli("state", "list", "-c", str(path), "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["targets"] == []
    shown = cli("state", "show", "eps", "-c", str(path))
    assert shown.returncode == 1
    assert "no state store at" in shown.stderr
    assert not (tmp_path / ".reconcile").exists()


def test_the_journal_lists_unfinished_runs_first_and_prune_keeps_what_matters(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path / "s.db")
    old = store.start_run("t", "d1")
    store.record_batch(old, "links", 10, 10, 0)
    store.finish_run(old, "ok", {"applied": 10})
    died = store.start_run("t", "d2")  # its process died: never finished
    latest = store.start_run("t", "d3")
    store.record_batch(latest, "segments", 1, 1, 0)
    store.record_batch(latest, "links", 5, 4, 1)
    store.record_batch(latest, "links", 5, 5, 0)
    store.finish_run(latest, "failed", {"applied": 10})
    other = store.start_run("u", "d4")
    store.finish_run(other, "ok", {})

    assert [r.id for r in store.recent_runs()] == [died, other, latest, old]
    assert [r.id for r in store.recent_runs(["t"], limit=2)] == [died, latest]
    steps = store.run_steps(latest)
    assert [(s.step, s.batches, s.size, s.ok, s.failed) for s in steps] == [
        ("segments", 1, 1, 1, 0),
        ("links", 2, 10, 9, 1),
    ]
    assert store.last_run("t") is not None

    assert store.prune_journal(time.time() + 60) == (1, 1)  # only the old run of t
    assert [r.id for r in store.recent_runs()] == [died, other, latest]
    assert store.prune_journal(time.time() - 3600) == (0, 0)


def test_forget_drops_the_segment_its_access_and_its_links_only(tmp_path: Path) -> None:
    from reconciler.model import Segment
    from reconciler.plan.changes import AccessChange, Action, LinkChange, SegmentChange

    store = StateStore(tmp_path / "s.db")
    store.record(
        "t",
        [
            SegmentChange(Action.CREATE, "a_1", None, Segment("a_1", "A")),
            SegmentChange(Action.CREATE, "ab1", None, Segment("ab1", "B")),
            AccessChange(Action.CREATE, "a_1", frozenset(), frozenset({"team"})),
            LinkChange("c1", frozenset(), frozenset({"a_1", "ab1"})),
            LinkChange("c2", frozenset(), frozenset({"ab1"})),
        ],
    )
    record = store.segment_record("t", "ab1")
    assert record is not None
    assert record.members == 2  # exact ids: '_' is no wildcard
    assert store.forget("t", "a_1")
    assert not store.forget("t", "a_1")
    state = store.load("t")
    assert set(state.segments) == {"ab1"}
    assert state.access == {}
    assert state.links == {"c1": {"ab1"}, "c2": {"ab1"}}
    summary = store.summary("t")
    assert (summary.segments, summary.links) == (("ab1",), 2)


def test_rm_on_the_sandbox_example_is_followed_by_a_plan_that_creates_it_again(
    example_applied_locally: Path, tmp_path: Path
) -> None:
    # the example applied with --sandbox: a copy of the session's template
    shutil.copytree(example_applied_locally, tmp_path / "examples")
    c = str(tmp_path / "examples" / "audiences.yaml")
    before = _json(
        "state", "show", "epsilon", "custom-segment-1", "-c", c, "--sandbox", "-f", "json"
    )

    forgot = cli("state", "rm", "epsilon", "custom-segment-1", "-c", c, "--sandbox", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    listed = _json("state", "list", "-c", c, "--sandbox", "-f", "json")
    (eps,) = [t for t in listed["targets"] if t["target"] == "epsilon"]
    assert "custom-segment-1" not in eps["segments"]

    planned = cli("plan", c, "--sandbox", "--target", "epsilon", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "+ segment custom-segment-1" in planned.stdout
    again = cli("apply", c, "--sandbox", "--auto-approve", "--target", "epsilon")
    assert again.returncode == 0, again.stderr
    after = _json(
        "state", "show", "epsilon", "custom-segment-1", "-c", c, "--sandbox", "-f", "json"
    )
    assert (after["name"], after["access"]) == (before["name"], before["access"])
    settled = cli("plan", c, "--sandbox", "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout


def test_every_state_command_has_help() -> None:
    for command in ("list", "show", "rm", "journal", "prune"):
        done = cli("state", command, "--help")
        assert done.returncode == 0, done.stderr
        assert "--config" in done.stdout
        assert "--env" in done.stdout


def test_prune_takes_an_age_and_refuses_anything_else(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    store = StateStore(state)
    run = store.start_run("t", "d")
    store.finish_run(run, "ok", {})
    store.close()
    done = cli("state", "prune", "--older-than", "30d", "--state", str(state))
    assert done.returncode == 0, done.stderr
    assert "Pruned 0 run(s)" in done.stdout
    bad = cli("state", "prune", "--older-than", "a month", "--state", str(state))
    assert bad.returncode == 2
    assert "not an age" in bad.stderr
