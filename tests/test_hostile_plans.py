"""Hostile plan files and a hostile state store: a lost store, a corrupt snapshot, a plan
applied somewhere else than where it was planned or with another config, a full disk mid-apply.
Each is one clear line (naming the file or the target), never a traceback or "Internal error",
and nothing acknowledged by a platform is lost without a way to recover it."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from _scenario import cli, write_config

from reconciler.cli import main
from reconciler.plan import Endpoint, endpoint_of, read_plan_file
from reconciler.statestore import StateStore
from reconciler.statestore import _db as statestore


def common(sb: Any, tmp: Path) -> list[str]:
    return ["--sandbox-url", sb.url, "--state", str(tmp / "state.db")]


def clean(done: Any) -> None:
    """No traceback, no internal error."""
    for text in (done.stdout, done.stderr):
        assert "Traceback" not in text, text
        assert "Internal error" not in text, text


def drop_store(state: Path) -> None:
    """The state store lost: the database, its journal files, snapshots and locks."""
    for p in state.parent.glob(state.name + "*"):
        p.unlink()
    shutil.rmtree(state.with_name(state.stem + ".snapshots"), ignore_errors=True)


# -- 1. the state store lost, then applied again ------------------------------------------------
def test_plan_after_the_state_store_was_lost_and_applied_again(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon", "talonone"])
    args = common(fresh_sandbox, tmp_path)
    assert cli("apply", str(cfg), "--auto-approve", *args).returncode == 0
    drop_store(tmp_path / "state.db")
    again = cli("apply", str(cfg), "--auto-approve", *args)
    clean(again)
    assert again.returncode == 0, again.stderr
    for refresh in ("auto", "full"):
        done = cli("plan", str(cfg), "--detailed-exitcode", f"--refresh={refresh}", *args)
        clean(done)
        assert done.returncode == 0, (refresh, done.stdout, done.stderr)


# -- 2. a corrupt snapshot file -----------------------------------------------------------------
def snapshot_files(state: Path) -> list[Path]:
    return sorted(state.with_name(state.stem + ".snapshots").glob("*.parquet"))


def test_a_corrupt_snapshot_is_planned_around_and_refresh_rewrites_it(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    args = common(fresh_sandbox, tmp_path)
    assert cli("apply", str(cfg), "--auto-approve", *args).returncode == 0
    (snap,) = snapshot_files(tmp_path / "state.db")
    snap.write_bytes(b"PAR1" + b"\0garbage" * 100 + b"PAR1")

    for refresh in ("auto", "false"):
        done = cli("plan", str(cfg), "--detailed-exitcode", f"--refresh={refresh}", *args)
        clean(done)
        assert done.returncode == 0, (refresh, done.stdout, done.stderr)
        (warning,) = [line for line in done.stdout.splitlines() if snap.name in line]
        assert f"the membership snapshot {snap} cannot be read (" in warning
        assert "`reconcile refresh` rewrites it" in warning

    fixed = cli("refresh", str(cfg), *args)
    clean(fixed)
    assert fixed.returncode == 0, fixed.stderr
    assert "eps: membership snapshot rewritten from the state store's database" in fixed.stdout
    (rewritten,) = snapshot_files(tmp_path / "state.db")
    assert len(pq.read_table(rewritten)) == 310
    done = cli("plan", str(cfg), "--detailed-exitcode", *args)
    assert done.returncode == 0, done.stdout
    assert "snapshot" not in done.stdout


def test_an_apply_over_a_corrupt_snapshot_writes_a_new_one(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    args = common(fresh_sandbox, tmp_path)
    assert cli("apply", str(cfg), "--auto-approve", *args).returncode == 0
    (snap,) = snapshot_files(tmp_path / "state.db")
    snap.write_bytes(b"")
    write_config(tmp_path / "proj", ["epsilon"], edited=True)
    done = cli("apply", str(cfg), "--auto-approve", *args)
    clean(done)
    assert done.returncode == 0, done.stderr
    (rewritten,) = snapshot_files(tmp_path / "state.db")
    assert rewritten != snap
    again = cli("plan", str(cfg), "--detailed-exitcode", *args)
    assert again.returncode == 0, again.stdout
    assert "snapshot" not in again.stdout


# -- 3. a saved plan is applied where it was planned, nowhere else ------------------------------
def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and "Sandbox serving" not in line]


def test_a_plan_made_on_the_local_sandbox_is_not_applied_to_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # credentials set: without the record, the apply would go to the configured base_url
    for var in ("SCENARIO_EPSILON_TOKEN", "SCENARIO_EPSILON_KEY"):
        monkeypatch.setenv(var, "not-a-real-credential")
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    saved = tmp_path / "plan.json"
    state = ["--state", str(tmp_path / "state.db")]
    made = cli("plan", str(cfg), "--sandbox", "--out", str(saved), *state)
    assert made.returncode == 0, made.stderr
    recorded = json.loads(saved.read_text())
    assert recorded["format_version"] == 3
    assert recorded["targets"][0]["planned_at"] == {"sandbox": "local", "urls": {}}
    assert "not-a-real-credential" not in saved.read_text()

    done = cli("apply", str(saved), *state)
    clean(done)
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"Error: {saved}: target 'eps' was planned against the local sandbox (--sandbox), but "
        "this apply would go to base_url=http://127.0.0.1:9/never-used; apply it with "
        "--sandbox (or run `reconcile plan --out` again for where it should go)"
    ]
    applied = cli("apply", str(saved), "--sandbox", *state)
    assert applied.returncode == 0, applied.stderr
    assert "verify: the remote matches the config" in applied.stdout


def test_a_plan_made_on_a_running_sandbox_is_applied_there_alone(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon", "talonone"])
    saved = tmp_path / "plan.json"
    state = ["--state", str(tmp_path / "state.db")]
    url = fresh_sandbox.url
    assert cli("plan", str(cfg), "--sandbox-url", url, "--out", str(saved), *state).returncode == 0
    talon = json.loads(saved.read_text())["targets"][1]["planned_at"]
    assert talon["sandbox"] == url
    assert talon["urls"]["management_url"] == f"{url}/talonone-mgmt"
    for value in fresh_sandbox.credentials.values():
        assert value not in saved.read_text()

    elsewhere = cli("apply", str(saved), "--sandbox", *state)
    clean(elsewhere)
    assert elsewhere.returncode == 1
    (line,) = lines(elsewhere.stderr)
    assert f"target 'eps' was planned against the sandbox at {url} (--sandbox-url" in line
    assert "but this apply would go to the local sandbox (--sandbox)" in line
    assert f"apply it with --sandbox-url {url}" in line
    assert fresh_sandbox.requests() == [r for r in fresh_sandbox.requests() if r["method"] == "GET"]

    done = cli("apply", str(saved), "--sandbox-url", url, *state)
    assert done.returncode == 0, done.stderr


def test_the_recorded_endpoint_holds_locations_never_credentials() -> None:
    where = endpoint_of(
        {
            "base_url": "https://user:secret@api.example.com:8443/v1/?token=abc#frag",
            "management_url": "https://[::1]/mgmt",
            "destination_host": "sandbox.talon.one",
            "api_key": "k",
            "retailer_team_id": "13c84def",
        }
    )
    assert where == Endpoint(
        "",
        {
            "base_url": "https://api.example.com:8443/v1",
            "management_url": "https://[::1]/mgmt",
            "destination_host": "sandbox.talon.one",
        },
    )
    local = endpoint_of(
        {"base_url": "http://127.0.0.1:5555/epsilon", "directory": "feed"},
        sandbox="local",
        supplied={"base_url"},
    )
    assert local == Endpoint("local", {"directory": "feed"})


def test_a_plan_of_format_version_1_is_shown_but_not_applied(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    saved = tmp_path / "plan.json"
    made = cli("plan", str(cfg), "--out", str(saved), *common(fresh_sandbox, tmp_path))
    assert made.returncode == 0, made.stderr
    old = json.loads(saved.read_text())
    old["format_version"] = 1
    old["config"]["path"] = str(cfg)
    for t in old["targets"]:
        del t["planned_at"]
    saved.write_text(json.dumps(old))
    shown = cli("show", str(saved))
    assert shown.returncode == 0, shown.stderr
    done = cli("apply", str(saved), *common(fresh_sandbox, tmp_path))
    clean(done)
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"Error: {saved}: this plan (format version 1) was saved by an older "
        "audience-reconciler: it does not record where it was planned, so it cannot be applied "
        "safely; run `reconcile plan --out` again"
    ]
    assert [r for r in fresh_sandbox.requests() if r["method"] != "GET"] == []


# -- 4. a hostile plan file -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"format_version": 2, "created": "\xff\xfe"}', "not UTF-8 (byte 34)"),
        (b'{"format_version": 2, "n": ' + b"7" * 5000 + b"}", "integer string conversion"),
        (b'{"format_version": 2, "created": "x",', "line 1 column 38"),
        (b'{"format_version": 9}', "plan format version 9 is not supported"),
        (b'{"format_version": "2"}', "plan format version '2' is not supported"),
        (
            b'{"format_version": 2, "created": "x", "config": {"path": "a.yaml", "digest": "d"},'
            b' "targets": [{"target": "t", "type": "epsilon", "changes": [],'
            b' "unchanged_links": 1e999}]}',
            "t.unchanged_links: expected a count",
        ),
        (b'{"format_version": 2, "created": "x"}', "missing field 'config'"),
    ],
    ids=["deep", "not-utf8", "5000-digits", "truncated", "version", "version-type", "inf", "field"],
)
@pytest.mark.parametrize("command", ["apply", "show"])
def test_a_hostile_plan_file_is_one_line_naming_it(
    tmp_path: Path, command: str, content: bytes, reason: str
) -> None:
    bad = tmp_path / "plan.json"
    bad.write_bytes(content)
    done = cli(command, str(bad))
    clean(done)
    assert done.returncode == 1
    (line,) = lines(done.stderr)
    assert line.startswith(f"Error: {bad}: "), line
    assert reason in line, line


def test_read_plan_file_tells_a_config_from_a_plan(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    as_json = tmp_path / "audiences.json"
    as_json.write_text(json.dumps(yaml.safe_load(cfg.read_text())))
    assert read_plan_file(cfg) is None
    assert read_plan_file(as_json) is None
    flow = tmp_path / "flow.yaml"
    flow.write_text("{version: 1, targets: {}}\n")
    assert read_plan_file(flow) is None


# -- 5. a saved plan is applied with the config it was planned from ---------------------------
def test_a_plan_applied_from_another_folder_uses_its_own_config(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    url = ["--sandbox-url", fresh_sandbox.url]
    proj, other, plans = tmp_path / "proj", tmp_path / "other", tmp_path / "plans"
    write_config(proj, ["epsilon"])
    write_config(other, ["epsilon"], edited=True)  # another config, in the folder applied from
    plans.mkdir()
    made = cli("plan", "audiences.yaml", *url, "--out", "../plans/plan.json", cwd=proj)
    assert made.returncode == 0, made.stderr
    recorded = json.loads((plans / "plan.json").read_text())["config"]["path"]
    assert recorded == "../proj/audiences.yaml"

    done = cli("apply", "../plans/plan.json", *url, cwd=other)
    clean(done)
    assert done.returncode == 0, done.stderr
    assert "verify: the remote matches the config" in done.stdout
    # proj's config was applied, with proj's state store; nothing of the other one
    again = cli("plan", "audiences.yaml", *url, "--detailed-exitcode", cwd=proj)
    assert again.returncode == 0, again.stdout
    assert not (other / ".reconcile").exists()
    assert "seg-d" not in json.dumps(fresh_sandbox.requests())

    given = cli("apply", "../plans/plan.json", "--config", "audiences.yaml", *url, cwd=other)
    clean(given)
    assert given.returncode == 1
    (line,) = lines(given.stderr)
    assert line.startswith(
        "Error: ../plans/plan.json: audiences.yaml is not the config the plan was made from"
    ), line

    (proj / "audiences.yaml").rename(proj / "moved.yaml")
    missing = cli("apply", "../plans/plan.json", *url, cwd=other)
    clean(missing)
    assert missing.returncode == 1
    assert lines(missing.stderr) == [
        "Error: ../plans/plan.json: the config it was planned from, ../proj/audiences.yaml, is "
        "missing; restore it, or pass --config FILE (its digest must match the plan's)"
    ]
    # the config named instead is accepted (its digest matches), and the plan, applied
    # already, is then found stale
    moved = cli("apply", "../plans/plan.json", "--config", "../proj/moved.yaml", *url, cwd=other)
    clean(moved)
    assert "the saved plan is stale: the remote state of eps changed" in moved.stderr


def test_a_config_written_as_json_is_applied_as_a_config(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    as_json = tmp_path / "audiences.json"
    as_json.write_text(json.dumps(yaml.safe_load(cfg.read_text())))
    done = cli("apply", str(as_json), "--auto-approve", *common(fresh_sandbox, tmp_path))
    clean(done)
    assert done.returncode == 0, done.stderr


# -- 6. a full disk mid-apply -----------------------------------------------------------------
class FullDisk:
    """A SQLite connection whose writes to ``table`` fail, once armed, after ``after`` more
    succeeded: the disk fills in the middle of an apply."""

    def __init__(self, real: sqlite3.Connection, table: str, after: int) -> None:
        self._real, self._table, self._left = real, table, after

    def _check(self, sql: str) -> None:
        if f"INTO {self._table}(" in sql or f"FROM {self._table} WHERE" in sql:
            if self._left <= 0:
                raise sqlite3.OperationalError("database or disk is full")
            self._left -= 1

    def execute(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._real.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._real.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def run_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """``reconcile ARGS`` in this process (so a write can be made to fail), as main() runs it."""
    monkeypatch.setattr(sys, "argv", ["reconcile", *args])
    monkeypatch.setenv("NO_COLOR", "1")
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def stored_links(state: Path, target: str) -> dict[str, frozenset[str]]:
    store = StateStore(state)
    try:
        links = dict(store.load(target).links)
        snapshot = store.snapshot(target)
    finally:
        store.close()
    if snapshot is None:  # no apply has finished: nothing but the database
        return links
    # the snapshot and its overlay say what the database says
    file = {r["customer_id"]: r["segments"] for r in pq.read_table(snapshot.path).to_pylist()}
    file.update({c: segs for c, (_, segs) in snapshot.overlay.items()})
    assert {c: frozenset(s.split("\x1f")) for c, s in file.items() if s} == links
    return links


def platform_links(sb: Any) -> dict[str, frozenset[str]]:
    customers = sb.state()["epsilon"]["customers"]
    return {c["id"]: frozenset(c["segmentIds"]) for c in customers if c["segmentIds"]}


def _apply_on_a_full_disk(
    sb: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    after: int,
) -> tuple[Path, list[str], Path, int, str]:
    """An apply whose state store fills the disk once ``after`` rows went into ``table``:
    (config, common flags, state store, exit code, stderr)."""
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    args = common(sb, tmp_path)
    state = tmp_path / "state.db"
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        f"{statestore.__name__}.sqlite3.connect",
        lambda *a, **k: FullDisk(real_connect(*a, **k), table, after=after),
    )
    code, _, err = run_in_process(capsys, monkeypatch, "apply", str(cfg), "--auto-approve", *args)
    monkeypatch.setattr(f"{statestore.__name__}.sqlite3.connect", real_connect)
    return cfg, args, state, code, err


def test_a_full_disk_while_recording_stops_the_apply_and_refresh_recovers(
    fresh_sandbox: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg, args, state, code, err = _apply_on_a_full_disk(
        fresh_sandbox, tmp_path, capsys, monkeypatch, "links", after=40
    )
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert "Internal error" not in err
    assert "Traceback" not in err
    found = re.match(
        r"Error: target 'eps': (\d+) change\(s\) the platform acknowledged could not be "
        rf"recorded: cannot write to the state store {re.escape(str(state))}: database or "
        r"disk is full \(nothing of that write was kept\)\. Nothing more was sent\.",
        line,
    )
    assert found, line
    assert "`reconcile refresh` records what the platform holds" in line

    recorded = stored_links(state, "eps")  # consistent: what was recorded, and nothing half
    on_platform = platform_links(fresh_sandbox)
    assert len(recorded) == 40
    assert recorded.items() <= on_platform.items()
    # the message counts what the platform holds and the store does not: the batch that could
    # not be recorded and those in flight beside it (16 workers); none was started after it
    assert int(found[1]) == len(on_platform) - len(recorded)
    assert 1 <= int(found[1]) <= 16

    assert cli("refresh", str(cfg), *args).returncode == 0
    assert stored_links(state, "eps") == on_platform
    done = cli("apply", str(cfg), "--auto-approve", *args)
    assert done.returncode == 0, done.stderr
    assert cli("plan", str(cfg), "--detailed-exitcode", *args).returncode == 0


def test_a_full_disk_while_writing_the_snapshot_loses_nothing(
    fresh_sandbox: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = write_config(tmp_path / "proj", ["epsilon"])
    args = common(fresh_sandbox, tmp_path)
    state = tmp_path / "state.db"
    assert cli("apply", str(cfg), "--auto-approve", *args).returncode == 0
    write_config(tmp_path / "proj", ["epsilon"], edited=True)

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", full)
    code, _, err = run_in_process(capsys, monkeypatch, "apply", str(cfg), "--auto-approve", *args)
    monkeypatch.undo()
    assert code == 1
    assert "Internal error" not in err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert line.startswith(
        f"Error: target 'eps': cannot write the membership snapshot {state.parent}"
    ), line
    assert f"No space left on device; every change is recorded in {state}" in line
    # every change made is in the database, read through the old snapshot and its overlay
    assert stored_links(state, "eps") == platform_links(fresh_sandbox)
    assert not list(state.with_name("state.snapshots").glob("*.tmp"))
    for refresh in ("auto", "false"):
        again = cli("plan", str(cfg), "--detailed-exitcode", f"--refresh={refresh}", *args)
        assert again.returncode == 0, again.stdout


def test_a_full_disk_while_journaling_keeps_what_was_recorded(
    fresh_sandbox: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg, args, state, code, err = _apply_on_a_full_disk(
        fresh_sandbox, tmp_path, capsys, monkeypatch, "batches", after=10
    )
    assert code == 1
    assert "Internal error" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert line == (
        f"Error: target 'eps': cannot write to the state store {state}: database or disk is "
        "full (nothing of that write was kept). The changes acknowledged are recorded; nothing "
        "more was sent. Free space, then `reconcile apply` sends what is left"
    )
    # every acknowledged change is recorded: the next apply finishes, no refresh needed
    assert stored_links(state, "eps").items() <= platform_links(fresh_sandbox).items()
    store = StateStore(state)
    assert [r.status for r in store.runs("eps")] == ["failed"]  # the run is closed, as failed
    store.close()
    done = cli("apply", str(cfg), "--auto-approve", *args)
    assert done.returncode == 0, done.stderr
    assert cli("plan", str(cfg), "--detailed-exitcode", *args).returncode == 0
