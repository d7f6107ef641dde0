"""The HTTP layer: retries with backoff, Retry-After, redaction — with an instant clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from reconciler._http import POOL, Http, RetryPolicy
from reconciler.exceptions import RemoteError, StatusError

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def client(handler: Callable[[httpx.Request], httpx.Response], clock: Clock, **kw: Any) -> Http:
    policy = RetryPolicy(attempts=kw.pop("attempts", 5), sleep=clock.sleep)
    return Http(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
        retry=policy,
        secrets=["s3cret-token"],
        **kw,
    )


def test_retries_5xx_then_succeeds_and_counts_retries() -> None:
    answers = iter([500, 503, 200])
    clock = Clock()
    http = client(lambda req: httpx.Response(next(answers), json={}), clock)
    response = run(http.request("GET", "/x"))
    assert response.status_code == 200
    assert http.stats.retries == 2
    assert http.stats.requests == 3
    assert len(clock.slept) == 2


def test_honours_retry_after() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(204)])
    clock = Clock()
    http = client(lambda req: next(answers), clock)
    assert run(http.request("POST", "/x")).status_code == 204
    assert clock.slept == [7.0]


def test_connection_errors_and_timeouts_are_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls["n"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        if calls["n"] == 3:
            raise httpx.RemoteProtocolError("dropped", request=request)
        return httpx.Response(200)

    http = client(handler, Clock())
    assert run(http.request("GET", "/x")).status_code == 200
    assert http.stats.by_status == {"connection": 2, "timeout": 1, "200": 1}


def test_an_unreachable_host_is_named_after_the_connect_attempts() -> None:
    """A refused connect (or an unknown name, or a connect timeout) is tried
    ``connect_attempts`` times, not ``attempts``, and the error names the host, the port and
    the system's reason, found under httpx's "All connection attempts failed"."""

    def refuse(request: httpx.Request) -> httpx.Response:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError as exc:
            raise httpx.ConnectError("All connection attempts failed", request=request) from exc

    clock = Clock()
    http = Http(
        "https://api.example.com",
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(attempts=8, connect_attempts=3, sleep=clock.sleep),
        label="target 'eps'",
        target="eps",
    )
    with pytest.raises(RemoteError) as info:
        run(http.request("GET", "/v1/customers"))
    assert str(info.value) == (
        "target 'eps': GET /v1/customers: cannot connect to api.example.com:443 "
        "(Connection refused) (gave up after 3 attempts)"
    )
    assert http.stats.requests == 3
    assert len(clock.slept) == 2

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    http = client(slow, Clock(), attempts=8)
    with pytest.raises(
        RemoteError,
        match=r"cannot connect to 127\.0\.0\.1:9 \(no answer to the "
        r"connect within 10 s\) \(gave up after 4 attempts\)",
    ):
        run(http.request("GET", "/x"))


def test_a_dropped_connection_gets_every_attempt() -> None:
    """Only a host that cannot be reached gets fewer attempts: a connection that breaks once
    made (a restart, a proxy) is retried as often as a 503."""

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    http = client(drop, Clock(), attempts=6)
    with pytest.raises(
        RemoteError, match=r"connection failed \(RemoteProtocolError\) \(gave up after 6"
    ):
        run(http.request("GET", "/x"))
    assert http.stats.requests == 6


def test_gives_up_with_a_remote_error_after_the_attempts() -> None:
    http = client(lambda req: httpx.Response(502), Clock(), attempts=3)
    with pytest.raises(RemoteError, match="gave up after 3 attempts"):
        run(http.request("GET", "/x"))
    assert http.stats.requests == 3


def test_other_statuses_are_not_retried_and_secrets_are_redacted() -> None:
    http = client(lambda req: httpx.Response(400, text="bad token s3cret-token"), Clock())
    with pytest.raises(StatusError) as info:
        run(http.request("POST", "/x"))
    assert info.value.status == 400
    assert "s3cret-token" not in str(info.value)
    assert "***" in str(info.value)
    assert http.stats.requests == 1


def test_backoff_grows_and_is_capped() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=8, base=1.0, cap=4.0, sleep=clock.sleep)
    http = Http(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(lambda r: httpx.Response(503)),
        retry=policy,
    )
    with pytest.raises(RemoteError):
        run(http.request("GET", "/x"))
    assert len(clock.slept) == 7
    assert all(0 <= s <= 4.0 for s in clock.slept)


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:9/epsilon", "https://x.talon.one", "http://h:1/a/"]
)
@pytest.mark.parametrize("path", ["/v1/customers", "/v1/segments/a%2Fb:manage-access", "/v1/a b"])
def test_a_path_parsed_once_is_the_url_httpx_would_join(base: str, path: str) -> None:
    async def main() -> None:
        http = Http(base)
        try:
            joined = http._client.build_request("GET", path, params={"q": "1"}).url
            assert http._client.build_request("GET", http._url(path), params={"q": "1"}).url == (
                joined
            )
            assert http._url(path) is http._url(path)  # parsed once
        finally:
            await http.aclose()

    asyncio.run(main())


def test_a_pool_is_made_by_the_first_request_that_needs_it() -> None:
    """A client that sends nothing (a plan from the state store) sets up no pool; requests in
    flight at once spread over the pools, each made when first needed."""
    started = asyncio.Event()
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        started.set()
        await gate.wait()
        return httpx.Response(200, json={})

    async def main() -> None:
        http = Http(
            "http://127.0.0.1:9", transport=httpx.MockTransport(handler), max_connections=2 * POOL
        )
        try:
            assert http._pools == [None, None]
            await http.aclose()  # closing what was never made is a no-op
            first = asyncio.ensure_future(http.request("GET", "/a"))
            await started.wait()
            assert [p is not None for p in http._pools] == [True, False]
            second = asyncio.ensure_future(http.request("GET", "/b"))
            await asyncio.sleep(0)
            for _ in range(5):  # the second request reaches its pool
                await asyncio.sleep(0)
            assert all(p is not None for p in http._pools)
            gate.set()
            assert [(await first).status_code, (await second).status_code] == [200, 200]
        finally:
            await http.aclose()

    asyncio.run(main())
