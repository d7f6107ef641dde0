"""The ``reconcile`` command: presentation only (the rules are the library's). The only package
that prints; maps errors to exit codes. One module per command group; the commands are
registered here, in the order ``--help`` lists them.

Exit codes (Terraform's ``-detailed-exitcode``): 0 success / no changes, 1 error, 2 changes
pending (``plan --detailed-exitcode``, ``drift``).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import signal
import sys
import threading
from typing import Annotated, NoReturn

import typer

from .. import __version__
from .._printable import literal
from ..exceptions import ConfigError, ReconcilerError
from ._common import EXIT_ERROR, LogFormat, LogLevel, app, err, out, plain
from ._progress import json_lines
from ._signals import Signalled, on_signal
from .apply import apply
from .drift import drift, refresh
from .explain import explain
from .history import history
from .imports import import_
from .plan import plan, show
from .state import app as state_app
from .validate import schema, validate

__all__ = ["app", "entry", "main"]

app.command()(validate)
app.command()(schema)
app.command()(plan)
app.command()(apply)
app.command()(show)
app.command()(drift)
app.command()(refresh)
app.command("import")(import_)
app.command()(explain)
app.command()(history)
app.add_typer(state_app, name="state")


def _typed_as(command: typer.models.CommandInfo) -> str:
    return command.name or (command.callback.__name__ if command.callback else "")


#: the top-level commands registered above, by the name they are typed as
_COMMANDS = frozenset(_typed_as(command) for command in app.registered_commands)


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
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Log to stderr: -v steps, -vv each request (overrides --log-level).",
        ),
    ] = 0,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="RECONCILE_LOG_FORMAT",
            case_sensitive=False,
            help="Log lines as plain text or as JSON, one object per event on stderr.",
        ),
    ] = LogFormat.text,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level",
            envvar="RECONCILE_LOG_LEVEL",
            case_sensitive=False,
            help="The least severe events logged when no -v is given.",
        ),
    ] = LogLevel.warning,
    no_color: Annotated[
        bool,
        typer.Option(
            "--no-color", help="No colour in any output (as the NO_COLOR environment variable)."
        ),
    ] = False,
) -> None:
    """audience-reconciler: audiences as code."""
    from .. import _logging

    if no_color:
        plain()
    _logging.configure(verbose, log_format.value, _logging.LEVELS[log_level.value])
    json_lines(log_format is LogFormat.json)


def _command_line(args: list[str]) -> typer.Typer:
    """The command line that parses ``args``: the one command or group they name, alone (each
    command's options are built from its function's signature on every run: all of them cost
    ~9 ms of a plan, the one typed ~2 ms); else every command (help, completion, a typo, a
    global option first). The first word that is not an option names the command: no global
    option takes a value that could be a command's name."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name not in _COMMANDS and name not in {group.name for group in app.registered_groups}:
        _mount_sandbox()
        if name != "sandbox":
            return app
    alone = copy.copy(app)
    alone.registered_commands = [c for c in app.registered_commands if _typed_as(c) == name]
    alone.registered_groups = [g for g in app.registered_groups if g.name == name]
    return alone


def _mount_sandbox() -> None:
    """The ``sandbox`` commands, mounted only when the command line may run or list them
    (their module imports the simulations and uvicorn: ~0.15 s no other command needs)."""
    if any(group.name == "sandbox" for group in app.registered_groups):
        return
    from ..sandbox.cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox", help="Serve, seed or reset the local sandbox.")


def _process_wide() -> None:
    """What only a command may do to the whole process (a program using the library gets none
    of it): httpx's package imports its own command line (click, rich, pygments: ~60 ms of
    every plan) whenever those happen to be installed. The reconciler never runs it (that is
    the separate `httpx` command): with this entry the import fails, and httpx defines its
    fallback instead."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main() -> None:
    """Entry point: one line per error, never a traceback."""
    _process_wide()
    command_line = _command_line(sys.argv[1:])
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
    try:
        command_line()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(literal(problem))
        err.print(f"[red]{len(exc.problems)} problem(s) found.[/red]")
        sys.exit(EXIT_ERROR)
    except ReconcilerError as exc:
        err.print(f"[red]Error:[/red] {literal(exc)}")
        sys.exit(EXIT_ERROR)
    except Signalled as exc:  # before an apply sent anything, or another command
        err.print(f"[red]Interrupted ({signal.Signals(exc.signum).name}).[/red]")
        sys.exit(128 + exc.signum)
    except Exception as exc:  # the last resort: one line, the traceback only on request
        if os.environ.get("RECONCILE_DEBUG"):
            raise
        err.print(
            f"[red]Internal error:[/red] {literal(type(exc).__name__)}: {literal(exc)} "
            "(set RECONCILE_DEBUG=1 to see the traceback; please report it)"
        )
        sys.exit(EXIT_ERROR)


def entry() -> NoReturn:
    """The program's end (see :func:`reconciler.__main__.main`): :func:`main`, then the
    process ends without tearing its heap down.

    Once a command has returned, its output flushed and the exit handlers run (the DuckDB
    database's spill folder removed, the logs flushed), nothing is left to do: the
    interpreter's own teardown would still free every object and module one by one (~40 ms
    after a plan of 12,000 changes, which is a tenth of the command). The process ends as the
    handlers leave it, unless something may still need the teardown: a thread other than a
    daemon one still running, or a tracer or profiler watching (they write their report
    then)."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        if not isinstance(exc.code, int | None):
            raise  # sys.exit("message"): Python prints it
        code = exc.code or 0
    if sys.gettrace() is not None or sys.getprofile() is not None or _running_threads():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: Python's own exit reports it
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


def _running_threads() -> bool:
    """Whether a thread that Python's exit would wait for is still running."""
    main_thread = threading.main_thread()
    return any(t is not main_thread and not t.daemon for t in threading.enumerate())
