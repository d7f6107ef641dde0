"""A run's signals: SIGINT and SIGTERM end a command in one line (exit 128 + the signal), and
ask an apply to stop between batches."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable
from typing import Any, TypeVar

from ._common import err

_T = TypeVar("_T")


def run_command(awaitable: Awaitable[_T], stop: Any = None) -> _T:
    """Run ``awaitable`` with SIGINT and SIGTERM handled on the event loop (a Python signal
    handler that raises would land in any callback, where asyncio swallows what it raises).

    Without ``stop``, a signal cancels the run and :class:`Signalled` is raised from it. With
    a :class:`~reconciler.apply.Stop` (an apply's writes), a signal asks it to stop between
    batches, and a second one to abandon the batches in flight; the run then ends normally.

    The handler is in place from before the loop starts until after it is closed, and it
    never raises: it notes each signal where it lands, then tells the loop while the run is on
    it. A signal that lands while the loop starts is acted on once the run begins; one that
    lands as the run ends (or while the loop shuts down) is acted on once the loop is gone.
    The command's own handler (:func:`on_signal`, which raises) would otherwise land in the
    loop's own machinery, which it can leave broken ("Cannot close a running event loop").
    """
    from ..runtime import run

    arrived: list[signal.Signals] = []  # noted by the handler, in the main thread
    handled = 0  # how many of them the loop acted on
    #: the loop and the task of the run while it is on the loop (empty before and after)
    running: dict[str, Any] = {}

    def on_loop(sig: signal.Signals) -> None:
        nonlocal handled
        handled += 1
        if stop is None:
            if handled == 1:
                running["task"].cancel()
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
        loop = running.get("loop")
        if loop is not None:
            loop.call_soon_threadsafe(on_loop, sig)

    async def guarded() -> _T:
        running["task"] = asyncio.current_task()
        running["loop"] = asyncio.get_running_loop()
        for sig in list(arrived):  # landed while the loop was starting
            on_loop(sig)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if arrived and stop is None:
                raise Signalled(arrived[0]) from None
            raise
        finally:
            running.clear()

    previous: dict[signal.Signals, Any] = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        result = run(guarded())
    finally:
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
    if arrived:  # a signal the run did not see through (it ended first, or absorbed the cancel)
        if stop is None:
            raise Signalled(arrived[0])
        if not stop.requested:
            stop.reason = arrived[0].name
    return result


class Signalled(BaseException):
    """SIGINT or SIGTERM outside an apply's writes (which handle both themselves): raised where
    the signal lands (or from the cancelled run, see :func:`_run`), like KeyboardInterrupt, so
    the same cleanup runs (locks released, stores closed); a BaseException of its own, so
    nothing between here and :func:`main` (Click's KeyboardInterrupt handling included) takes
    it for something else."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def on_signal(signum: int, frame: object) -> None:
    raise Signalled(signum)
