"""The library on its own: refresh and drift are methods of the reconciler with typed results, the
drift report renders without the command line, and using the library changes nothing process
wide (the command does its own start-up and garbage-collector tricks)."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _scenario import apply, reconciler, write_config, writes
from rich.console import Console
from test_drift_full import corrupt_snapshot, drop_member
from test_drift_refresh import last_mark, protect

from reconciler.apply import ApplyEvent
from reconciler.drift import DriftCheck, RefreshResult
from reconciler.exceptions import LockedError
from reconciler.render import render_drift_markdown, render_drift_text
from reconciler.statestore import StateStore

KEPT = ("segments", "access")  # Epsilon cannot read them: kept as last applied


def printed(markup: str) -> list[str]:
    """Rich markup as a console without colour prints it."""
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, soft_wrap=True, emoji=False, no_color=True).print(markup)
    return buffer.getvalue().splitlines()


def test_refresh_is_a_method_with_a_typed_result(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    protect(cfg, "Alpha")
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    fresh_sandbox.seed({"epsilon": {"customers": [{"id": "c0001", "segmentIds": []}]}})
    corrupt_snapshot(state)
    mark = last_mark(fresh_sandbox)

    rec = reconciler(cfg, fresh_sandbox, state)
    done = asyncio.run(rec.refresh())
    assert done == [
        RefreshResult(
            "eps",
            {"customers added": 1, "customers removed": 1, "links rewritten": 4},
            KEPT,
            rewritten=False,
        )
    ]
    assert writes(fresh_sandbox, since=mark) == []  # nothing written to the platform
    assert rec.store.protected("eps") == {"seg-a"}  # prevent_destroy survives the rewrite
    assert "ghost" not in rec.store.load("eps").customers
    # the store now matches the platform: a second refresh changes nothing
    assert asyncio.run(rec.refresh()) == [RefreshResult("eps", {}, KEPT, rewritten=False)]
    rec.store.close()


def test_refresh_takes_the_locks_when_not_held(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    rec = reconciler(cfg, fresh_sandbox, state)
    other = StateStore(state)
    try:
        with other.lock("eps"), pytest.raises(LockedError, match="another apply is running"):
            asyncio.run(rec.refresh())
        with rec.hold_locks(purpose="refresh"):  # held by the caller: not taken twice
            assert [r.target for r in asyncio.run(rec.refresh())] == ["eps"]
    finally:
        other.close()
        rec.store.close()


def test_drift_is_a_method_and_renders_without_the_command(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    corrupt_snapshot(state)
    drop_member(cfg, "c0003")

    rec = reconciler(cfg, fresh_sandbox, state)
    check = asyncio.run(rec.drift(full=True))
    rec.store.close()
    assert isinstance(check, DriftCheck)
    assert check.drifted
    assert check.stale == {"eps"}
    assert check.as_dict()["in_sync"] is False
    assert check.as_dict()["targets"][0]["snapshot"]["in_sync"] is False

    lines = printed(render_drift_text(check))
    assert lines[0] == (
        "eps: 1 pending change(s): 1 from config edits not yet applied, "
        "0 from changes made on the platform"
    )
    assert "  config: links c0003" in lines
    assert any(line.startswith("eps: the state store is stale: ") for line in lines)
    assert lines[-1] == (
        "  fix: `reconcile refresh --target eps` records what the platform holds in the "
        "state store (it writes nothing to the platform)"
    )
    # the command's own follow-up, with the flags of its run
    custom = printed(render_drift_text(check, refresh_command=lambda t: f"go {t}"))
    assert custom[-1].startswith("  fix: `go eps` records")

    md = render_drift_markdown(check, full_plan="reconcile plan x.yaml --format json")
    assert md.startswith("## Drift detected\n\n- eps: 1 pending change(s)")
    assert "### State store against a full read of the platform\n\n- eps: the state" in md
    assert "  - fix: `reconcile refresh --target eps` records" in md
    assert "### Plan: " in md  # the plan follows the report


def test_a_drift_report_shows_names_literally(fresh_sandbox: Any, tmp_path: Path) -> None:
    """A customer id from the platform with markup and a line break in it stays one line of
    text, and a plain Markdown value."""
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    hostile = "[bold]x*y\nz"
    fresh_sandbox.seed({"epsilon": {"customers": [{"id": hostile, "segmentIds": ["seg-a"]}]}})
    rec = reconciler(cfg, fresh_sandbox, state)
    check = asyncio.run(rec.drift(full=True))
    rec.store.close()
    text = "\n".join(printed(render_drift_text(check)))
    assert "[bold]x*y\\nz" in text
    md = render_drift_markdown(check)
    assert "- remote: links \\[bold\\]x\\*y\\\\nz\n" in md
    assert hostile not in md


def test_apply_leaves_the_garbage_collector_alone(fresh_sandbox: Any, tmp_path: Path) -> None:
    """``gc.freeze()`` is process wide: the command does it around an apply, the library not."""
    cfg = write_config(tmp_path, ["epsilon"])
    frozen: list[int] = []

    def report(event: ApplyEvent) -> None:
        frozen.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    _, results = apply(cfg, fresh_sandbox, tmp_path / "state.db", reporter=report)
    assert results
    assert all(r.ok for r in results)
    assert frozen
    assert set(frozen) == {0}


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_library_leaves_httpx_whole() -> None:
    """Importing the library (and httpx after it) does not stop httpx importing its own
    parts; the command's entry does, for its start-up time."""
    library = _run_python(
        "import sys, reconciler\n"
        "from reconciler import Reconciler, StateStore\n"
        "import httpx\n"
        "print(sys.modules.get('httpx._main', 'absent') is None)"
    )
    assert library == "False"
    command = _run_python(
        "import sys\n"
        "from reconciler.cli import main\n"
        "sys.argv = ['reconcile', '--version']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sys.modules.get('httpx._main', 'absent') is None)"
    )
    assert command.splitlines()[-1] == "True"
