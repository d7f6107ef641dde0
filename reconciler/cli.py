"""The ``reconcile`` command. The only module that prints; maps errors to exit codes.

Exit codes (Terraform's ``-detailed-exitcode``): 0 success / no changes, 1 error, 2 changes
pending (``plan --detailed-exitcode``, ``drift``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from ._printable import printable
from .exceptions import ConfigError, ReconcilerError

_T = TypeVar("_T")

__all__ = ["app", "main"]

app = typer.Typer(
    name="reconcile",
    help="Declarative plan/apply for customer audiences (Epsilon Retail Media, Talon.One).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# every string from elsewhere (a platform, the config, an error) goes into markup through
# _lit(); emoji codes (":fire:") are never replaced, highlighting never guesses
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: seconds an interrupted apply waits for the batches in flight before abandoning them
INTERRUPT_GRACE = 10.0


def _lit(text: object) -> str:
    """``text`` printed as it is: control characters escaped, Rich markup taken literally."""
    return escape(printable(str(text)))


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"


FileArg = Annotated[Path, typer.Argument(help="The audiences file.", show_default=True)]


def _unique(values: list[str] | None) -> list[str]:
    """``--target`` values once each, in the order first given (a list even when none is
    given: typer turns an empty one into the default, but not every release takes None)."""
    return list(dict.fromkeys(values or ()))


def _seconds(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        _fail(f"--lock-wait takes a finite number of seconds, 0 or more, not {value}")
    return value


TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", help="Only this target (repeatable).", callback=_unique),
]
LockWaitOpt = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        help="Seconds to wait for another apply's lock (a finite number, 0 or more).",
        callback=_seconds,
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        envvar="RECONCILE_STATE",
        help="State store file (default: .reconcile/state.db next to the config; with the "
        "sandbox, .reconcile/sandbox/state.db).",
    ),
]
SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="Run against the local sandbox, started in-process; no credentials needed. Its "
        "platforms' state is .reconcile/sandbox/remote.db in the config's folder (where "
        "`reconcile sandbox serve|seed|reset --config FILE` keep it too), its state store "
        ".reconcile/sandbox/state.db.",
    ),
]
SandboxUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--sandbox-url",
        envvar="RECONCILE_SANDBOX_URL",
        help="Use a sandbox already running at this URL (see `reconcile sandbox serve`).",
    ),
]
RefreshOpt = Annotated[
    str,
    typer.Option(
        "--refresh",
        help="'auto' reads live what the plan needs (on Epsilon: the customers that changed and "
        "a sample); 'full' reads every customer; 'false' plans from the state store alone.",
    ),
]


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    err.print(f"[red]Error:[/red] {_lit(message)}")
    raise typer.Exit(code)


def _write_json(body: Any) -> None:
    """The one document a machine format prints on stdout."""
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class _Invocation:
    """The flags of this run that a printed follow-up command must carry to run as printed."""

    file: Path
    targets: Sequence[str] = ()
    state: Path | None = None
    sandbox: bool = False
    sandbox_url: str | None = None

    def command(self, verb: str, *extra: str, targets: Sequence[str] | None = None) -> str:
        """``reconcile VERB FILE ...``, shell-quoted, with the targets, state and sandbox."""
        args = ["reconcile", verb, _relative(self.file)]
        for name in self.targets if targets is None else targets:
            args += ["--target", name]
        if self.state is not None:
            args += ["--state", str(self.state)]
        if self.sandbox_url:
            args += ["--sandbox-url", self.sandbox_url]
        elif self.sandbox:
            args.append("--sandbox")
        return shlex.join([*args, *extra])


def _version(value: bool) -> None:
    if value:
        out.print(f"audience-reconciler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """audience-reconciler: audiences as code."""


# -- validate / schema -----------------------------------------------------------------------
@app.command()
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Audiences files [default: audiences.yaml].")
    ] = None,
    format: Annotated[
        ValidateFormat, typer.Option("--format", "-f", help="Report format.")
    ] = ValidateFormat.text,
) -> None:
    """Check config files: schema, then meaning. Every problem is reported, located."""
    from .config import load, resolve

    report: list[dict[str, Any]] = []
    failed = False
    for file in files or [Path("audiences.yaml")]:
        try:
            config = load(file)
            resolve(config)  # the data files' ids are checked as the members are resolved
        except ConfigError as exc:
            failed = True
            report.append(
                {"file": str(file), "valid": False, "problems": [p.as_dict() for p in exc.problems]}
            )
            if format is ValidateFormat.text:
                for problem in exc.problems:
                    err.print(_lit(problem))
                err.print(f"[red]{_lit(file)}: {len(exc.problems)} problem(s) found.[/red]")
            continue
        report.append({"file": str(file), "valid": True, "problems": [], "digest": config.digest})
        if format is ValidateFormat.text:
            err.print(
                f"[green]{_lit(file)} is valid:[/green] {len(config.segments)} segment(s), "
                f"{len(config.targets)} target(s)."
            )
    if format is ValidateFormat.json:
        problems = [p for r in report for p in r["problems"]]
        _write_json({"valid": not failed, "problems": problems, "files": report})
    if failed:
        raise typer.Exit(EXIT_ERROR)


@app.command()
def schema(
    plan: Annotated[bool, typer.Option("--plan", help="Print the plan JSON Schema.")] = False,
) -> None:
    """Print the JSON Schema of the config language (or, with --plan, of JSON plans)."""
    from .config import schema_text

    if plan:
        text = (Path(__file__).parent / "schemas" / "plan.schema.json").read_text()
    else:
        text = schema_text()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- plan / apply / show ---------------------------------------------------------------------
def _run(awaitable: Awaitable[_T], stop: Any = None) -> _T:
    """Run ``awaitable`` with SIGINT and SIGTERM handled on the event loop (a Python signal
    handler that raises would land in any callback, where asyncio swallows what it raises).

    Without ``stop``, a signal cancels the run and :class:`_Signalled` is raised from it. With
    a :class:`~reconciler.apply.Stop` (an apply's writes), a signal asks it to stop between
    batches, and a second one to abandon the batches in flight; the run then ends normally.

    The handler notes each signal where it lands, before the loop is told: a signal that
    arrives as the run ends (the loop stopped before it read its wake-up) is still acted on,
    once the loop is gone, instead of being lost.
    """
    from .engine import run

    arrived: list[signal.Signals] = []  # noted by the handler, in the main thread
    handled = 0  # how many of them the loop acted on

    async def guarded() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal(sig: signal.Signals) -> None:
            nonlocal handled
            handled += 1
            if stop is None:
                if handled == 1 and task is not None:
                    task.cancel()
                return
            if stop.requested:
                err.print(f"[yellow]{sig.name} again: abandoning the batches in flight[/yellow]")
            else:
                err.print(
                    f"[yellow]{sig.name}: sending no new batch; waiting up to {stop.grace:g}s for "
                    "the ones in flight (signal again to stop at once)[/yellow]"
                )
            stop.request(sig.name)

        def handler(signum: int, frame: object) -> None:
            sig = signal.Signals(signum)
            arrived.append(sig)
            loop.call_soon_threadsafe(on_signal, sig)

        previous: dict[signal.Signals, Any] = {}
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if arrived and stop is None:
                raise _Signalled(arrived[0]) from None
            raise
        finally:
            for sig, previous_handler in previous.items():
                signal.signal(sig, previous_handler)

    result = run(guarded())
    if arrived:  # a signal the run did not see through (it ended first, or absorbed the cancel)
        if stop is None:
            raise _Signalled(arrived[0])
        if not stop.requested:
            stop.reason = arrived[0].name
    return result


def _state_path(config_path: Path, state: Path | None, sandboxed: bool) -> Path:
    """``--state``, or the store next to the config (a separate one for the sandbox)."""
    from .engine import default_state_path, sandbox_paths

    if state:
        return state
    if sandboxed:
        return sandbox_paths(config_path)[1]
    return default_state_path(config_path)


@contextlib.contextmanager
def _reconciler(
    file: Path,
    targets: list[str] | None,
    state: Path | None,
    sandbox: bool,
    sandbox_url: str | None = None,
) -> Iterator[Any]:
    from .config import load
    from .engine import Overrides, Reconciler
    from .statestore import StateStore

    config = load(file)
    with contextlib.ExitStack() as stack:
        overrides = None
        if sandbox_url:
            from .sandbox import SandboxEndpoints

            overrides = Overrides.for_sandbox(SandboxEndpoints(sandbox_url))
        elif sandbox:
            from .engine import sandbox_paths
            from .sandbox import Sandbox

            remote_db = sandbox_paths(config.path)[0]
            remote_db.parent.mkdir(parents=True, exist_ok=True)
            sb = stack.enter_context(Sandbox(remote_db, port=0))
            err.print(f"[dim]Sandbox serving on {sb.url}[/dim]")
            overrides = Overrides.for_sandbox(sb, local=True)
        store = StateStore(_state_path(config.path, state, sandbox or bool(sandbox_url)))
        stack.callback(store.close)
        yield Reconciler(config, store, targets=targets, overrides=overrides)


def _refresh(value: str) -> Any:
    from .plan import Refresh

    v = value.strip().lower()
    if v in ("full", "true", "1", "yes"):
        return Refresh.FULL
    if v == "auto":
        return Refresh.AUTO
    if v in ("false", "none", "0", "no"):
        return Refresh.NONE
    _fail(f"--refresh takes 'auto', 'full' or 'false', not {value!r}")


def _render(plan: Any, format: Format, full: bool = False, full_plan: str = "") -> None:
    """``full_plan``: the command that prints all of it (Markdown names it when shortened)."""
    from .render import render_json, render_markdown, render_text

    if format is Format.json:
        sys.stdout.write(render_json(plan))
    elif format is Format.markdown:
        sys.stdout.write(render_markdown(plan, full_plan=full_plan or None))
    else:
        out.print(render_text(plan, max_items=None if full else 50))


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)


@app.command()
def plan(
    file: FileArg = Path("audiences.yaml"),
    target: TargetOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the plan as JSON (for apply).")
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
    full: Annotated[bool, typer.Option("--full", help="List every change in text output.")] = False,
) -> None:
    """Show what apply would change: segments → access → customers → links."""
    with _reconciler(file, target, state, sandbox, sandbox_url) as rec:
        result = _run(rec.plan(_refresh(refresh)))
    result = _with_path(result, file)
    if out_file:
        result.save(out_file, file)
        err.print(f"[dim]Plan saved to {_lit(out_file)}[/dim]")
    inv = _Invocation(file, tuple(target or ()), state, sandbox, sandbox_url)
    _render(result, format, full, inv.command("plan", "--format", "json"))
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(EXIT_CHANGES)


def _with_path(plan_value: Any, file: Path) -> Any:
    import dataclasses

    return dataclasses.replace(plan_value, config_path=_relative(file))


@app.command()
def apply(
    file: Annotated[
        Path, typer.Argument(help="The audiences file, or a plan saved with plan --out.")
    ] = Path("audiences.yaml"),
    target: TargetOpt = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even past the safety thresholds.")
    ] = False,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    lock_wait: LockWaitOpt = 0.0,
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
) -> None:
    """Make the targets match the config (or apply a saved plan, refusing a stale one).

    On Ctrl-C (SIGINT) or SIGTERM no new batch is sent, the batches in flight are awaited (a
    second signal abandons them), every acknowledged change is recorded, and apply says what
    is left and exits 130 (SIGINT) or 143 (SIGTERM); running apply again finishes the job."""
    from .plan import planned_config, read_plan_file

    config_file = file
    saved = read_plan_file(file)
    if saved is not None:
        config_file = planned_config(saved, file, config)
        target = target or [t.target for t in saved.targets]
    elif config is not None:
        _fail(f"--config goes with a saved plan; {file} is a config, not a plan")
    machine = format is Format.json
    # what running apply again means, as a command (the config, never the saved plan: after a
    # partial apply the plan is stale, and the config plans only what is left)
    inv = _Invocation(config_file, tuple(target or ()), state, sandbox, sandbox_url)
    again = inv.command(
        "apply", *(["--auto-approve"] if auto_approve else []), *(["--force"] if force else [])
    )
    full_plan = inv.command("plan", "--format", "json")
    with (
        _reconciler(config_file, target, state, sandbox, sandbox_url) as rec,
        rec.hold_locks(lock_wait),
    ):
        if saved is None:
            current = _run(rec.plan())
        else:  # the library refuses a stale plan, or one meant for elsewhere
            replan = inv.command("plan", "--out", _relative(file))
            current = _run(rec.replan(saved, file, config=config, replan=replan))
        current = _with_path(current, config_file)
        if not current.has_changes:
            if machine:
                _write_json({"plan": current.to_dict(), "results": [], "interrupted": None})
            else:
                _render(current, format, full_plan=full_plan)
            err.print("[green]Nothing to apply.[/green]")
            return
        for note in rec.check(current, force=force):
            err.print(f"[yellow]{_lit(note)}[/yellow]")
        if saved is None:
            if not machine:
                _render(current, format, full_plan=full_plan)
            elif not auto_approve:  # the plan to confirm, beside the document
                from .render import render_text

                err.print(render_text(current))
            if not auto_approve:
                _confirm()
        from .apply import Stop

        stop = Stop(grace=INTERRUPT_GRACE)
        with _reporter() as report:
            results = _run(rec.apply(current, force=force, reporter=report, stop=stop), stop)
    if machine:
        _write_json(
            {
                "plan": current.to_dict(),
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
        f"[red]Interrupted ({_lit(reason)}):[/red] no new batch was sent; every change the "
        "platforms acknowledged is recorded in the state store."
    )
    for r in results:
        err.print(
            f"  {_lit(r.target)}: {r.applied:,} change(s) applied, {r.unsent:,} not sent, "
            f"{len(r.failures):,} failed"
        )
    err.print(f"To finish: `{_lit(again)}` (it re-reads the platforms and sends only the rest).")
    try:
        code = 128 + signal.Signals[reason].value
    except KeyError:  # pragma: no cover - a stop asked for by something else than a signal
        code = 130
    raise typer.Exit(code)


def _confirm() -> None:
    if not sys.stdin.isatty():
        _fail("refusing to apply without --auto-approve: no terminal to confirm on")
    answer = typer.prompt("Apply these changes? Only 'yes' will be accepted", default="")
    if answer.strip() != "yes":
        _fail("apply cancelled")


@contextlib.contextmanager
def _reporter() -> Iterator[Any]:
    """Progress of an apply: Rich bars per target and phase on a terminal, plain lines in CI."""
    from .apply import ApplyEvent

    if not err.is_terminal:

        def plain_report(e: ApplyEvent) -> None:
            if e.kind == "note":
                err.print(f"{_lit(e.target)}: {_lit(e.message)}")
            elif e.kind == "start":
                err.print(f"{_lit(e.target)}: {e.step}: {e.total:,} change(s)…")
            elif e.kind == "end":
                err.print(f"{_lit(e.target)}: {e.step}: done ({e.done:,})")

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
                progress.console.print(f"[yellow]{_lit(e.target)}: {_lit(e.message)}[/yellow]")
            elif e.kind == "start":
                tasks[key] = progress.add_task(f"{_lit(e.target)}: {e.step}", total=e.total)
            elif key in tasks:
                progress.update(tasks[key], completed=e.done)

        yield rich_report


def _summary(results: list[Any], again: str) -> None:
    for r in results:
        state = "[green]ok[/green]" if r.ok else "[red]incomplete[/red]"
        out.print(
            f"{_lit(r.target)}: {state} — {r.applied:,} change(s) applied in {r.batches:,} "
            f"batch(es), {r.requests:,} request(s), {r.retries:,} retried, {r.seconds:.1f}s"
        )
        for f in r.failures[:50]:
            out.print(f"  [red]✗[/red] {f.phase} {_lit(f.key)}: {_lit(f.error)}")
        if len(r.failures) > 50:
            out.print(f"  … {len(r.failures) - 50:,} more failures")
        if r.remaining:
            out.print(
                f"  [yellow]verify: {r.remaining:,} change(s) still pending — "
                f"run `{_lit(again)}` again[/yellow]"
            )
        elif r.remaining == 0:
            out.print("  verify: the remote matches the config")


@app.command()
def show(
    plan_file: Annotated[Path, typer.Argument(help="A plan saved with plan --out.")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    full: Annotated[bool, typer.Option("--full", help="List every change in text output.")] = False,
) -> None:
    """Render a saved plan."""
    from .plan import read_plan_file

    saved = read_plan_file(plan_file)
    if saved is None:
        _fail(f"{plan_file} is not a plan (save one with `reconcile plan --out FILE`)")
    full_plan = shlex.join(["reconcile", "show", _relative(plan_file), "--format", "json"])
    _render(saved, format, full, full_plan)


# -- drift / refresh / import / explain -----------------------------------------------------
def _segment_fields(rec: Any, name: str) -> tuple[str, ...]:
    from .providers import provider_class

    fields: tuple[str, ...] = provider_class(
        rec.config.targets[name].type
    ).capabilities.segment_fields
    return fields


async def _read_all(rec: Any) -> list[Any]:
    """A full live read of every target (nothing written anywhere)."""
    from .plan import Refresh

    return list(await asyncio.gather(*(rec.read(n, Refresh.FULL) for n in rec.target_names)))


async def _snapshots(rec: Any, last: dict[str, Any]) -> dict[str, Any]:
    from .drift import snapshot_drift

    lives = await _read_all(rec)
    return {
        name: snapshot_drift(
            last[name], live, target=name, segment_fields=_segment_fields(rec, name)
        )
        for name, live in zip(rec.target_names, lives, strict=True)
    }


_SNAPSHOT_KINDS = (
    ("segments", "missing", "managed segment(s) in the state store, gone from the platform"),
    ("segments", "differ", "segment(s) with other values on the platform"),
    ("access", "differ", "segment(s) with another access list on the platform"),
    ("customers", "missing", "customer(s) in the state store, not on the platform"),
    ("customers", "unknown", "customer(s) on the platform, unknown to the state store"),
    ("customers", "differ", "customer(s) in other segments than the state store records"),
)


class _Quote:
    """How a drift report line quotes what it shows: text lines are made literal as a whole
    when printed; Markdown escapes each value and fences each command."""

    def __init__(self, markdown: bool) -> None:
        from .render import md_code, md_text

        self.value = md_text if markdown else str
        self.command = md_code if markdown else (lambda c: f"`{c}`")


def _shown(value: Any, q: _Quote) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{q.value(k)}={q.value(repr(v))}" for k, v in value.items()) or "none"
    return ", ".join(map(q.value, value)) or "none"


def _snapshot_lines(report: Any, inv: _Invocation, q: _Quote) -> list[str]:
    """The snapshot check of one target: a headline, then indented details."""
    name = q.value(report.target)
    if not report.checked:
        by_source: dict[str, list[str]] = {}
        for phase, source in report.not_checked.items():
            by_source.setdefault(source, []).append(phase)
        where = "; ".join(f"{', '.join(ps)} from the {src}" for src, ps in by_source.items())
        return [f"{name}: state store not checked: nothing here is read live ({where})"]
    read = ", ".join(report.checked)
    lines = []
    if report.in_sync:
        lines.append(f"{name}: the state store matches the platform ({read} read in full)")
    else:
        total = sum(report.counts().values())
        lines.append(
            f"{name}: the state store is stale: {total:,} difference(s) from a full read of {read}"
        )
        for area, kind, label in _SNAPSHOT_KINDS:
            found = report.found.get(area, {}).get(kind)
            if found is None or not found.count:
                continue
            shown = [
                f"{q.value(k)} (state store: {_shown(found.details[k][0], q)}; "
                f"platform: {_shown(found.details[k][1], q)})"
                if k in found.details
                else q.value(k)
                for k in found.examples
            ]
            more = f", … {found.count - len(shown):,} more" if found.count > len(shown) else ""
            lines.append(f"  {found.count:,} {label}: {', '.join(shown)}{more}")
    if report.not_checked:
        lines.append(
            f"  not checked: {', '.join(report.not_checked)} (the platform cannot read them; "
            "plans take them from the state store)"
        )
    if not report.in_sync:
        fix = inv.command("refresh", targets=[report.target])
        lines.append(
            f"  fix: {q.command(fix)} records what the platform holds in the state store (it "
            "writes nothing to the platform)"
        )
    return lines


@app.command()
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
) -> None:
    """Read-only check for CI: exit 0 in sync, 2 drifted (with which side moved), 1 error."""
    from .drift import drift_reports

    inv = _Invocation(file, tuple(target or ()), state, sandbox, sandbox_url)
    with _reconciler(file, target, state, sandbox, sandbox_url) as rec:
        current = _with_path(_run(rec.plan()), file)
        last = rec.last_applied()
        reports = drift_reports(current, last)
        snapshots = _run(_snapshots(rec, last)) if full else {}
    stale = {name for name, s in snapshots.items() if not s.in_sync}
    drifted = current.has_changes or bool(stale)
    if format is Format.json:
        targets = []
        for r in reports:
            entry = r.as_dict()
            if full:
                entry["snapshot"] = snapshots[r.target].as_dict()
            targets.append(entry)
        _write_json({"in_sync": not drifted, "targets": targets, "plan": current.to_dict()})
        if drifted:
            raise typer.Exit(EXIT_CHANGES)
        return
    q = _Quote(markdown=format is Format.markdown)
    lines = []
    for r in reports:
        name = q.value(r.target)
        if not r.changes:
            lines.append(f"{name}: no pending change" if r.target in stale else f"{name}: in sync")
            continue
        parts = [
            f"{r.sides.get('config', 0):,} from config edits not yet applied",
            f"{r.sides.get('remote', 0):,} from changes made on the platform",
        ]
        if r.sides.get("both"):
            parts.append(f"{r.sides['both']:,} where both moved")
        lines.append(f"{name}: {r.changes:,} pending change(s): " + ", ".join(parts))
        for side, keys in r.examples.items():
            lines.append(f"  {side}: {', '.join(map(q.value, keys))}")
        if r.blind:
            lines.append(
                f"  note: {', '.join(r.blind)} cannot be read from this platform; "
                "drift there is not visible"
            )
    snapshot_lines = [line for s in snapshots.values() for line in _snapshot_lines(s, inv, q)]
    if format is Format.markdown:
        from .render import render_markdown

        header = "## Drift detected\n\n" if drifted else "## In sync\n\n"
        text = header + "\n".join(f"- {line.strip()}" for line in lines) + "\n\n"
        if snapshot_lines:
            text += "### State store against a full read of the platform\n\n"
            text += "\n".join(
                f"  - {line.strip()}" if line.startswith("  ") else f"- {line}"
                for line in snapshot_lines
            )
            text += "\n\n"
        sys.stdout.write(text)
        sys.stdout.write(
            render_markdown(current, full_plan=inv.command("plan", "--format", "json"))
        )
    else:
        for line in [*lines, *snapshot_lines]:
            out.print(_lit(line))
    if drifted:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def refresh(
    file: FileArg = Path("audiences.yaml"),
    target: TargetOpt = None,
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    sandbox_url: SandboxUrlOpt = None,
    lock_wait: LockWaitOpt = 0.0,
) -> None:
    """Record in the state store what each target holds now, from a full read; nothing is
    written to the platform (Terraform's apply -refresh-only). Phases the platform cannot read
    (Epsilon segments and access) are kept as last applied."""
    with (
        _reconciler(file, target, state, sandbox, sandbox_url) as rec,
        rec.hold_locks(lock_wait, purpose="refresh"),
    ):
        done = _run(_refresh_store(rec))
    for name, changes, kept, rewritten in done:
        if rewritten:
            out.print(
                f"{_lit(name)}: membership snapshot rewritten from the state store's database "
                "(the file could not be read)"
            )
        if not changes:
            continue
        out.print(f"{_lit(name)}: state store refreshed from the platform")
        for kind, count in changes.items():
            out.print(f"  {kind}: {count:,}")
        if kept:
            out.print(
                f"  kept as last applied (the platform cannot read them): {_lit(', '.join(kept))}"
            )


async def _refresh_store(rec: Any) -> list[tuple[str, dict[str, int], tuple[str, ...], bool]]:
    """Read every target, then rewrite the state store of each one that differs (called with
    the targets' locks held, so no apply records anything in between), or else its membership
    snapshot if that cannot be read (the last item: whether it was)."""
    from .drift import refreshed_state, store_changes
    from .plan import Source
    from .plan.changes import Phase

    lives = await _read_all(rec)
    done = []
    for name, live in zip(rec.target_names, lives, strict=True):
        last = rec.store.load(name)
        new = refreshed_state(last, live, segment_fields=_segment_fields(rec, name))
        changes = store_changes(last, new)
        if changes:
            protected = rec.store.protected(name)
            rec.store.replace(name, new)
            # replace() writes every segment unprotected: restore the prevent_destroy flags
            rec.store.set_protection(name, protected & new.segments.keys())
        rewritten = not changes and rec.store.repair_snapshot(name)
        kept = tuple(p.value for p in Phase if live.sources.get(p, Source.LIVE) is not Source.LIVE)
        done.append((name, changes, kept, rewritten))
    return done


@app.command("import")
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
) -> None:
    """Write a config from a target's remote state that plans to zero changes: every segment
    it holds, with its members (under the target's apply lock)."""
    from .importer import import_target
    from .statestore import StateStore

    if not target:
        _fail("import needs --target NAME (a target declared in FILE)")
    if out_file.exists():
        _fail(f"{out_file} exists; choose another --out or remove it")
    with (
        _reconciler(file, [target], state, sandbox, sandbox_url) as rec,
        contextlib.closing(
            StateStore(_state_path(out_file, state, sandbox or bool(sandbox_url)))
        ) as store,
    ):
        result = _run(
            import_target(rec, target, out_file, store, data_dir=data_dir, lock_wait=lock_wait)
        )
    for seg_id, why in result.skipped.items():
        err.print(
            f"[yellow]{_lit(target)}: segment {_lit(repr(seg_id))} left out, {_lit(why)}; "
            "it stays on the platform, unmanaged[/yellow]"
        )
    err.print(
        f"[green]Imported {result.segments} segment(s) and {result.links:,} link(s) from "
        f"{_lit(target)} into {_lit(out_file)}[/green]"
        + (f" (+ {len(result.files)} member file(s))" if result.files else "")
    )


@app.command()
def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer id to explain.")],
    file: FileArg = Path("audiences.yaml"),
    format: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.text,
) -> None:
    """Which segments a customer is in, on which targets, and which rule or file put them there."""
    from .config import explain as explain_customer
    from .config import load

    config = load(file)
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
        _write_json({"customer": customer_id, "reasons": data})
        return
    by_segment: dict[str, list[Any]] = {}
    for r in reasons:
        by_segment.setdefault(r.segment_id, []).append(r)
    member_of = [s for s, rs in by_segment.items() if not any(r.excluded for r in rs)]
    out.print(
        f"{_lit(customer_id)} is in {len(member_of)} segment(s)" + (":" if by_segment else ".")
    )
    for seg_id, rs in by_segment.items():
        excluded = any(r.excluded for r in rs)
        head = "excluded from" if excluded else "in"
        out.print(f"  {head} [bold]{_lit(seg_id)}[/bold] on {_lit(', '.join(rs[0].targets))}")
        for r in rs:
            verb = "excluded by" if r.excluded else "by"
            out.print(
                f"    {verb} {_lit(r.via)}: {_lit(r.detail)} "
                f"({_lit(config.path.name)}:{r.location[0]}:{r.location[1]})"
            )


def _mount_subcommands() -> None:
    from .sandbox.cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox", help="Serve, seed or reset the local sandbox.")


class _Signalled(BaseException):
    """SIGINT or SIGTERM outside an apply's writes (which handle both themselves): raised where
    the signal lands (or from the cancelled run, see :func:`_run`), like KeyboardInterrupt, so
    the same cleanup runs (locks released, stores closed); a BaseException of its own, so
    nothing between here and :func:`main` (Click's KeyboardInterrupt handling included) takes
    it for something else."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    raise _Signalled(signum)


def main() -> None:
    """Entry point: one line per error, never a traceback."""
    _mount_subcommands()
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _on_signal)
    try:
        app()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(_lit(problem))
        err.print(f"[red]{len(exc.problems)} problem(s) found.[/red]")
        sys.exit(EXIT_ERROR)
    except ReconcilerError as exc:
        err.print(f"[red]Error:[/red] {_lit(exc)}")
        sys.exit(EXIT_ERROR)
    except _Signalled as exc:  # before an apply sent anything, or another command
        err.print(f"[red]Interrupted ({signal.Signals(exc.signum).name}).[/red]")
        sys.exit(128 + exc.signum)
    except Exception as exc:  # the last resort: one line, the traceback only on request
        if os.environ.get("RECONCILE_DEBUG"):
            raise
        err.print(
            f"[red]Internal error:[/red] {_lit(type(exc).__name__)}: {_lit(exc)} "
            "(set RECONCILE_DEBUG=1 to see the traceback; please report it)"
        )
        sys.exit(EXIT_ERROR)
