"""``reconcile plan`` and ``reconcile show``: a plan made now, or one saved, rendered."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from .._printable import literal
from ._common import (
    EXIT_CHANGES,
    AllChangesOpt,
    FileArg,
    Format,
    FullOpt,
    Invocation,
    RefreshOpt,
    SandboxOpt,
    SandboxUrlOpt,
    StateOpt,
    TargetOpt,
    all_changes,
    err,
    fail,
    open_reconciler,
    refresh_mode,
    relative,
    render_plan,
    with_path,
)
from ._signals import run_command


def plan(
    file: FileArg = Path("audiences.yaml"),
    target: TargetOpt = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Save the plan as JSON (for apply)."),
    ] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 2 when changes are pending, 0 when none."),
    ] = False,
    refresh: RefreshOpt = "auto",
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    all_changes_: AllChangesOpt = False,
    full: FullOpt = False,
) -> None:
    """Show what apply would change: segments → access → customers → links."""
    every = all_changes(all_changes_, full)
    with open_reconciler(file, target, state, sandbox, sandbox_url) as rec:
        result = run_command(rec.plan(refresh_mode(refresh)))
    result = with_path(result, file)
    if out_file:
        from ..plan import save_plan

        save_plan(result, out_file, file)
        err.print(f"[dim]Plan saved to {literal(out_file)}[/dim]")
    inv = Invocation(file, tuple(target or ()), state, sandbox, sandbox_url)
    render_plan(result, format, every, inv.command("plan", "--format", "json"))
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(EXIT_CHANGES)


def show(
    plan_file: Annotated[Path, typer.Argument(help="A plan saved with plan --out.")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    all_changes_: AllChangesOpt = False,
    full: FullOpt = False,
) -> None:
    """Render a saved plan."""
    every = all_changes(all_changes_, full)
    from ..plan import read_plan_file

    saved = read_plan_file(plan_file)
    if saved is None:
        fail(f"{plan_file} is not a plan (save one with `reconcile plan --out FILE`)")
    full_plan = shlex.join(["reconcile", "show", relative(plan_file), "--format", "json"])
    render_plan(saved, format, every, full_plan)
