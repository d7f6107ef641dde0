"""An apply's progress on stderr: Rich bars per target and phase on a terminal (done/total with
thousands separators, rate, ETA); off a terminal (every CI log), a line per running phase at a
steady interval — a line when it starts, then every ``interval`` seconds (10 by default) while
it runs, done/total, rate and ETA, then its end — or, with ``--log-format json``, the same as one
JSON object a line."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._printable import literal, printable
from ._common import err

__all__ = ["INTERVAL", "PlainProgress", "json_lines", "reporter"]

#: seconds between two lines of a running phase off a terminal
INTERVAL = 10.0

#: progress as JSON lines (``--log-format json``), set by the command line
_json = {"on": False}


def json_lines(on: bool) -> None:
    """Print the off-terminal progress as JSON objects, one a line."""
    _json["on"] = on


@dataclass(slots=True)
class _Phase:
    target: str
    step: str
    total: int
    began: float
    done: int = 0
    #: when a line about it was printed last
    said: float = field(default=0.0)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class PlainProgress:
    """Progress as lines: a start, one every ``interval`` seconds per running phase
    (:meth:`tick`, which :func:`reporter` calls from a thread), an end. ``clock`` and
    ``write`` are injectable for tests."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        as_json: bool = False,
    ) -> None:
        self._write = write
        self.interval = interval
        self._clock = clock
        self._json = as_json
        self._running: dict[tuple[str, str], _Phase] = {}
        self._lock = threading.Lock()

    def __call__(self, e: Any) -> None:
        """An :class:`~reconciler.apply.ApplyEvent`."""
        now = self._clock()
        with self._lock:
            key = (e.target, e.step)
            if e.kind == "note":
                self._say("note", e.target, e.step, message=e.message)
            elif e.kind == "start":
                self._running[key] = _Phase(e.target, e.step, e.total, now, said=now)
                self._say("start", e.target, e.step, total=e.total)
            elif (phase := self._running.get(key)) is not None:
                phase.done = e.done
                if e.kind == "end":
                    del self._running[key]
                    self._say_progress("end", phase, now)

    def tick(self) -> None:
        """A line for each running phase not reported for ``interval`` seconds."""
        now = self._clock()
        with self._lock:
            for phase in self._running.values():
                if now - phase.said >= self.interval:
                    phase.said = now
                    self._say_progress("progress", phase, now)

    def _say_progress(self, kind: str, phase: _Phase, now: float) -> None:
        elapsed = now - phase.began
        rate = phase.done / elapsed if elapsed > 0 else 0.0
        left = phase.total - phase.done
        eta = left / rate if rate > 0 else None
        self._say(
            kind,
            phase.target,
            phase.step,
            done=phase.done,
            total=phase.total,
            rate=round(rate, 1),
            eta=None if eta is None else round(eta, 1),
            elapsed=round(elapsed, 1),
        )

    def _say(self, kind: str, target: str, step: str, **values: Any) -> None:
        """One line: text (written as it is, not through Rich markup), or a JSON object of
        the shape the JSON log lines have (time, level, logger, message, event, fields)."""
        text = _text(kind, target, step, values)
        if not self._json:
            self._write(printable(text))
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        body = {
            "time": f"{stamp}.{int(now * 1000) % 1000:03d}Z",
            "level": "info",
            "logger": "reconciler.progress",
            "message": text,
            "event": f"progress_{kind}",
            "target": target,
            "step": step,
        }
        self._write(json.dumps({**values, **body}, ensure_ascii=False))


def _text(kind: str, target: str, step: str, values: dict[str, Any]) -> str:
    where = f"{target}: {step}"
    if kind == "note":
        return f"{target}: {values['message']}"
    if kind == "start":
        return f"{where}: {values['total']:,} change(s)…"
    share = values["done"] / values["total"] if values["total"] else 1.0
    line = f"{where}: {values['done']:,} of {values['total']:,} ({share:.0%})"
    if kind == "end":
        return f"{line} done in {_duration(values['elapsed'])}"
    eta = "?" if values["eta"] is None else _duration(values["eta"])
    return f"{line}, {values['rate']:,.0f}/s, ETA {eta}"


@contextlib.contextmanager
def _ticking(progress: PlainProgress) -> Iterator[None]:
    """Call ``progress.tick`` from a daemon thread until the block ends."""
    stop = threading.Event()
    step = min(1.0, progress.interval)

    def run() -> None:
        while not stop.wait(step):
            progress.tick()

    thread = threading.Thread(target=run, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _plain_write(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def reporter(interval: float = INTERVAL) -> Iterator[Any]:
    """Progress of an apply: Rich bars per target and phase on a terminal, lines in CI."""
    if not err.is_terminal:
        plain = PlainProgress(_plain_write, interval=interval, as_json=_json["on"])
        with _ticking(plain):
            yield plain
        return
    with _bars() as report:
        yield report


class _Count:
    """A column: done/total with thousands separators (Rich's MofN has none)."""

    def __call__(self, task: Any) -> str:
        total = "?" if task.total is None else f"{int(task.total):,}"
        return f"{int(task.completed):,}/{total}"


@contextlib.contextmanager
def _bars() -> Iterator[Callable[[Any], None]]:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    tasks: dict[tuple[str, str], Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    ) as progress:
        count = _Count()

        def rich_report(e: Any) -> None:
            key = (e.target, e.step)
            if e.kind == "note":
                progress.console.print(
                    f"[yellow]{literal(e.target)}: {literal(e.message)}[/yellow]"
                )
            elif e.kind == "start":
                tasks[key] = progress.add_task(
                    f"{literal(e.target)}: {e.step}",
                    total=e.total,
                    count=f"0/{e.total:,}",
                    rate="",
                )
            elif key in tasks:
                task_id = tasks[key]
                progress.update(task_id, completed=e.done)
                task = next((t for t in progress.tasks if t.id == task_id), None)
                if task is not None:
                    speed = task.speed
                    if task.finished and task.elapsed:  # the whole phase's average
                        speed = task.completed / task.elapsed
                    rate = f"{speed:,.0f}/s" if speed else ""
                    progress.update(task_id, count=count(task), rate=rate)

        yield rich_report
