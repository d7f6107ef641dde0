"""A request to stop an apply between batches, made from outside it."""

from __future__ import annotations

import asyncio

__all__ = ["Stop"]


class Stop:
    """A request to stop an apply between batches, made from outside it (a signal handler).

    The first :meth:`request` stops new batches; the batches in flight are waited for, at most
    ``grace`` seconds from then. A second request (or the end of the grace) abandons them: they
    are cancelled, and whatever they changed on the platform unacknowledged is found and
    finished by the next run, which re-reads the remote. Call it from the event loop's thread
    (``loop.add_signal_handler`` does).
    """

    def __init__(self, grace: float = 10.0) -> None:
        self.grace = grace
        self.reason = ""
        self._asked: asyncio.Event | None = None
        self._abandoned: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def requested(self) -> bool:
        return bool(self.reason)

    @property
    def abandoned(self) -> bool:
        return self._abandoned is not None and self._abandoned.is_set()

    def _event(self) -> asyncio.Event:
        if self._abandoned is None:
            self._abandoned = asyncio.Event()
        return self._abandoned

    def _asked_event(self) -> asyncio.Event:
        if self._asked is None:
            self._asked = asyncio.Event()
        return self._asked

    def request(self, reason: str = "stop") -> None:
        if self.requested:
            self.abandon()
            return
        self.reason = reason
        self._asked_event().set()
        event = self._event()
        self._timer = asyncio.get_running_loop().call_later(self.grace, event.set)

    def abandon(self) -> None:
        self._event().set()
        if self._timer is not None:
            self._timer.cancel()

    async def wait_abandoned(self) -> None:
        await self._event().wait()

    async def wait_requested(self) -> None:
        await self._asked_event().wait()
