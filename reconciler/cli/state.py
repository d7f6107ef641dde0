"""``reconcile state``: what the state store holds, shown and repaired (list, show, rm, journal,
prune). The store's own methods read and write it (:mod:`reconciler.statestore`); this module
finds it and formats what they return."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._printable import literal
from ._common import (
    EnvOpt,
    StateOpt,
    TargetOpt,
    environment_name,
    err,
    fail,
    out,
    relative,
    state_path,
    write_json,
)

if TYPE_CHECKING:
    from ..statestore import RunRecord, SegmentRecord, StateStore, TargetSummary

__all__ = ["app"]

app = typer.Typer(
    name="state",
    help="Inspect and repair the state store (what was last applied, and the run journal).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Output(StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[Output, typer.Option("--format", "-f", help="text, or one JSON document.")]


def _when(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="The state store of runs against the local sandbox (.reconcile/sandbox/state.db "
        "next to the config; per environment, .reconcile/sandbox/env/NAME/state.db).",
    ),
]
ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="The audiences file (its state store is found next to it)."
    ),
]


def _locate(file: Path, state: Path | None, sandbox: bool, env: str | None) -> Path:
    """Where the state store of ``file`` (in environment ``env``) is: the config is read for
    its environments alone, and not at all for ``--state`` without ``--env``."""
    if env is None and (state is not None or not file.exists()):
        return state_path(file, state, sandbox)
    return state_path(file, state, sandbox, environment_name(file, env))


@contextlib.contextmanager
def _store(path: Path) -> Iterator[StateStore]:
    """The state store at ``path``, which must exist (a command that reads never creates)."""
    from ..statestore import StateStore

    if not path.exists():
        fail(f"no state store at {relative(path)}: nothing was applied with it yet")
    store = StateStore(path)
    try:
        yield store
    finally:
        store.close()


def _absent(path: Path) -> bool:
    if path.exists():
        return False
    err.print(f"[dim]No state store at {literal(relative(path))} yet.[/dim]")
    return True


def _run_dict(run: RunRecord, store: StateStore | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "target": run.target,
        "status": run.status,
        "unfinished": run.unfinished,
        "started": _when(run.started),
        "finished": _when(run.finished),
        "plan_digest": run.plan_digest,
        "batches": run.batches,
        "items_ok": run.items_ok,
        "items_failed": run.items_failed,
        "summary": run.summary,
    }
    if store is not None:
        body["steps"] = [dataclasses.asdict(s) for s in store.run_steps(run.id)]
        for step in body["steps"]:
            step["first"], step["last"] = _when(step["first"]), _when(step["last"])
    return body


def _run_line(run: RunRecord) -> str:
    ended = _when(run.finished) or "never ended"
    note = " [yellow](did not end by itself)[/yellow]" if run.unfinished else ""
    summary = run.summary or {}
    applied = summary.get("applied", run.items_ok)
    return (
        f"run {run.id} on {literal(run.target)}: [bold]{literal(run.status)}[/bold]{note} — "
        f"started {_when(run.started)}, ended {ended}; {run.batches:,} batch(es), "
        f"{applied:,} applied, {run.items_failed:,} failed"
    )


#: how many segment ids ``state list`` names per target (``--format json`` gives them all)
_SHOWN = 10


@app.command("list")
def list_(
    file: ConfigOpt = Path("audiences.yaml"),
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    env: EnvOpt = None,
    format: FormatOpt = Output.text,
) -> None:
    """Every target in the state store: managed segments, customers, links, last apply."""
    path = _locate(file, state, sandbox, env)
    summaries: list[TargetSummary] = []
    version, where = None, None
    if not _absent(path):
        with _store(path) as store:
            summaries = [store.summary(t) for t in store.targets()]
            version, where = store.schema_version, relative(path)
    if format is Output.json:
        write_json({"state": where, "schema_version": version, "targets": _summaries(summaries)})
        return
    if where is not None:
        out.print(f"State store {literal(where)} (schema version {version})")
    if where is not None and not summaries:
        out.print("No target recorded yet.")
    for s in summaries:
        last = _run_line(s.last_run) if s.last_run else "no apply recorded"
        names = ", ".join(s.segments[:_SHOWN]) + (
            f", … {len(s.segments) - _SHOWN:,} more" if len(s.segments) > _SHOWN else ""
        )
        out.print(
            f"[bold]{literal(s.target)}[/bold]: {len(s.segments):,} segment(s), "
            f"{s.customers:,} customer(s), {s.links:,} link(s)\n"
            f"  managed segments: {literal(names or 'none')}\n  last apply: {last}"
        )


def _summaries(summaries: list[TargetSummary]) -> list[dict[str, Any]]:
    return [
        {
            "target": s.target,
            "segments": list(s.segments),
            "customers": s.customers,
            "links": s.links,
            "last_run": _run_dict(s.last_run) if s.last_run else None,
        }
        for s in summaries
    ]


def _segment_dict(rec: SegmentRecord) -> dict[str, Any]:
    body = dataclasses.asdict(rec)
    body["access"] = list(rec.access) if rec.access is not None else None
    body["updated"] = _when(rec.updated)
    return body


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="The target, as named in the config.")],
    segment: Annotated[str | None, typer.Argument(help="One segment (default: all).")] = None,
    file: ConfigOpt = Path("audiences.yaml"),
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    env: EnvOpt = None,
    format: FormatOpt = Output.text,
) -> None:
    """A target's recorded segments, or one segment's fields, members count and access."""
    with _store(_locate(file, state, sandbox, env)) as store:
        if target not in store.targets():
            fail(f"the state store {relative(store.path)} records no target {target!r}")
        ids = [segment] if segment else list(store.summary(target).segments)
        records = [store.segment_record(target, i) for i in ids]
    if segment and records[0] is None:
        fail(f"target {target!r}: the state store records no segment {segment!r}")
    found = [r for r in records if r is not None]
    if format is Output.json:
        bodies = [_segment_dict(r) for r in found]
        write_json(bodies[0] if segment else {"target": target, "segments": bodies})
        return
    if not found:
        out.print(f"{literal(target)}: no segment recorded.")
    for r in found:
        access = ", ".join(r.access) if r.access else "none recorded"
        out.print(
            f"[bold]{literal(r.target)} / {literal(r.id)}[/bold]\n"
            f"  name: {literal(r.name)}\n  description: {literal(r.description)}\n"
            f"  members: {r.members:,}\n  access: {literal(access)}\n"
            f"  prevent_destroy: {str(r.prevent_destroy).lower()}\n"
            f"  last recorded: {_when(r.updated) or 'unknown (before this was noted)'}"
        )


@app.command()
def rm(
    target: Annotated[str, typer.Argument(help="The target, as named in the config.")],
    segment: Annotated[str, typer.Argument(help="The segment to forget.")],
    file: ConfigOpt = Path("audiences.yaml"),
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    env: EnvOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a segment in the state store, never touching the platform.

    Its fields, access list and links are dropped: the next plan treats it as never applied
    (and creates it again while the config declares it)."""
    with _store(_locate(file, state, sandbox, env)) as store:
        record = store.segment_record(target, segment)
        if record is None:
            fail(f"target {target!r}: the state store records no segment {segment!r}")
        if not yes:
            _confirm(f"Forget {segment} of {target} ({record.members:,} member(s)) in the state")
        with store.lock(target, purpose="state rm"):
            store.forget(target, segment)
    out.print(
        f"Forgot {literal(target)} / {literal(segment)} in the state store; the platform was "
        "not touched."
    )


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        fail("refusing to change the state store without --yes: no terminal to confirm on")
    answer = typer.prompt(f"{question}? Only 'yes' will be accepted", default="")
    if answer.strip() != "yes":
        fail("cancelled")


@app.command()
def journal(
    file: ConfigOpt = Path("audiences.yaml"),
    target: TargetOpt = None,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    env: EnvOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    format: FormatOpt = Output.text,
) -> None:
    """Recent apply runs, those that did not end by themselves first, with their batches."""
    path = _locate(file, state, sandbox, env)
    runs: list[RunRecord] = []
    bodies: list[dict[str, Any]] = []
    if not _absent(path):
        with _store(path) as store:
            runs = store.recent_runs(target or None, limit)
            bodies = [_run_dict(r, store) for r in runs]
    if format is Output.json:
        write_json({"runs": bodies})
        return
    if path.exists() and not runs:
        out.print("No apply run recorded.")
    for run, body in zip(runs, bodies, strict=True):
        out.print(_run_line(run))
        for step in body["steps"]:
            out.print(
                f"  {literal(step['step'])}: {step['batches']:,} batch(es) of "
                f"{step['size']:,} item(s), {step['ok']:,} ok, {step['failed']:,} failed"
            )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


_AGE = re.compile(r"\s*(\d+)\s*([smhdw])\s*")


def _checked_age(text: str) -> str:
    if _AGE.fullmatch(text) is None:
        raise typer.BadParameter(f"{text!r} is not an age such as 90d, 12h or 2w")
    return text


def _age(text: str) -> float:
    """``30d`` → seconds (units s, m, h, d, w)."""
    match = _AGE.fullmatch(text)
    assert match is not None  # checked by _checked_age
    return int(match.group(1)) * _UNITS[match.group(2)]


@app.command()
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Forget runs that ended longer ago than this (90d; units s m h d w).",
            callback=_checked_age,
        ),
    ],
    file: ConfigOpt = Path("audiences.yaml"),
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    env: EnvOpt = None,
) -> None:
    """Forget the journal's runs older than an age, and their batches.

    A target's latest run, and one that never ended, always stay; the record of what was
    applied is not touched."""
    seconds = _age(older_than)
    with _store(_locate(file, state, sandbox, env)) as store:
        runs, batches = store.prune_journal(time.time() - seconds)
    out.print(f"Pruned {runs:,} run(s) and {batches:,} batch record(s) older than {older_than}.")
