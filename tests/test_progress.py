"""An apply's progress: bars with rate and ETA on a terminal; off one, a line per running phase
at a steady interval (the clock and the interval injected, so nothing here waits on time)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from _scenario import cli, write_config
from rich.console import Console

from reconciler.apply import ApplyEvent
from reconciler.cli import _progress
from reconciler.cli._progress import PlainProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_running_phase_says_where_it_is_every_interval() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = PlainProgress(lines.append, interval=10.0, clock=clock)
    progress(ApplyEvent("eps", "customers", "start", 0, 20_000))
    assert lines == ["eps: customers: 20,000 change(s)…"]
    clock.now += 4
    progress(ApplyEvent("eps", "customers", "advance", 2_000, 20_000))
    progress.tick()
    assert len(lines) == 1  # not yet an interval
    clock.now += 6
    progress(ApplyEvent("eps", "customers", "advance", 5_000, 20_000))
    progress.tick()
    assert lines[1:] == ["eps: customers: 5,000 of 20,000 (25%), 500/s, ETA 0:30"]
    progress.tick()
    assert len(lines) == 2  # once an interval
    clock.now += 10  # no batch answered in this interval: the line comes anyway
    progress.tick()
    assert lines[2:] == ["eps: customers: 5,000 of 20,000 (25%), 250/s, ETA 1:00"]
    clock.now += 3590
    progress(ApplyEvent("eps", "customers", "end", 20_000, 20_000))
    assert lines[3:] == ["eps: customers: 20,000 of 20,000 (100%) done in 1:00:10"]
    clock.now += 60
    progress.tick()
    assert len(lines) == 4  # a finished phase says nothing more


def test_every_running_phase_gets_its_line_and_notes_pass_through() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = PlainProgress(lines.append, interval=10.0, clock=clock)
    progress(ApplyEvent("eps", "links", "start", 0, 100))
    progress(ApplyEvent("talon", "links", "start", 0, 0))
    progress(ApplyEvent("eps", "links", "note", message="a \x1b[31mnote [bold]"))
    clock.now += 10
    progress.tick()
    assert lines[2] == "eps: a \\x1b[31mnote [bold]"  # printed literally
    assert lines[3:] == [
        "eps: links: 0 of 100 (0%), 0/s, ETA ?",
        "talon: links: 0 of 0 (100%), 0/s, ETA ?",
    ]


def test_progress_as_json_lines() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = PlainProgress(lines.append, interval=10.0, clock=clock, as_json=True)
    progress(ApplyEvent("eps", "customers", "start", 0, 1_000))
    clock.now += 10
    progress(ApplyEvent("eps", "customers", "advance", 250, 1_000))
    progress.tick()
    progress(ApplyEvent("eps", "customers", "end", 1_000, 1_000))
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["progress_start", "progress_progress", "progress_end"]
    assert events[1] | {"time": None} == {
        "time": None,
        "level": "info",
        "logger": "reconciler.progress",
        "message": "eps: customers: 250 of 1,000 (25%), 25/s, ETA 0:30",
        "event": "progress_progress",
        "target": "eps",
        "step": "customers",
        "done": 250,
        "total": 1_000,
        "rate": 25.0,
        "eta": 30.0,
        "elapsed": 10.0,
    }


def test_the_reporter_ticks_by_itself_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lines come from a thread of their own, while the apply is busy elsewhere."""
    lines: list[str] = []
    ticked = threading.Event()

    def write(line: str) -> None:
        lines.append(line)
        if " of " in line:
            ticked.set()

    monkeypatch.setattr(_progress, "_plain_write", write)
    with _progress.reporter(interval=0.01) as report:
        report(ApplyEvent("eps", "customers", "start", 0, 10))
        assert ticked.wait(timeout=60)  # only catches a hang
    report(ApplyEvent("eps", "customers", "end", 10, 10))
    assert lines[0] == "eps: customers: 10 change(s)…"
    assert lines[1] == "eps: customers: 0 of 10 (0%), 0/s, ETA ?"


def test_on_a_terminal_bars_show_the_count_the_rate_and_the_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(_progress, "err", console)
    with _progress.reporter() as report:
        report(ApplyEvent("eps", "customers", "start", 0, 20_000))
        for done in range(1_000, 12_001, 1_000):
            report(ApplyEvent("eps", "customers", "advance", done, 20_000))
    text = screen.getvalue()
    assert "eps: customers" in text
    assert "12,000/20,000" in text
    assert "/s" in text
    assert "ETA" in text


def test_apply_off_a_terminal_prints_each_phase(tmp_path: Path) -> None:
    write_config(tmp_path, ["epsilon"])
    done = cli("apply", "audiences.yaml", "--sandbox", "--auto-approve", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "eps: segments: 3 change(s)…" in done.stderr
    assert "eps: segments: 3 of 3 (100%) done in 0:0" in done.stderr
