"""The HTTP client every provider uses: httpx, retries with backoff, rate limits, redaction.

Retries follow DESIGN.md: exponential backoff with full jitter on 429, 5xx, timeouts and
connection errors, honouring ``Retry-After`` (capped), bounded in attempts and in total time.
Every write the providers send is idempotent, so a retried request is always safe. Delays go
through an injectable ``sleep`` so retry tests run instantly.

Every attempt has one overall deadline (connect, headers and the whole body: httpx's own
timeouts are per phase, so a server trickling a byte a second would never trip them); the body
is read streamed, capped and decompressed (:func:`~._reply.read_body`) into a :class:`Reply`.

Secrets never leave this module in a message: errors name the target, the method, the path and
the status; every text or parsed body of an answer that can reach a message passes through
:meth:`Http.redact` (:class:`~._redact.Redactor`) here, before any message is built, and is
quoted only as a short excerpt.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json as jsonlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from . import __version__
from ._limit import AdaptiveLimit, NotSent, may_send
from ._logging import logger
from ._redact import Redactor, clip
from ._reply import ERROR_BODY, MAX_BODY, Reply, read_body
from .exceptions import CredentialsRefused, RemoteError, StatusError

__all__ = ["MAX_BODY", "RETRY_STATUSES", "Http", "HttpStats", "Reply", "RetryPolicy"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: the most connections of one httpx pool (a client of more holds several)
POOL = 8
#: the most absolute URLs a client keeps parsed (one per distinct path)
_URLS = 1024
#: the answers that say the platform is overloaded: the in-flight limit halves
OVERLOAD_STATUSES = frozenset({429, 503, 504})

log = logger("http")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    #: give up on one request after this many seconds of retrying
    max_elapsed: float = 120.0
    base: float = 0.25
    cap: float = 20.0
    #: the longest ``Retry-After`` honoured
    retry_after_cap: float = 60.0
    #: seconds one attempt may take in all (connect, headers, whole body), unless the client
    #: is given its own (a target's ``timeout`` setting)
    timeout: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(slots=True)
class HttpStats:
    requests: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class _RateLimiter:
    """At most ``rate`` request starts per second (a spacing limiter, fair across tasks)."""

    def __init__(self, rate: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._sleep = sleep

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                log.debug("rate limit: waiting %.3f s before the next request", self._next - now)
                await self._sleep(self._next - now)
                now = time.monotonic()
            self._next = max(now, self._next) + self._interval


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every client of the process (httpx builds one per
    client otherwise, loading the CA bundle each time: ~50 ms apiece)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Http:
    """An async HTTP client bound to one base URL, with retries and redaction."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        max_connections: int = 32,
        grow_to: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        label: str = "",
        timeout: float | None = None,
    ) -> None:
        #: prefixes messages, e.g. "target 'eps': "
        self.label = f"{label}: " if label else ""
        self.retry = retry or RetryPolicy()
        #: seconds one attempt may take in all: connect, headers and the whole body
        self.deadline = float(timeout) if timeout else self.retry.timeout
        self.stats = HttpStats()
        self._redactor = Redactor(secrets)
        self._limiter = _RateLimiter(rate_limit, self.retry.sleep) if rate_limit else None
        #: requests in flight: ``max_connections``, growing to ``grow_to`` while the platform
        #: keeps its pace (see :mod:`._limit`)
        self.slots = AdaptiveLimit(max_connections, grow_to)
        # pools of at most POOL connections: httpcore scans every connection of a pool on each
        # request, so one pool of 64 costs a request twice the CPU of eight pools of 8
        pools = -(-self.slots.ceiling // POOL)
        size = -(-self.slots.ceiling // pools)
        self._pools = [
            httpx.AsyncClient(
                base_url=base_url.rstrip("/"),
                headers={
                    "User-Agent": f"audience-reconciler/{__version__}",
                    # the encodings read_body decodes in bounded steps
                    "Accept-Encoding": "gzip, deflate",
                    **(headers or {}),
                },
                timeout=self.deadline,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                transport=transport,
                verify=_tls(),
            )
            for _ in range(pools)
        ]
        #: requests in flight in each pool (a request goes to the least busy)
        self._busy = [0] * pools
        self._client = self._pools[0]
        #: path → its absolute URL, parsed once (httpx parses and joins a relative one on every
        #: request: a tenth of a write's CPU)
        self._urls: dict[str, httpx.URL] = {}

    def redact(self, text: str) -> str:
        return self._redactor.text(text)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Iterable[int] = (200, 201, 204),
        max_body: int = MAX_BODY,
    ) -> Reply:
        """Send with retries. Returns the answer when its status is in ``expect``; raises
        :class:`StatusError` for another non-retryable status, :class:`ProviderError` for a
        body over ``max_body`` bytes and :class:`RemoteError` when retries run out."""
        expected = frozenset(expect)
        policy = self.retry

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return min(exc.retry_after, policy.retry_after_cap)
            ceiling = min(policy.cap, policy.base * 2 ** (state.attempt_number - 1))
            return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

        def count(state: RetryCallState) -> None:
            self.stats.retries += 1
            if log.isEnabledFor(logging.INFO):
                exc = state.outcome.exception() if state.outcome else None
                pause = state.next_action.sleep if state.next_action else 0.0
                log.info(
                    "%s",
                    self.redact(
                        f"{self.label}{method} {path}: {exc}, retry {state.attempt_number} "
                        f"in {pause:.2f} s"
                    ),
                )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_elapsed),
            wait=wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=policy.sleep,
            before_sleep=count,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, json, params, headers, expected, max_body)
        except _Retryable as exc:
            message = self.redact(
                f"{self.label}{method} {path}: {exc} "
                f"(gave up after {attempt.retry_state.attempt_number} attempts)"
            )
            log.warning("%s", message)
            raise RemoteError(message) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        json: Any,
        params: Any,
        headers: Mapping[str, str] | None,
        expected: frozenset[int],
        max_body: int,
    ) -> Reply:
        # a connection first, then the pace: requests are spaced as sent; neither wait counts
        # against the deadline
        await self.slots.acquire()
        try:
            check = may_send.get()
            if check is not None:
                may_send.set(None)
                if not check():
                    raise NotSent(f"{method} {path}")
            if self._limiter:
                await self._limiter.acquire()
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self.deadline):
                    return await self._exchange(
                        method, path, json, params, headers, expected, max_body
                    )
            except TimeoutError:
                self._count("timeout")
                self.slots.overloaded()
                raise _Retryable(f"no complete answer within {self.deadline:g} s", None) from None
        finally:
            self.slots.release()

    async def _exchange(
        self,
        method: str,
        path: str,
        json: Any,
        params: Any,
        headers: Mapping[str, str] | None,
        expected: frozenset[int],
        max_body: int,
    ) -> Reply:
        where = f"{self.label}{method} {path}"
        busy = self._busy
        pool = busy.index(min(busy))
        client = self._pools[pool]
        request = client.build_request(
            method, self._url(path), json=json, params=params, headers=headers
        )
        busy[pool] += 1
        try:
            began = time.monotonic()
            response = await client.send(request, stream=True)
            try:
                status = response.status_code
                self._count(str(status))
                if status in OVERLOAD_STATUSES:
                    self.slots.overloaded()
                else:
                    self.slots.answered(time.monotonic() - began)
                if log.isEnabledFor(logging.DEBUG):
                    took = (time.monotonic() - began) * 1000
                    log.debug("%s", self.redact(f"{where}: HTTP {status} in {took:.0f} ms"))
                if status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {status}", _retry_after(response))
                if status in (401, 403):
                    raise CredentialsRefused(
                        f"{where}: HTTP {status}: the platform refused the credentials "
                        "(check the environment variables this target names)"
                    )
                if status in expected:
                    content = await read_body(response, max_body, where, truncate=False)
                    return Reply(status, response.headers, content, where, self.redact)
                content = await read_body(response, ERROR_BODY, where, truncate=True)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            self._count("timeout")
            self.slots.overloaded()
            raise _Retryable(f"timed out ({type(exc).__name__})", None) from exc
        except httpx.TransportError as exc:
            self._count("connection")
            raise _Retryable(f"connection failed ({type(exc).__name__})", None) from exc
        finally:
            busy[pool] -= 1
        reply = Reply(status, response.headers, content, where, self.redact)
        text = clip(self.redact(reply.text))
        try:
            body = self._redactor.value(jsonlib.loads(content))
        except (ValueError, RecursionError):
            body = None
        raise StatusError(f"{where}: HTTP {status} {text}".strip(), status, text, body)

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            base, relative = self._client.base_url, httpx.URL(path)  # as httpx joins them
            url = base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))
            if len(self._urls) < _URLS:
                self._urls[path] = url
        return url

    def _count(self, key: str) -> None:
        self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
