"""SIGINT and SIGTERM around a command's event loop (:func:`reconciler.cli._signals.run_command`):
wherever one lands (the loop starting, the run, the loop shutting down), the command ends with
it, and the loop is closed cleanly."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
from collections.abc import Callable, Iterator

import pytest

from reconciler import runtime
from reconciler.cli._signals import Signalled, on_signal, run_command

LOOPS = ["asyncio", *(["uvloop"] if importlib.util.find_spec("uvloop") else [])]


@pytest.fixture(autouse=True)
def command_handlers() -> Iterator[None]:
    """The handlers ``main`` installs for the whole command (they raise :class:`Signalled`)."""
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _factory(kind: str, first: Callable[[], object]) -> Callable[[], asyncio.AbstractEventLoop]:
    """Loops on which ``first`` is the first callback, before the run's own task starts."""

    def make() -> asyncio.AbstractEventLoop:
        loop = _new_loop(kind)
        loop.call_soon(first)
        return loop

    return make


@pytest.mark.parametrize("kind", LOOPS)
def test_a_signal_while_the_loop_starts_ends_the_command_with_it(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal sent just after a command's first request can land in the loop before the
    run has its handler: the command's raising handler was then swallowed by the callback it
    landed in (the signal lost, the command ran on), or broke the loop ("Cannot close a
    running event loop", once in a suite run)."""
    monkeypatch.setattr(
        runtime, "_loop_factory", lambda: _factory(kind, lambda: signal.raise_signal(15))
    )
    with pytest.raises(Signalled) as info:
        run_command(asyncio.sleep(30))
    assert info.value.signum == signal.SIGTERM
    monkeypatch.undo()
    assert runtime.run(asyncio.sleep(0, result="the next run")) == "the next run"


@pytest.mark.parametrize("kind", LOOPS)
def test_a_signal_as_an_apply_starts_asks_it_to_stop_before_its_first_batch(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.apply import Stop

    monkeypatch.setattr(
        runtime, "_loop_factory", lambda: _factory(kind, lambda: signal.raise_signal(2))
    )
    stop = Stop()

    async def writes() -> bool:
        await asyncio.sleep(0)
        return stop.requested

    assert run_command(writes(), stop) is True
    assert stop.reason == "SIGINT"


def test_a_signal_while_the_loop_shuts_down_ends_the_command_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Loop(asyncio.SelectorEventLoop):
        async def shutdown_asyncgens(self) -> None:
            signal.raise_signal(signal.SIGTERM)
            await super().shutdown_asyncgens()

    monkeypatch.setattr(runtime, "_loop_factory", lambda: Loop)
    with pytest.raises(Signalled) as info:
        run_command(asyncio.sleep(0, result="done"))
    assert info.value.signum == signal.SIGTERM
    # the handlers are the command's again
    assert signal.getsignal(signal.SIGTERM) is on_signal
