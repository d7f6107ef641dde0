"""What every command shares: the consoles, the options, one-line failures, the flags of a run
(for the follow-up commands it prints), and the reconciler a run drives."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from .._printable import literal

app = typer.Typer(
    name="reconcile",
    help="Declarative plan/apply for customer audiences (Epsilon Retail Media, Talon.One).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # help as plain text: no markup to eat a "[default: ...]" or a bracket in a help text, no
    # type shown after a flag (the help is the same on every typer the floors allow)
    rich_markup_mode=None,
)

# every string from elsewhere (a platform, the config, an error) goes into markup through
# literal(); emoji codes (":fire:") are never replaced, highlighting never guesses
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def plain() -> None:
    """No colour nor any other terminal style from here on (bold, dim: NO_COLOR leaves them),
    on both consoles, even when FORCE_COLOR is set; and NO_COLOR for what this one starts."""
    os.environ["NO_COLOR"] = "1"
    for console in (out, err):
        console.no_color = True
        console._color_system = None  # Rich's switch for every style; no public setter


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
        fail(f"--lock-wait takes a finite number of seconds, 0 or more, not {value}")
    return value


TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target", "-t", metavar="NAME", help="Only this target (repeatable).", callback=_unique
    ),
]
LockWaitOpt = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        metavar="SECONDS",
        help="Seconds to wait for another apply's lock (a finite number, 0 or more).",
        callback=_seconds,
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        envvar="RECONCILE_STATE",
        metavar="FILE",
        help="State store file.",
        show_default=".reconcile/state.db next to the config; with the sandbox, "
        ".reconcile/sandbox/state.db",
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        envvar="RECONCILE_ENV",
        help="The environment of the config to use (one its `environments:` declares; "
        "required when it declares any). Each has its own state store and locks: "
        ".reconcile/env/NAME/ next to the config.",
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
        metavar="URL",
        help="Use a sandbox already running at this URL (see `reconcile sandbox serve`).",
    ),
]
RefreshOpt = Annotated[
    str,
    typer.Option(
        "--refresh",
        metavar="auto|full|false",
        help="'auto' reads live what the plan needs (on Epsilon: the customers that changed and "
        "a sample); 'full' reads every customer; 'false' plans from the state store alone.",
    ),
]


AllChangesOpt = Annotated[
    bool, typer.Option("--all-changes", help="List every change in text output (not only 50).")
]
#: the old spelling of --all-changes: --full means the full checks (drift --full, --refresh=full)
FullOpt = Annotated[bool, typer.Option("--full", hidden=True)]


def all_changes(value: bool, full: bool) -> bool:
    """``--all-changes``, or its deprecated spelling ``--full`` (with a one-line notice)."""
    if full:
        err.print(
            "[yellow]--full is deprecated here: use --all-changes (--full means the full "
            "checks of drift --full and --refresh=full)[/yellow]"
        )
    return value or full


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    err.print(f"[red]Error:[/red] {literal(message)}")
    raise typer.Exit(code)


def write_json(body: Any) -> None:
    """The one document a machine format prints on stdout."""
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class Invocation:
    """The flags of this run that a printed follow-up command must carry to run as printed."""

    file: Path
    targets: Sequence[str] = ()
    state: Path | None = None
    sandbox: bool = False
    sandbox_url: str | None = None
    env: str | None = None

    def command(self, verb: str, *extra: str, targets: Sequence[str] | None = None) -> str:
        """``reconcile VERB FILE ...``, shell-quoted, with the targets, state and sandbox."""
        args = ["reconcile", verb, relative(self.file)]
        for name in self.targets if targets is None else targets:
            args += ["--target", name]
        if self.state is not None:
            args += ["--state", str(self.state)]
        if self.env:
            args += ["--env", self.env]
        if self.sandbox_url:
            args += ["--sandbox-url", self.sandbox_url]
        elif self.sandbox:
            args.append("--sandbox")
        return shlex.join([*args, *extra])


def state_path(
    config_path: Path, state: Path | None, sandboxed: bool, env: str | None = None
) -> Path:
    """``--state``, or the store next to the config (a separate one for the sandbox, and for
    each environment)."""
    from ..runtime import default_state_path, sandbox_paths

    if state:
        return state
    if sandboxed:
        return sandbox_paths(config_path, env)[1]
    return default_state_path(config_path, env)


def environment_name(config_path: Path, env: str | None) -> str | None:
    """``--env``, checked against the environments the config declares, for a command that
    reads the config no further (a config that declares some needs one chosen)."""
    from ..config import check_environment

    return check_environment(config_path, env)


@contextlib.contextmanager
def open_reconciler(
    file: Path,
    targets: list[str] | None,
    state: Path | None,
    sandbox: bool,
    sandbox_url: str | None = None,
    env: str | None = None,
) -> Iterator[Any]:
    from ..config import load
    from ..manager import Reconciler
    from ..runtime import Overrides
    from ..statestore import StateStore

    config = load(file, env=env)
    with contextlib.ExitStack() as stack:
        overrides = None
        if sandbox_url:
            from ..sandbox import SandboxEndpoints

            overrides = Overrides.for_sandbox(SandboxEndpoints(sandbox_url))
        elif sandbox:
            from ..runtime import sandbox_paths
            from ..sandbox import Sandbox, rate_limit_from_env

            remote_db = sandbox_paths(config.path, env)[0]
            remote_db.parent.mkdir(parents=True, exist_ok=True)
            rate = rate_limit_from_env()
            sb = stack.enter_context(Sandbox(remote_db, port=0, talonone_rate_limit=rate))
            err.print(f"[dim]Sandbox serving on {sb.url}[/dim]")
            overrides = Overrides.for_sandbox(sb, local=True)
        store = StateStore(state_path(config.path, state, sandbox or bool(sandbox_url), env))
        stack.callback(store.close)
        yield Reconciler(config, store, targets=targets, overrides=overrides)


def refresh_mode(value: str) -> Any:
    from ..plan import Refresh

    v = value.strip().lower()
    if v in ("full", "true", "1", "yes"):
        return Refresh.FULL
    if v == "auto":
        return Refresh.AUTO
    if v in ("false", "none", "0", "no"):
        return Refresh.NONE
    fail(f"--refresh takes 'auto', 'full' or 'false', not {value!r}")


def render_plan(plan: Any, format: Format, full: bool = False, full_plan: str = "") -> None:
    """``full_plan``: the command that prints all of it (Markdown names it when shortened)."""
    from ..render import render_json, render_markdown, render_text

    if format is Format.json:
        sys.stdout.write(render_json(plan))
    elif format is Format.markdown:
        sys.stdout.write(render_markdown(plan, full_plan=full_plan or None))
    else:
        out.print(render_text(plan, max_items=None if full else 50))


def relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)


def with_path(plan_value: Any, file: Path) -> Any:
    import dataclasses

    return dataclasses.replace(plan_value, config_path=relative(file))
