"""``reconcile drift`` and ``reconcile refresh``: which side moved, and the state store
rewritten from the platform (the library's :meth:`~reconciler.Reconciler.drift` and
:meth:`~reconciler.Reconciler.refresh`, printed)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from .._printable import literal
from ._common import (
    EXIT_CHANGES,
    EnvOpt,
    FileArg,
    Format,
    Invocation,
    LockWaitOpt,
    SandboxOpt,
    SandboxUrlOpt,
    StateOpt,
    TargetOpt,
    open_reconciler,
    out,
    with_path,
    write_json,
)
from ._signals import run_command


def drift(
    file: FileArg = Path("audiences.yaml"),
    target: TargetOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Also compare the state store's last-applied state with a full live read of "
            "each target (the snapshot plan --refresh=auto trusts); a stale one is drift.",
        ),
    ] = False,
    env: EnvOpt = None,
) -> None:
    """Read-only check for CI: exit 0 in sync, 2 drifted (with which side moved), 1 error."""
    from ..render import render_drift_markdown, render_drift_text

    inv = Invocation(file, tuple(target or ()), state, sandbox, sandbox_url, env)
    with open_reconciler(file, target, state, sandbox, sandbox_url, env) as rec:
        check = run_command(rec.drift(full=full))
    check = dataclasses.replace(check, plan=with_path(check.plan, file))
    if format is Format.json:
        write_json(check.as_dict())
    elif format is Format.markdown:
        sys.stdout.write(
            render_drift_markdown(
                check,
                refresh_command=lambda name: inv.command("refresh", targets=[name]),
                full_plan=inv.command("plan", "--format", "json"),
            )
        )
    else:
        text = render_drift_text(
            check, refresh_command=lambda name: inv.command("refresh", targets=[name])
        )
        if text:
            out.print(text)
    if check.drifted:
        raise typer.Exit(EXIT_CHANGES)


def refresh(
    file: FileArg = Path("audiences.yaml"),
    target: TargetOpt = None,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    lock_wait: LockWaitOpt = 0.0,
    env: EnvOpt = None,
) -> None:
    """Record in the state store what each target holds now, from a full read; nothing is
    written to the platform (Terraform's apply -refresh-only). Phases the platform cannot read
    (Epsilon segments and access) are kept as last applied."""
    with (
        open_reconciler(file, target, state, sandbox, sandbox_url, env) as rec,
        rec.hold_locks(lock_wait, purpose="refresh"),
    ):
        done = run_command(rec.refresh())
    for r in done:
        if r.rewritten:
            out.print(
                f"{literal(r.target)}: membership snapshot rewritten from the state store's "
                "database (the file could not be read)"
            )
        if not r.changes:
            continue
        out.print(f"{literal(r.target)}: state store refreshed from the platform")
        for kind, count in r.changes.items():
            out.print(f"  {kind}: {count:,}")
        if r.kept:
            out.print(
                "  kept as last applied (the platform cannot read them): "
                f"{literal(', '.join(r.kept))}"
            )
