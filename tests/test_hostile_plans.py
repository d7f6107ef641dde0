"""Hostile plan files and a hostile state store: a lost store, a corrupt snapshot, a plan
applied somewhere else than where it was planned or with another config, a full disk mid-apply.
Each is one clear line (naming the file or the target), never a traceback or "Internal error",
and nothing acknowledged by a platform is lost without a way to recover it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from _scenario import cli, write_config


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
