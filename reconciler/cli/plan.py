"""``reconcile plan`` and ``reconcile show``: a plan made now, or one saved, rendered."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from .._printable import literal
from ._common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    AllChangesOpt,
    EnvOpt,
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

if TYPE_CHECKING:
    from ..plan import Refusal


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
        typer.Option(
            "--detailed-exitcode",
            help="Exit 2 when changes are pending, 0 when none (1, as without it, when apply "
            "would refuse the plan).",
        ),
    ] = False,
    refresh: RefreshOpt = "auto",
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    all_changes_: AllChangesOpt = False,
    full: FullOpt = False,
    env: EnvOpt = None,
) -> None:
    """Show what apply would change: segments → access → customers → links.

    Exits 1 when apply would refuse the plan as it stands (prevent_destroy, a safety threshold,
    a segment's guard), after saying why and how to accept each refusal."""
    every = all_changes(all_changes_, full)
    with open_reconciler(file, target, state, sandbox, sandbox_url, env) as rec:
        result = run_command(rec.plan(refresh_mode(refresh)))
    result = with_path(result, file)
    if out_file:
        from ..plan import save_plan

        save_plan(result, out_file, file)
        err.print(f"[dim]Plan saved to {literal(out_file)}[/dim]")
    inv = Invocation(file, tuple(target or ()), state, sandbox, sandbox_url, env)
    render_plan(result, format, every, inv.command("plan", "--format", "json"))
    if not result.verdict.safe:
        refuse(result.verdict.blocking)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(EXIT_CHANGES)


def refuse(refusals: Sequence[Refusal], headline: str = "apply would refuse this plan") -> NoReturn:
    """Exit 1 with what apply refuses and how to accept each, on stderr."""
    err.print(f"[red]Error:[/red] {headline} ({len(refusals)} refusal(s)):")
    for r in refusals:
        err.print(f"  {literal(r.message)}")
        err.print(f"    to accept: {literal(r.accept)}")
    raise typer.Exit(EXIT_ERROR)


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
