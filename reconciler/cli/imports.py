"""``reconcile import``: a config written from a target."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from .._printable import literal
from ._common import (
    EnvOpt,
    FileArg,
    LockWaitOpt,
    SandboxOpt,
    SandboxUrlOpt,
    StateOpt,
    err,
    fail,
    open_reconciler,
    state_path,
)
from ._signals import run_command


def import_(
    file: FileArg = Path("audiences.yaml"),
    target: Annotated[str, typer.Option("--target", "-t", help="The target to import.")] = "",
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the imported config.")
    ] = Path("imported.yaml"),
    data_dir: Annotated[
        str, typer.Option("--data-dir", help="Folder (next to --out) for large member lists.")
    ] = "data",
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    lock_wait: LockWaitOpt = 0.0,
    env: EnvOpt = None,
) -> None:
    """Write a config from a target's remote state that plans to zero changes: every segment
    it holds, with its members (under the target's apply lock)."""
    from ..importer import import_target
    from ..statestore import StateStore

    if not target:
        fail("import needs --target NAME (a target declared in FILE)")
    if out_file.exists():
        fail(f"{out_file} exists; choose another --out or remove it")
    with (
        open_reconciler(file, [target], state, sandbox, sandbox_url, env) as rec,
        contextlib.closing(
            StateStore(state_path(out_file, state, sandbox or bool(sandbox_url)))
        ) as store,
    ):
        result = run_command(
            import_target(rec, target, out_file, store, data_dir=data_dir, lock_wait=lock_wait)
        )
    for seg_id, why in result.skipped.items():
        err.print(
            f"[yellow]{literal(target)}: segment {literal(repr(seg_id))} left out, {literal(why)}; "
            "it stays on the platform, unmanaged[/yellow]"
        )
    err.print(
        f"[green]Imported {result.segments} segment(s) and {result.links:,} link(s) from "
        f"{literal(target)} into {literal(out_file)}[/green]"
        + (f" (+ {len(result.files)} member file(s))" if result.files else "")
    )
