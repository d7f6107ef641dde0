"""The HTTP client every provider uses: httpx, retries with backoff, rate limits, redaction.

Retries follow DESIGN.md: exponential backoff with full jitter on 429, 5xx, timeouts and
connection errors, honouring ``Retry-After`` (capped), bounded in attempts and in total time.
Every write the providers send is idempotent, so a retried request is always safe. Delays go
through an injectable ``sleep`` so retry tests run instantly.

Every attempt has one overall deadline (connect, headers and the whole body: httpx's own
timeouts are per phase, so a server trickling a byte a second would never trip them), and a
body is streamed and refused past :data:`MAX_BODY` bytes, counted after decompression (the
client decodes gzip and deflate itself, in bounded steps, so a gzip bomb never expands in
memory). An answer is a :class:`Reply`: its JSON is read, and checked against a declared shape,
in one place (:meth:`Reply.parse`), so a platform answering HTML, JSON nested too deeply or
JSON of another shape is one line naming the target and the request.

Secrets never leave this module in a message: errors name the target, the method, the path and
the status; every text or parsed body of an answer that can reach a message passes through
:meth:`Http.redact` here, before any message is built, and is quoted only as a short excerpt.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json as jsonlib
import logging
import random
import re
import ssl
import time
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from . import __version__
from ._logging import logger
from .exceptions import CredentialsRefused, ProviderError, RemoteError, StatusError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "EXCERPT",
    "MAX_BODY",
    "MIN_SECRET",
    "RETRY_STATUSES",
    "Http",
    "HttpStats",
    "Reply",
    "RetryPolicy",
    "clip",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: the most bytes one answer may hold, decompressed: a page of 1000 customers is ~100 kB, so
#: this is far above any real page; a larger answer is refused, not read on
MAX_BODY = 32 * 2**20
#: the most bytes of an error answer read (only an excerpt of it reaches a message)
_ERROR_BODY = 64 * 2**10
#: the most characters of an answer a message quotes
EXCERPT = 200
#: secrets at least this long are redacted wherever they occur; shorter ones (which could be
#: part of any word) only where they stand as a whole token
MIN_SECRET = 8
#: raw bytes read, and decompressed bytes produced, per step
_STEP = 64 * 2**10

_T = TypeVar("_T")

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


def clip(text: str, limit: int = EXCERPT) -> str:
    """``text`` on one line, at most ``limit`` characters (an excerpt for a message)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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


class _Redactor:
    """Replaces every credential in a text with ``***``.

    The rule: a secret of at least :data:`MIN_SECRET` characters is replaced wherever it
    occurs (a long random string never occurs by accident, and it may be glued to other text,
    as in ``Basic<key>``); a shorter one only where it stands as a whole token, between
    characters that are not letters or digits (replacing it inside words would mangle every
    message: a one-letter key would star out that letter everywhere, and a short string inside
    a word tells nothing about the secret). Each secret is matched as sent and in its URL-encoded
    and JSON-escaped forms. Messages quote at most :data:`EXCERPT` characters of an answer.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret, urllib.parse.quote(secret, safe=""), jsonlib.dumps(secret)[1:-1]}
        parts = [
            re.escape(f) if len(f) >= MIN_SECRET else rf"(?<![^\W_]){re.escape(f)}(?![^\W_])"
            for f in sorted(forms, key=len, reverse=True)
        ]
        self._pattern = re.compile("|".join(parts)) if parts else None

    def text(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern else text

    def value(self, value: Any) -> Any:
        """A parsed JSON value with every string in it (keys too) redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value


class _Inflate:
    """A gzip or deflate body decoded in steps of at most :data:`_STEP` bytes (zlib's
    ``max_length``), so a small input that expands enormously is stopped while it expands."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._deflate and not self._started and data:
            self._started = True
            try:  # "deflate" is meant as zlib-wrapped, but often sent raw
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        while True:
            piece = self._z.decompress(data, _STEP)
            if piece:
                yield piece
            data = self._z.unconsumed_tail
            if not data and len(piece) < _STEP:
                return

    def flush(self) -> bytes:
        return self._z.flush()


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete answer: status, headers and the whole body (decompressed, size-capped)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    #: ``target 'eps': GET /v1/customers``: where the answer came from, for messages
    where: str
    _redact: Callable[[str], str] = field(repr=False)

    @property
    def text(self) -> str:
        match = re.search(r"charset=([\w.:-]+)", self.headers.get("content-type", ""))
        try:
            return self.content.decode(match[1] if match else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def error(self, problem: str) -> ProviderError:
        """A :class:`ProviderError` naming the target and the request (redacted)."""
        return ProviderError(self._redact(f"{self.where}: {problem}"))

    def excerpt(self) -> str:
        return repr(clip(self._redact(self.text)))

    def json(self) -> Any:
        """The body as JSON; a body that is not (HTML, nesting too deep) is a clear error."""
        try:
            return jsonlib.loads(self.content)
        except RecursionError:
            raise self.error("the answer is JSON nested too deeply to read") from None
        except ValueError:
            kind = self.headers.get("content-type") or "no content type"
            raise self.error(f"the answer is not JSON ({kind}): {self.excerpt()}") from None

    def parse(self, shape: type[_T]) -> _T:
        """The body as JSON, checked against ``shape`` (a ``TypedDict``, strictly: no type is
        coerced)."""
        from pydantic import ValidationError

        data = self.json()
        try:
            return _adapter(shape).validate_python(data, strict=True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            first = errors[0]
            where = _location(first["loc"]) or "the answer"
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise self.error(
                f"the answer does not have the documented shape: {where}: {first['msg']}{more}"
            ) from None


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(shape: type[_T]) -> TypeAdapter[_T]:
    """The validator of ``shape``, built on first use: pydantic (~60 ms to import) is loaded
    only by a command that reads a platform."""
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _aiter(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


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
        timeout: float | None = None,
    ) -> None:
        #: prefixes messages, e.g. "target 'eps': "
        self.label = f"{label}: " if label else ""
        self.retry = retry or RetryPolicy()
        #: seconds one attempt may take in all: connect, headers and the whole body
        self.deadline = float(timeout) if timeout else self.retry.timeout
        self.stats = HttpStats()
        self._redactor = _Redactor(secrets)
        self._limiter = _RateLimiter(rate_limit, self.retry.sleep) if rate_limit else None
        self._slots = asyncio.Semaphore(max_connections)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "User-Agent": f"audience-reconciler/{__version__}",
                # the encodings _Inflate decodes in bounded steps
                "Accept-Encoding": "gzip, deflate",
                **(headers or {}),
            },
            timeout=self.deadline,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            verify=_tls(),
        )

    def redact(self, text: str) -> str:
        return self._redactor.text(text)

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
        async with self._slots:
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
                raise _Retryable(f"no complete answer within {self.deadline:g} s", None) from None

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
        request = self._client.build_request(
            method, path, json=json, params=params, headers=headers
        )
        try:
            began = time.monotonic()
            response = await self._client.send(request, stream=True)
            try:
                status = response.status_code
                self._count(str(status))
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
                    content = await self._body(response, max_body, where, truncate=False)
                    return Reply(status, response.headers, content, where, self.redact)
                content = await self._body(response, _ERROR_BODY, where, truncate=True)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            self._count("timeout")
            raise _Retryable(f"timed out ({type(exc).__name__})", None) from exc
        except httpx.TransportError as exc:
            self._count("connection")
            raise _Retryable(f"connection failed ({type(exc).__name__})", None) from exc
        reply = Reply(status, response.headers, content, where, self.redact)
        text = clip(self.redact(reply.text))
        try:
            body = self._redactor.value(jsonlib.loads(content))
        except (ValueError, RecursionError):
            body = None
        raise StatusError(f"{where}: HTTP {status} {text}".strip(), status, text, body)

    async def _body(
        self, response: httpx.Response, limit: int, where: str, *, truncate: bool
    ) -> bytes:
        """The body, decompressed, read in steps; past ``limit`` bytes it is cut short
        (``truncate``) or refused with a :class:`ProviderError`."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "deflate"):
            raise ProviderError(f"{where}: the answer has an unsupported encoding {encoding!r}")
        inflate = _Inflate(encoding) if encoding in ("gzip", "deflate") else None
        too_big = ProviderError(
            f"{where}: the answer is larger than {limit / 2**20:g} MB"
            f"{' decompressed' if inflate else ''}; refused (a real answer is far smaller)"
        )
        length = response.headers.get("content-length", "")
        if not truncate and length.isdigit() and int(length) > limit:
            raise too_big
        out = bytearray()
        if response.is_stream_consumed:  # built whole in memory (a mock transport's answer)
            inflate = None
            chunks: Any = _aiter((response.content,))
        else:
            chunks = response.aiter_raw(_STEP)

        def take(piece: bytes) -> bool:
            out.extend(piece)
            if len(out) <= limit:
                return True
            if truncate:
                del out[limit:]
                return False
            raise too_big

        try:
            async for raw in chunks:
                pieces = inflate.feed(raw) if inflate else (raw,)
                if not all(take(p) for p in pieces):
                    return bytes(out)
            if inflate:
                take(inflate.flush())
        except zlib.error:
            raise ProviderError(f"{where}: the answer's {encoding} data is corrupt") from None
        return bytes(out)

    def _count(self, key: str) -> None:
        self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
