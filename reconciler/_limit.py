"""How many requests one client keeps in flight: a limit that adapts to the platform.

The limit starts at a target's ``concurrency`` and may grow to its ``max_concurrency``, like
TCP's congestion window (as TCP Vegas reads it): while the platform answers as fast as it did
at its best, each window of answers (as many as the limit) widens it, by half (slow start)
until the first sign of load, then by one; a window whose fastest answer took :data:`SLOWER`
times the best round trip (a queue has built: every answer waits, not a few) narrows it by
one, and an overloaded platform (429, 5xx, a timeout, a dropped connection) halves it (never
below 1). A ``Retry-After`` is honoured by the retry that follows (see :mod:`._http`). With
``max_concurrency`` equal to ``concurrency`` the limit is fixed, as a semaphore.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import deque
from collections.abc import Callable

__all__ = ["SLOWER", "AdaptiveLimit", "NotSent", "may_send"]

#: set by a caller whose next request may be dropped while it waits for a slot: asked once the
#: slot is held, before the request is sent (and then cleared, so the retries and the further
#: requests of the same task go on). The executor sets it before each batch, so that a stop,
#: or a state store that cannot record, asked for while the batch waited sends nothing new.
may_send: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "may_send", default=None
)


class NotSent(Exception):
    """The request was not sent: :data:`may_send` said no once a slot was free."""


#: a window whose fastest round trip exceeds the best one by this factor means the platform
#: (or the network, or this process) is saturated: the limit stops growing and narrows by one
SLOWER = 1.5
#: round trips shorter than this are as good as the best (loopback jitter is not load)
_SLACK = 0.002


class AdaptiveLimit:
    """An asyncio semaphore whose size follows the platform (see the module's docstring)."""

    def __init__(self, start: int, ceiling: int | None = None) -> None:
        self.start = max(1, start)
        self.ceiling = max(self.start, ceiling or self.start)
        #: the current limit (requests in flight at most)
        self.limit = self.start
        #: the most requests that were in flight at once
        self.peak = 0
        self._held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._best = math.inf
        self._window: list[float] = []
        self._slow_start = True

    @property
    def adaptive(self) -> bool:
        return self.ceiling > self.start

    async def acquire(self) -> None:
        if self._held >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._release_one()  # woken and cancelled at once: hand the slot on
                raise
        else:
            self._held += 1
        self.peak = max(self.peak, self._held)

    def release(self) -> None:
        self._release_one()

    def _release_one(self) -> None:
        self._held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._held < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                waiter.set_result(None)

    def answered(self, seconds: float) -> None:
        """An answer came back in ``seconds`` (headers read): the platform is not overloaded."""
        if not self.adaptive:
            return
        self._best = min(self._best, seconds)
        self._window.append(seconds)
        if len(self._window) < self.limit:
            return
        fastest = min(self._window)
        self._window.clear()
        if fastest > self._best * SLOWER + _SLACK:
            self._slow_start = False
            self.limit = max(self.start, self.limit - 1)
            return
        grow = max(1, self.limit // 2) if self._slow_start else 1
        self.limit = min(self.ceiling, self.limit + grow)
        self._wake()

    def overloaded(self) -> None:
        """The platform said it is overloaded (429, 5xx) or did not answer: halve the limit."""
        if not self.adaptive:
            return
        self._slow_start = False
        self._window.clear()
        self.limit = max(1, self.limit // 2)
