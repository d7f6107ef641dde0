"""How a command sets a :class:`~reconciler.manager.Reconciler` up and runs it: where its files
are (the state store, the local sandbox), what replaces a target type's settings (a sandbox),
and the event loop it runs in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .plan import LOCAL_SANDBOX
from .providers import provider_class, provider_types

__all__ = ["Overrides", "default_state_path", "run", "sandbox_paths"]

_T = TypeVar("_T")


def run(awaitable: Awaitable[_T]) -> _T:
    """``asyncio.run(awaitable)`` (on uvloop where it is installed), with the result kept
    out of the main task.

    On its way out, Python 3.11's ``asyncio.run`` restores the SIGINT handler, and ``signal``
    formats the repr of the handler it replaces: the main task, result included. For a plan
    of 12,000 changes that repr alone took 80 ms (twice 40 ms).
    """
    box: list[_T] = []

    async def main() -> None:
        box.append(await awaitable)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return box[0]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux and macOS), else asyncio's own: an
    apply is bound by the client's CPU per request (measured at a 20 ms round trip: a tenth
    less CPU per write, a tenth more writes a second)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or another Python
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def default_state_path(config_path: Path, env: str | None = None) -> Path:
    """``.reconcile/state.db`` in the config's folder; an environment's is
    ``.reconcile/env/NAME/state.db`` (a folder each: its own locks and snapshots too)."""
    folder = config_path.resolve().parent / ".reconcile"
    return (folder / "env" / env if env else folder) / "state.db"


def sandbox_paths(config_path: Path, env: str | None = None) -> tuple[Path, Path]:
    """The one rule for where the local sandbox lives: ``.reconcile/sandbox/`` in the config's
    folder, whatever the current folder (``.reconcile/sandbox/env/NAME/`` for an environment:
    each its own platforms). Returns (the platforms' database, ``remote.db``; the state store
    of runs against the sandbox, ``state.db``). ``--sandbox`` and ``reconcile sandbox
    serve|seed|reset`` (by their ``--config``) all use it."""
    folder = config_path.resolve().parent / ".reconcile" / "sandbox"
    if env:
        folder = folder / "env" / env
    return folder / "remote.db", folder / "state.db"


@dataclass(frozen=True, slots=True)
class Overrides:
    """Settings and credentials that replace a target type's own (the sandbox uses this)."""

    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: which sandbox, as a plan records it (see :class:`~reconciler.plan.Endpoint`)
    sandbox: str = ""

    @classmethod
    def for_sandbox(cls, sandbox: Any, *, local: bool = False) -> Overrides:
        """Point every registered target type at a running sandbox; ``local``: one this
        command started (``--sandbox``), on a port of its own each run."""
        settings: dict[str, Mapping[str, Any]] = {}
        credentials: dict[str, Mapping[str, str]] = {}
        for type_name in provider_types():
            found = provider_class(type_name).sandbox_overrides(sandbox)
            if found is not None:
                settings[type_name], credentials[type_name] = found
        return cls(settings, credentials, LOCAL_SANDBOX if local else str(sandbox.url))
