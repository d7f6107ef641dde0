"""The HTTP client every provider uses: httpx, retries with backoff, rate limits, redaction.

Retries follow DESIGN.md: exponential backoff with full jitter on 429, 5xx, timeouts and
connection errors, honouring ``Retry-After`` (capped), bounded in attempts and in total time.
Every write the providers send is idempotent, so a retried request is always safe. Delays go
through an injectable ``sleep`` so retry tests run instantly.

A host that cannot be reached (the connection refused, the name unknown, no answer to the
connect within ``connect_timeout``) is retried ``connect_attempts`` times only, and the error
names the target and the host: a wrong ``base_url`` fails in seconds, not minutes.

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
import os
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
from tenacity.stop import stop_base

from . import __version__
from ._limit import AdaptiveLimit, NotSent, may_send
from ._logging import fields, logger
from ._netio import use_asyncio_backend
from ._redact import Redactor, clip
from ._reply import ERROR_BODY, MAX_BODY, Reply, read_body
from .exceptions import CredentialsRefused, RemoteError, StatusError

__all__ = ["MAX_BODY", "RETRY_STATUSES", "Http", "HttpStats", "Reply", "RetryPolicy"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: the most connections of one httpx pool (a client of more holds several)
POOL = 4
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
    #: attempts, and seconds for each connect, when the host cannot be reached at all
    connect_attempts: int = 4
    connect_timeout: float = 10.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(slots=True)
class HttpStats:
    requests: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class _Retryable(Exception):
    """``kind``: the status (``429``, ``503``), ``timeout``, ``connection`` (a connection
    dropped) or ``unreachable`` (none could be made)."""

    def __init__(self, message: str, retry_after: float | None, kind: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


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

    def __init__(
        self, rate: float, sleep: Callable[[float], Awaitable[None]], target: str = ""
    ) -> None:
        self._target = target
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._sleep = sleep

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                wait = self._next - now
                log.debug(
                    "rate limit: waiting %.3f s before the next request",
                    wait,
                    extra=fields("rate_limit", target=self._target, wait=round(wait, 3)),
                )
                await self._sleep(wait)
                now = time.monotonic()
            self._next = max(now, self._next) + self._interval


class _StopUnreachable(stop_base):
    """A stop: after ``attempts`` when the last one could not connect at all."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return (
            isinstance(exc, _Retryable)
            and exc.kind == "unreachable"
            and state.attempt_number >= self.attempts
        )


def _os_reason(exc: BaseException) -> str:
    """The system's reason for a failed connect ("Connection refused", "Name or service not
    known"), found down the chain of causes (httpx says "All connection attempts failed")."""
    reason = ""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno is not None:
            reason = os.strerror(seen.errno) if seen.errno > 0 else str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return reason


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
        target: str = "",
    ) -> None:
        #: prefixes messages, e.g. "target 'eps': "
        self.label = f"{label}: " if label else ""
        #: the target's name, a field of every logged event
        self.target = target
        self.retry = retry or RetryPolicy()
        #: seconds one attempt may take in all: connect, headers and the whole body
        self.deadline = float(timeout) if timeout else self.retry.timeout
        self._connect_timeout = min(self.deadline, self.retry.connect_timeout)
        self.stats = HttpStats()
        self._redactor = Redactor(secrets)
        self._limiter = _RateLimiter(rate_limit, self.retry.sleep, target) if rate_limit else None
        #: requests in flight: ``max_connections``, growing to ``grow_to`` while the platform
        #: keeps its pace (see :mod:`._limit`)
        self.slots = AdaptiveLimit(max_connections, grow_to)
        # pools of at most POOL connections: httpcore scans every connection of a pool on each
        # request, so one pool of 64 costs a request twice the CPU of eight pools of 8
        pools = -(-self.slots.ceiling // POOL)
        size = -(-self.slots.ceiling // pools)
        #: the pools, each made when a request first needs it (a command that sends nothing,
        #: such as a plan from the state store, makes none: each costs ~8 ms to set up)
        self._pools: list[httpx.AsyncClient | None] = [None] * pools
        self._pool_options: dict[str, Any] = {
            "base_url": base_url.rstrip("/"),
            "headers": {
                "User-Agent": f"audience-reconciler/{__version__}",
                # the encodings read_body decodes in bounded steps
                "Accept-Encoding": "gzip, deflate",
                **(headers or {}),
            },
            "timeout": httpx.Timeout(self.deadline, connect=self._connect_timeout),
            "limits": httpx.Limits(max_connections=size, max_keepalive_connections=size),
            "transport": transport,
        }
        #: requests in flight in each pool (a request goes to the least busy)
        self._busy = [0] * pools
        self._base = httpx.URL(base_url.rstrip("/") + "/")  # as httpx keeps a base URL
        #: path → its absolute URL, parsed once (httpx parses and joins a relative one on every
        #: request: a tenth of a write's CPU)
        self._urls: dict[str, httpx.URL] = {}

    def add_request_hook(self, hook: Callable[[httpx.Request], Awaitable[None]]) -> None:
        """Call ``hook`` with every request before it is sent, in every pool (httpx's request
        event hook: what a test records of the requests a provider sends)."""
        self._pool_options.setdefault("event_hooks", {"request": []})["request"].append(hook)
        for pool in self._pools:
            if pool is not None:
                pool.event_hooks["request"].append(hook)

    def redact(self, text: str) -> str:
        return self._redactor.text(text)

    async def aclose(self) -> None:
        for pool in self._pools:
            if pool is not None:
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
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts)
            | stop_after_delay(policy.max_elapsed)
            | _StopUnreachable(policy.connect_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=policy.sleep,
            before_sleep=functools.partial(self._retrying, method, path),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, json, params, headers, expected, max_body)
        except _Retryable as exc:
            attempts = attempt.retry_state.attempt_number
            message = self.redact(
                f"{self.label}{method} {path}: {exc} (gave up after {attempts} attempts)"
            )
            where = self._fields(method, path, status=exc.kind, attempts=attempts)
            log.warning("%s", message, extra=fields("gave_up", **where))
            raise RemoteError(message) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: ``Retry-After`` (capped), else full jitter."""
        policy = self.retry
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, policy.retry_after_cap)
        ceiling = min(policy.cap, policy.base * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

    def _retrying(self, method: str, path: str, state: RetryCallState) -> None:
        """Count a retry and log it: the reason, the attempt and the wait."""
        self.stats.retries += 1
        if not log.isEnabledFor(logging.INFO):
            return
        exc = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        kind = exc.kind if isinstance(exc, _Retryable) else type(exc).__name__
        log.info(
            "%s",
            self.redact(
                f"{self.label}{method} {path}: {exc}, retry {state.attempt_number} in {pause:.2f} s"
            ),
            extra=fields(
                "retry",
                **self._fields(
                    method, path, status=kind, attempt=state.attempt_number, wait=round(pause, 3)
                ),
            ),
        )

    def _fields(self, method: str, path: str, **more: object) -> dict[str, object]:
        """An event's fields about a request: the target, the method and the path (redacted)."""
        return {"target": self.target, "method": method, "path": self.redact(path), **more}

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
                raise _Retryable(
                    f"no complete answer within {self.deadline:g} s", None, "timeout"
                ) from None
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
        client = self._pools[pool] or self._pool(pool)
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
                    log.debug(
                        "%s",
                        self.redact(f"{where}: HTTP {status} in {took:.0f} ms"),
                        extra=fields(
                            "request", **self._fields(method, path, status=status, ms=round(took))
                        ),
                    )
                if status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {status}", _retry_after(response), str(status))
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
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                self.slots.overloaded()
            raise self._failed(request, exc) from exc
        finally:
            busy[pool] -= 1
        reply = Reply(status, response.headers, content, where, self.redact)
        text = clip(self.redact(reply.text))
        try:
            body = self._redactor.value(jsonlib.loads(content))
        except (ValueError, RecursionError):
            body = None
        raise StatusError(f"{where}: HTTP {status} {text}".strip(), status, text, body)

    def _failed(self, request: httpx.Request, exc: httpx.TransportError) -> _Retryable:
        """The retryable error of a request that got no answer: a host that could not be
        reached is named (host and port, and the system's reason)."""
        timeout = isinstance(exc, httpx.TimeoutException)
        self._count("timeout" if timeout else "connection")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            url = request.url
            port = url.port or (443 if url.scheme == "https" else 80)
            reason = _os_reason(exc) or str(exc) or type(exc).__name__
            if timeout:
                reason = f"no answer to the connect within {self._connect_timeout:g} s"
            return _Retryable(
                f"cannot connect to {url.host}:{port} ({reason})", None, "unreachable"
            )
        if timeout:
            return _Retryable(f"timed out ({type(exc).__name__})", None, "timeout")
        return _Retryable(f"connection failed ({type(exc).__name__})", None, "connection")

    @property
    def _client(self) -> httpx.AsyncClient:
        """The first pool (made now if no request has needed it yet)."""
        return self._pools[0] or self._pool(0)

    def _pool(self, index: int) -> httpx.AsyncClient:
        """Pool ``index``, made now: its first request."""
        client = httpx.AsyncClient(**self._pool_options, verify=_tls())
        use_asyncio_backend(client)
        self._pools[index] = client
        return client

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            base, relative = self._base, httpx.URL(path)  # as httpx joins them
            url = base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))
            if len(self._urls) < _URLS:
                self._urls[path] = url
        return url

    def _count(self, key: str) -> None:
        self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
