"""``reconcile history``: each managed segment's size per target, over the applies that
recorded it (a table and a sparkline, or JSON)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .._printable import literal
from ._common import (
    EnvOpt,
    FileArg,
    SandboxOpt,
    StateOpt,
    TargetOpt,
    ValidateFormat,
    environment_name,
    fail,
    out,
    state_path,
    write_json,
)

__all__ = ["history", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int]) -> str:
    """One character per value, its height scaled between the smallest and the largest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _BARS[len(_BARS) // 2 if high else 0] * len(values)
    scale = (len(_BARS) - 1) / (high - low)
    return "".join(_BARS[round((v - low) * scale)] for v in values)


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _change(first: int, last: int) -> str:
    delta = last - first
    share = f" ({delta / first:+.0%})" if first else ""
    return f"{delta:+,}{share}"


def history(
    file: FileArg = Path("audiences.yaml"),
    segment: Annotated[
        str | None, typer.Argument(help="Only this segment id: one row per apply.")
    ] = None,
    target: TargetOpt = None,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    last: Annotated[
        int, typer.Option("--last", "-n", min=1, help="The most recent applies to show.")
    ] = 20,
    format: Annotated[
        ValidateFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ValidateFormat.text,
    env: EnvOpt = None,
) -> None:
    """Segment sizes over time, as each apply left them (read from the state store)."""
    from ..statestore import StateStore

    if not file.is_file():
        fail(
            f"{file}: no such config file (usage: reconcile history [FILE] [SEGMENT]; the "
            "state store is found next to the config)"
        )
    path = state_path(file.resolve(), state, sandbox, environment_name(file, env))
    if not path.is_file():
        fail(f"{path}: no state store yet (nothing was applied with this config)")
    store = StateStore(path)
    try:
        records = [
            r for r in store.sizes(segment=segment, last=last) if not target or r.target in target
        ]
    finally:
        store.close()
    if format is ValidateFormat.json:
        write_json({"sizes": [_record(r) for r in records]})
        return
    if not records:
        what = f"segment {segment!r}" if segment else "any segment"
        out.print(f"No sizes recorded for {literal(what)} yet: each apply records them.")
        return
    if segment is None:
        out.print(_overview(records))
    else:
        out.print(_runs(records))


def _record(r: Any) -> dict[str, Any]:
    return {
        "target": r.target,
        "segment": r.segment,
        "run": r.run_id,
        "at": dt.datetime.fromtimestamp(r.at, dt.UTC).isoformat(timespec="seconds"),
        "members": r.members,
        "outcome": r.status,
    }


def _overview(records: Sequence[Any]) -> Table:
    """One row per target and segment: the sizes as a sparkline, the last one, the change."""
    table = Table(title="Segment sizes, oldest apply first", title_justify="left")
    for col in ("target", "segment", "applies", "sizes", "members now", "change"):
        table.add_column(col, justify="right" if col in ("applies", "members now") else "left")
    series: dict[tuple[str, str], list[int]] = {}
    for r in records:
        series.setdefault((r.target, r.segment), []).append(r.members)
    for (tgt, seg), sizes in series.items():
        table.add_row(
            literal(tgt),
            literal(seg),
            f"{len(sizes):,}",
            sparkline(sizes),
            f"{sizes[-1]:,}",
            _change(sizes[0], sizes[-1]),
        )
    return table


def _runs(records: Sequence[Any]) -> Table:
    """One row per apply of one segment (per target): when, its outcome, the members."""
    table = Table(title=f"Segment {literal(records[0].segment)}", title_justify="left")
    for col in ("target", "run", "applied at (UTC)", "outcome", "members", "change"):
        table.add_column(col, justify="right" if col in ("run", "members") else "left")
    previous: dict[str, int] = {}
    for r in records:
        before = previous.get(r.target)
        table.add_row(
            literal(r.target),
            str(r.run_id),
            _when(r.at),
            literal(r.status),
            f"{r.members:,}",
            "" if before is None else _change(before, r.members),
        )
        previous[r.target] = r.members
    return table
