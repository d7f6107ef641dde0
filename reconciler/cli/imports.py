"""``reconcile import`` and ``reconcile explain``: a config written from a target, and why a
customer is where it is."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from .._printable import literal
from ._common import (
    EnvOpt,
    FileArg,
    LockWaitOpt,
    SandboxOpt,
    SandboxUrlOpt,
    StateOpt,
    ValidateFormat,
    err,
    fail,
    open_reconciler,
    out,
    state_path,
    write_json,
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


def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer id to explain.")],
    file: FileArg = Path("audiences.yaml"),
    format: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.text,
    env: EnvOpt = None,
) -> None:
    """Which segments a customer is in, on which targets, and which rule or file put them there."""
    from ..config import explain as explain_customer
    from ..config import load

    config = load(file, env=env)
    reasons = explain_customer(config, customer_id)
    if format is ValidateFormat.json:
        data = [
            {
                "segment": r.segment_id,
                "targets": list(r.targets),
                "via": r.via,
                "detail": r.detail,
                "line": r.location[0],
                "column": r.location[1],
                "excluded": r.excluded,
            }
            for r in reasons
        ]
        write_json({"customer": customer_id, "reasons": data})
        return
    by_segment: dict[str, list[Any]] = {}
    for r in reasons:
        by_segment.setdefault(r.segment_id, []).append(r)
    member_of = [s for s, rs in by_segment.items() if not any(r.excluded for r in rs)]
    out.print(
        f"{literal(customer_id)} is in {len(member_of)} segment(s)" + (":" if by_segment else ".")
    )
    for seg_id, rs in by_segment.items():
        excluded = any(r.excluded for r in rs)
        head = "excluded from" if excluded else "in"
        out.print(f"  {head} [bold]{literal(seg_id)}[/bold] on {literal(', '.join(rs[0].targets))}")
        for r in rs:
            verb = "excluded by" if r.excluded else "by"
            out.print(
                f"    {verb} {literal(r.via)}: {literal(r.detail)} "
                f"({literal(config.path.name)}:{r.location[0]}:{r.location[1]})"
            )
