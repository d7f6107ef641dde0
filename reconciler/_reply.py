"""An answer of a platform: its body read streamed, capped and decompressed, then its JSON
read and checked against a declared shape.

A body is streamed and refused past :data:`MAX_BODY` bytes, counted after decompression (gzip
and deflate are decoded here, in bounded steps, so a gzip bomb never expands in memory). An
answer is a :class:`Reply`: its JSON is read, and checked against a declared shape, in one place
(:meth:`Reply.parse`), so a platform answering HTML, JSON nested too deeply or JSON of another
shape is one line naming the target and the request.
"""

from __future__ import annotations

import json as jsonlib
import re
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._redact import clip
from .exceptions import ProviderError

if TYPE_CHECKING:
    import httpx
    from pydantic import TypeAdapter

__all__ = ["ERROR_BODY", "MAX_BODY", "STEP", "Inflate", "Reply", "read_body"]

#: the most bytes one answer may hold, decompressed: a page of 1000 customers is ~100 kB, so
#: this is far above any real page; a larger answer is refused, not read on
MAX_BODY = 32 * 2**20
#: the most bytes of an error answer read (only an excerpt of it reaches a message)
ERROR_BODY = 64 * 2**10
#: raw bytes read, and decompressed bytes produced, per step
STEP = 64 * 2**10

_T = TypeVar("_T")


class Inflate:
    """A gzip or deflate body decoded in steps of at most :data:`STEP` bytes (zlib's
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
            piece = self._z.decompress(data, STEP)
            if piece:
                yield piece
            data = self._z.unconsumed_tail
            if not data and len(piece) < STEP:
                return

    def flush(self) -> bytes:
        return self._z.flush()


async def _aiter(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def read_body(response: httpx.Response, limit: int, where: str, *, truncate: bool) -> bytes:
    """The body, decompressed, read in steps; past ``limit`` bytes it is cut short
    (``truncate``) or refused with a :class:`ProviderError`."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "deflate"):
        raise ProviderError(f"{where}: the answer has an unsupported encoding {encoding!r}")
    inflate = Inflate(encoding) if encoding in ("gzip", "deflate") else None
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
        chunks = response.aiter_raw(STEP)

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
