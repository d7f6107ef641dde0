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

    The handler notes each signal where it lands, before the loop is told: a signal that
    arrives as the run ends (the loop stopped before it read its wake-up) is still acted on,
    once the loop is gone, instead of being lost.
    """
    from ..runtime import run

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
                raise Signalled(arrived[0]) from None
            raise
        finally:
            for sig, previous_handler in previous.items():
                signal.signal(sig, previous_handler)

    result = run(guarded())
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
