"""``reconcile apply``: a plan made now (confirmed) or a saved one (refused when stale), applied
with progress, a summary, and what is left when interrupted."""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .._printable import literal
from ._common import (
    EXIT_ERROR,
    EnvOpt,
    Format,
    Invocation,
    LockWaitOpt,
    SandboxOpt,
    SandboxUrlOpt,
    StateOpt,
    TargetOpt,
    err,
    fail,
    open_reconciler,
    out,
    refresh_mode,
    relative,
    render_plan,
    with_path,
    write_json,
)
from ._progress import reporter
from ._signals import run_command
from .plan import refuse

#: seconds an interrupted apply waits for the batches in flight before abandoning them
INTERRUPT_GRACE = 10.0

ApplyRefreshOpt = Annotated[
    str | None,
    typer.Option(
        "--refresh",
        help="What the plan inside apply reads live, as `plan --refresh` does: 'auto' (the "
        "default for a config) the customers that change and a sample; 'full' every customer. "
        "A saved plan is read again as it was made. Never 'false': every customer apply "
        "writes is read live first.",
    ),
]
VerifyOpt = Annotated[
    str,
    typer.Option(
        "--verify",
        help="What is read back after the apply: 'auto' the customers it wrote, by id, and a "
        "sample (where the platform reads by id); 'full' everything; 'false' nothing.",
    ),
]


def apply(
    file: Annotated[
        Path, typer.Argument(help="The audiences file, or a plan saved with plan --out.")
    ] = Path("audiences.yaml"),
    target: TargetOpt = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Apply even past the safety thresholds and the segments' guards (never past "
            "prevent_destroy).",
        ),
    ] = False,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    lock_wait: LockWaitOpt = 0.0,
    refresh: ApplyRefreshOpt = None,
    verify: VerifyOpt = "auto",
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="json: one document on stdout, the plan and each target's result; progress "
            "and notes go to stderr.",
        ),
    ] = Format.text,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="With a saved plan: the config to apply it with (default: the one it records); "
            "it must be the config the plan was made from.",
        ),
    ] = None,
    env: EnvOpt = None,
) -> None:
    """Make the targets match the config (or apply a saved plan, refusing a stale one).

    On Ctrl-C (SIGINT) or SIGTERM no new batch is sent, the batches in flight are awaited (a
    second signal abandons them), every acknowledged change is recorded, and apply says what
    is left and exits 130 (SIGINT) or 143 (SIGTERM); running apply again finishes the job."""
    from ..plan import plan_dict, planned_config, read_plan_file

    config_file = file
    saved = read_plan_file(file)
    if saved is not None:
        config_file = planned_config(saved, file, config)
        target = target or [t.target for t in saved.targets]
    elif config is not None:
        fail(f"--config goes with a saved plan; {file} is a config, not a plan")
    machine = format is Format.json
    reading, verifying = _reads(refresh, verify, saved is None)
    # what running apply again means, as a command (the config, never the saved plan: after a
    # partial apply the plan is stale, and the config plans only what is left)
    inv = Invocation(config_file, tuple(target or ()), state, sandbox, sandbox_url, env)
    again = inv.command(
        "apply",
        *(["--auto-approve"] if auto_approve else []),
        *(["--force"] if force else []),
        *([f"--refresh={refresh}"] if refresh else []),
        *([f"--verify={verify}"] if verify != "auto" else []),
    )
    full_plan = inv.command("plan", "--format", "json")
    with (
        open_reconciler(config_file, target, state, sandbox, sandbox_url, env) as rec,
        rec.hold_locks(lock_wait),
    ):
        if saved is None:
            current = run_command(rec.plan(reading))
        else:  # the library refuses a stale plan, or one meant for elsewhere
            replan = inv.command("plan", "--out", relative(file))
            current = run_command(
                rec.replan(saved, file, config=config, replan=replan, refresh=reading)
            )
        current = with_path(current, config_file)
        if not current.has_changes:
            if machine:
                write_json({"plan": plan_dict(current), "results": [], "interrupted": None})
            else:
                render_plan(current, format, full_plan=full_plan)
            err.print("[green]Nothing to apply.[/green]")
            return
        if force:
            current = rec.forced(current)
        if not current.verdict.safe:
            refuse(current.verdict.blocking, "apply refuses this plan")
        for note in rec.check(current, force=force):
            err.print(f"[yellow]{literal(note)}[/yellow]")
        if saved is None:
            if not machine:
                render_plan(current, format, full_plan=full_plan)
            elif not auto_approve:  # the plan to confirm, beside the document
                from ..render import render_text

                err.print(render_text(current))
            if not auto_approve:
                _confirm()
        from ..apply import Stop

        stop = Stop(grace=INTERRUPT_GRACE)
        with reporter() as report, _frozen():
            applying = rec.apply(current, force=force, reporter=report, stop=stop, verify=verifying)
            results = run_command(applying, stop)
    _finish(current, results, stop, again, machine=machine)


def _reads(refresh: str | None, verify: str, fresh: bool) -> tuple[Any, Any]:
    """What the plan inside apply reads (``None``: a saved plan's own refresh) and what the
    verification reads (``False``: nothing), from the two options."""
    from ..plan import Refresh

    reading = refresh_mode(refresh) if refresh is not None else None
    if reading is Refresh.NONE:
        fail(
            "apply takes --refresh 'auto' or 'full', not 'false': every customer it writes is "
            "read live first (Epsilon sets a customer's whole segment list)"
        )
    if reading is None and fresh:
        reading = Refresh.AUTO
    v = verify.strip().lower()
    if v in ("false", "none", "0", "no"):
        return reading, False
    if v not in ("auto", "full"):
        fail(f"--verify takes 'auto', 'full' or 'false', not {verify!r}")
    return reading, Refresh(v)


def _finish(current: Any, results: list[Any], stop: Any, again: str, *, machine: bool) -> None:
    """The results (a document, or a summary), what is left when interrupted, the exit code."""
    from ..plan import plan_dict

    if machine:
        write_json(
            {
                "plan": plan_dict(current),
                "results": [_result_dict(r) for r in results],
                "interrupted": stop.reason or None,
            }
        )
    else:
        _summary(results, again)
    if stop.requested:
        _interrupted(results, stop.reason, again)
    if any(not r.ok for r in results):
        raise typer.Exit(EXIT_ERROR)


@contextlib.contextmanager
def _frozen() -> Iterator[None]:
    """The objects alive now kept out of the cyclic GC's scans while inside: the plan and the
    states it came from (millions of objects at scale) are alive for the whole apply, and would
    be re-scanned on every collection that the apply's own short-lived objects trigger. Process
    wide, so the command does it, not the library."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _result_dict(r: Any) -> dict[str, Any]:
    return {
        "target": r.target,
        "ok": r.ok,
        "applied": r.applied,
        "failed": [{"phase": f.phase, "key": f.key, "error": f.error} for f in r.failures],
        "unsent": r.unsent,
        "interrupted": r.interrupted,
        "remaining": r.remaining,
        "batches": r.batches,
        "requests": r.requests,
        "retries": r.retries,
        "seconds": round(r.seconds, 3),
    }


def _interrupted(results: list[Any], reason: str, again: str) -> NoReturn:
    """What an interrupted apply did and what is left, on stderr; exits 128 + the signal."""
    err.print(
        f"[red]Interrupted ({literal(reason)}):[/red] no new batch was sent; every change the "
        "platforms acknowledged is recorded in the state store."
    )
    for r in results:
        err.print(
            f"  {literal(r.target)}: {r.applied:,} change(s) applied, {r.unsent:,} not sent, "
            f"{len(r.failures):,} failed"
        )
    err.print(f"To finish: `{literal(again)}` (it re-reads the platforms and sends only the rest).")
    try:
        code = 128 + signal.Signals[reason].value
    except KeyError:  # pragma: no cover - a stop asked for by something else than a signal
        code = 130
    raise typer.Exit(code)


def _confirm() -> None:
    if not sys.stdin.isatty():
        fail("refusing to apply without --auto-approve: no terminal to confirm on")
    answer = typer.prompt("Apply these changes? Only 'yes' will be accepted", default="")
    if answer.strip() != "yes":
        fail("apply cancelled")


def _summary(results: list[Any], again: str) -> None:
    for r in results:
        state = "[green]ok[/green]" if r.ok else "[red]incomplete[/red]"
        out.print(
            f"{literal(r.target)}: {state} — {r.applied:,} change(s) applied in {r.batches:,} "
            f"batch(es), {r.requests:,} request(s), {r.retries:,} retried, {r.seconds:.1f}s"
        )
        for f in r.failures[:50]:
            out.print(f"  [red]✗[/red] {f.phase} {literal(f.key)}: {literal(f.error)}")
        if len(r.failures) > 50:
            out.print(f"  … {len(r.failures) - 50:,} more failures")
        if r.remaining:
            out.print(
                f"  [yellow]verify: {r.remaining:,} change(s) still pending — "
                f"run `{literal(again)}` again[/yellow]"
            )
        elif r.remaining == 0:
            out.print("  verify: the remote matches the config")
