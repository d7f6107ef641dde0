"""The in-flight limit of an HTTP client (reconciler._limit.AdaptiveLimit): fixed when its
ceiling is its start, growing while answers keep the best pace, narrowing when they slow,
halving when the platform says it is overloaded; and never more requests in flight than it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler._http import Http, RetryPolicy
from reconciler._limit import AdaptiveLimit, NotSent, may_send


def window(limit: AdaptiveLimit, seconds: float) -> None:
    """One window of answers (as many as the limit), each taking ``seconds``."""
    for _ in range(limit.limit):
        limit.answered(seconds)


def test_a_limit_whose_ceiling_is_its_start_is_fixed() -> None:
    limit = AdaptiveLimit(4)
    for _ in range(20):
        window(limit, 0.02)
    limit.overloaded()
    assert limit.limit == 4


def test_it_grows_while_the_pace_holds_then_narrows_when_answers_slow() -> None:
    limit = AdaptiveLimit(16, 64)
    window(limit, 0.020)
    assert limit.limit == 24  # slow start: by half a window
    for _ in range(5):
        window(limit, 0.021)
    assert limit.limit == 64  # and never past the ceiling
    window(limit, 0.060)  # three times the best round trip: saturated
    assert limit.limit == 63
    window(limit, 0.020)
    assert limit.limit == 64  # by one, once slow start has ended


def test_an_overloaded_platform_halves_it_down_to_one() -> None:
    limit = AdaptiveLimit(16, 64)
    limit.overloaded()
    assert limit.limit == 8
    for _ in range(6):
        limit.overloaded()
    assert limit.limit == 1
    window(limit, 0.02)
    assert limit.limit == 2  # growing again by one a window


def test_no_more_requests_are_in_flight_than_the_limit() -> None:
    async def main() -> tuple[int, int]:
        limit = AdaptiveLimit(3, 12)
        running = peak = 0

        async def one(i: int) -> None:
            nonlocal running, peak
            await limit.acquire()
            try:
                running += 1
                peak = max(peak, running)
                assert running <= limit.limit
                await asyncio.sleep(0)
                if i == 40:
                    limit.overloaded()
                else:
                    limit.answered(0.01)
            finally:
                running -= 1
                limit.release()

        await asyncio.gather(*(one(i) for i in range(200)))
        return peak, limit.peak

    peak, seen = asyncio.run(main())
    assert 3 < peak <= 12
    assert seen == peak


def test_a_waiter_cancelled_hands_its_slot_on() -> None:
    async def main() -> int:
        limit = AdaptiveLimit(1)
        await limit.acquire()
        waiting = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        limit.release()
        await asyncio.wait_for(limit.acquire(), 5)  # not lost to the cancelled waiter
        limit.release()
        return limit.peak

    assert asyncio.run(main()) == 1


def test_the_client_backs_off_on_429_honouring_retry_after() -> None:
    answers = iter([429, 429, 200])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, headers={"Retry-After": "0.5"} if status == 429 else {})

    async def main() -> Any:
        http = Http(
            "http://127.0.0.1:9",
            retry=RetryPolicy(sleep=sleep),
            max_connections=16,
            grow_to=64,
            transport=httpx.MockTransport(handler),
        )
        try:
            await http.request("GET", "/x")
            return http.slots.limit
        finally:
            await http.aclose()

    assert asyncio.run(main()) == 4  # 16, halved twice
    assert slept == [0.5, 0.5]


def test_a_request_the_caller_no_longer_wants_once_it_has_a_slot_is_not_sent() -> None:
    """The executor asks again once a batch holds a connection (it may have waited for one):
    a stop asked for meanwhile sends nothing; the question is asked once, not of the retries
    or the task's further requests."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200)

    async def main() -> None:
        transport = httpx.MockTransport(handler)
        http = Http("http://127.0.0.1:9", max_connections=1, transport=transport)
        try:
            may_send.set(lambda: False)
            with pytest.raises(NotSent):
                await http.request("POST", "/dropped")
            # its one slot was given back: the next request does not wait for it
            await asyncio.wait_for(http.request("POST", "/next"), 5)
            may_send.set(lambda: True)
            await http.request("POST", "/wanted")
        finally:
            await http.aclose()

    asyncio.run(main())
    assert sent == ["/next", "/wanted"]
