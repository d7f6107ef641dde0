"""An apply's progress on stderr: Rich bars per target and phase on a terminal, plain lines in
CI."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._printable import literal
from ._common import err


@contextlib.contextmanager
def reporter() -> Iterator[Any]:
    """Progress of an apply: Rich bars per target and phase on a terminal, plain lines in CI."""
    from ..apply import ApplyEvent

    if not err.is_terminal:

        def plain_report(e: ApplyEvent) -> None:
            if e.kind == "note":
                err.print(f"{literal(e.target)}: {literal(e.message)}")
            elif e.kind == "start":
                err.print(f"{literal(e.target)}: {e.step}: {e.total:,} change(s)…")
            elif e.kind == "end":
                err.print(f"{literal(e.target)}: {e.step}: done ({e.done:,})")

        yield plain_report
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    tasks: dict[tuple[str, str], Any] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:

        def rich_report(e: ApplyEvent) -> None:
            key = (e.target, e.step)
            if e.kind == "note":
                progress.console.print(
                    f"[yellow]{literal(e.target)}: {literal(e.message)}[/yellow]"
                )
            elif e.kind == "start":
                tasks[key] = progress.add_task(f"{literal(e.target)}: {e.step}", total=e.total)
            elif key in tasks:
                progress.update(tasks[key], completed=e.done)

        yield rich_report
