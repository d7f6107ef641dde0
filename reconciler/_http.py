"""The HTTP client every provider uses: httpx, retries with backoff, rate limits, redaction.

Retries follow DESIGN.md: exponential backoff with full jitter on 429, 5xx, timeouts and
connection errors, honouring ``Retry-After`` (capped), bounded in attempts and in total time.
Every write the providers send is idempotent, so a retried request is always safe. Delays go
through an injectable ``sleep`` so retry tests run instantly.

Secrets never leave this module in a message: errors name the method, the path and the status,
and any text that reaches a message is passed through :meth:`Http.redact`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
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
from .exceptions import ProviderError, RemoteError

__all__ = [
    "RETRY_STATUSES",
    "CredentialsRefused",
    "Http",
    "HttpStats",
    "RetryPolicy",
    "StatusError",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    #: give up on one request after this many seconds of retrying
    max_elapsed: float = 120.0
    base: float = 0.25
    cap: float = 20.0
    #: the longest ``Retry-After`` honoured
    retry_after_cap: float = 60.0
    timeout: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(slots=True)
class HttpStats:
    requests: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class StatusError(RemoteError):
    """A response with a status the caller did not expect (providers map the ones they know;
    any other reaches the user as one line)."""

    def __init__(self, response: httpx.Response, message: str) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code


class CredentialsRefused(ProviderError):
    """HTTP 401 or 403: the target refused the credentials. Never retried."""


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
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


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
        transport: httpx.AsyncBaseTransport | None = None,
        label: str = "",
    ) -> None:
        #: prefixes messages, e.g. "target 'eps': "
        self.label = f"{label}: " if label else ""
        self.retry = retry or RetryPolicy()
        self.stats = HttpStats()
        self._secrets = tuple(s for s in secrets if s)
        self._limiter = _RateLimiter(rate_limit, self.retry.sleep) if rate_limit else None
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": f"audience-reconciler/{__version__}", **(headers or {})},
            timeout=self.retry.timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            verify=_tls(),
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Iterable[int] = (200, 201, 204),
    ) -> httpx.Response:
        """Send with retries. Returns a response whose status is in ``expect``; raises
        :class:`StatusError` for another non-retryable status and :class:`RemoteError` when
        retries run out."""
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
                    return await self._once(method, path, json, params, headers, expected)
        except _Retryable as exc:
            raise RemoteError(
                self.redact(f"{method} {path}: {exc} (gave up after {policy.attempts} attempts)")
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        json: Any,
        params: Any,
        headers: Mapping[str, str] | None,
        expected: frozenset[int],
    ) -> httpx.Response:
        if self._limiter:
            await self._limiter.acquire()
        self.stats.requests += 1
        try:
            response = await self._client.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            self._count("timeout")
            raise _Retryable(f"timed out ({type(exc).__name__})", None) from exc
        except httpx.TransportError as exc:
            self._count("connection")
            raise _Retryable(f"connection failed ({type(exc).__name__})", None) from exc
        self._count(str(response.status_code))
        if response.status_code in expected:
            return response
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code in (401, 403):
            raise CredentialsRefused(
                f"{self.label}{method} {path}: HTTP {response.status_code}: the platform refused "
                "the credentials (check the environment variables this target names)"
            )
        body = self.redact(response.text[:300])
        raise StatusError(response, f"{method} {path}: HTTP {response.status_code} {body}".strip())

    def _count(self, key: str) -> None:
        self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
