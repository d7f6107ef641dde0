"""A hostile platform on 127.0.0.1: Epsilon's and Talon.One's read endpoints answering what a
broken or malicious server could, one case at a time.

A small threaded server on a raw socket (so it can trickle, chunk and compress as it likes).
Epsilon is served under ``/epsilon``, Talon.One's CDP API under ``/talon`` and its Management
API under ``/talon-mgmt``. With ``case = "healthy"`` it answers like a tiny, well-behaved
platform; every other case spoils the list read of both providers (Epsilon ``GET
/v1/customers``, Talon.One ``GET /v1/audiences``), except ``echo``, which answers every write
with a 400 (Epsilon) or 422 (Talon.One) quoting the request's ``Authorization`` header.

Nothing big is held in memory: the huge and the compressed bodies are produced chunk by chunk
as they are sent, and ``sent`` counts what went out before the client hung up.
"""

from __future__ import annotations

import json
import select
import socketserver
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .loopback import Served

CASES = (
    "healthy",
    "trickle",
    "endless",
    "same-page",
    "huge",
    "gzip-bomb",
    "html",
    "nested",
    "missing-id",
    "wrong-types",
    "echo",
)
#: what the huge and the compressed answers would amount to, were they read to the end
HUGE = 4 * 2**30
_CHUNK = 2**20
PLATFORM_NAME = "audience-reconciler"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Platform(Served):
    """The server; ``case`` selects the behaviour (set it per test, or use :meth:`reset`)."""

    case: str = "healthy"
    requests: list[Request] = field(default_factory=list)
    #: bytes of the body sent (``huge``), or produced before compression (``gzip-bomb``)
    sent: int = 0
    _server: socketserver.TCPServer | None = None
    #: one per :meth:`reset`: a connection accepted before it belongs to the test before
    generation: int = 0
    _accepted: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Platform:
        platform = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                generation = platform._accepted.pop(id(self.request), platform.generation)
                try:
                    request = _read_request(self.rfile)
                    if request is None:
                        return
                    if generation == platform.generation:  # not a request the test before
                        platform.requests.append(request)  # left in flight
                    platform.respond(request, self.wfile)
                except OSError:  # the client hung up: the point of most cases
                    return

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

            def get_request(self) -> Any:
                # stamped as it is accepted, before the handler's thread starts (which a busy
                # machine may delay past the next test's reset)
                with platform._lock:
                    request, address = super().get_request()
                    platform._accepted[id(request)] = platform.generation
                return request, address

        server = Server(("127.0.0.1", 0), Handler)
        self._start(server)
        return self

    def reset(self, case: str = "healthy") -> Platform:
        """The next test's platform: its case, and its own request log. A request the test
        before left in flight (a page read beside the one that failed) is answered but not
        logged: its connection was accepted before, or is accepted now, before the log starts."""
        assert case in CASES, case
        deadline = time.monotonic() + 2
        while True:  # a connection still waiting to be accepted is accepted first
            with self._lock:
                listening = [self._server.socket] if self._server is not None else []
                waiting = select.select(listening, [], [], 0)[0]
                if not waiting or time.monotonic() > deadline:
                    self.generation += 1
                    break
            time.sleep(0.005)
        self.case = case
        self.requests.clear()
        self.sent = 0
        return self

    def reads(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(path)]

    # -- answers ------------------------------------------------------------------------
    def respond(self, req: Request, out: Any) -> None:
        if req.method != "GET":
            return self._write(req, out)
        if req.path == "/epsilon/v1/customers":
            return self._list(req, out, "epsilon")
        if req.path == "/talon-mgmt/v1/audiences":
            return self._list(req, out, "talonone")
        if req.path.startswith("/talon-mgmt/v1/audiences/") and req.path.endswith("/export"):
            return _send(out, 200, b"profileintegrationid\nc0001\n", "application/csv")
        return _send(out, 404, b"", "text/plain")

    def _write(self, req: Request, out: Any) -> None:
        if self.case == "echo":
            auth = req.headers.get("authorization", "")
            if req.path.startswith("/epsilon"):
                body: dict[str, object] = {
                    "message": f"invalid credentials: {auth}",
                    "additionalInfo": [{"code": "BAD_KEY", "message": f"check your key ({auth})"}],
                }
                return _send(out, 400, json.dumps(body).encode(), "application/json")
            body = {"StatusCode": 422, "Error": f"check your key ({auth})", "RequestUUID": "u"}
            return _send(out, 422, json.dumps(body).encode(), "application/json")
        if req.path == "/talon/cdp/audiences":
            sent = json.loads(req.body or b"{}")
            created = {
                "id": 7,
                "name": sent.get("audienceName", ""),
                "integrationId": sent.get("audienceId", ""),
                "integration": PLATFORM_NAME,
            }
            return _send(out, 201, json.dumps(created).encode(), "application/json")
        return _send(out, 200, b"{}", "application/json")

    def _list(self, req: Request, out: Any, kind: str) -> None:
        skip = int((req.query.get("skip") or ["0"])[0])
        case = self.case
        if case == "trickle":
            return _trickle(out)
        if case == "huge":
            return self._huge(out, kind)
        if case == "gzip-bomb":
            return self._bomb(out, kind)
        if case == "html":
            page = b"<!doctype html><html><body><h1>Maintenance</h1></body></html>"
            return _send(out, 200, page, "text/html; charset=utf-8")
        if case == "nested":
            return _send(out, 200, b"[" * 100_000 + b"]" * 100_000, "application/json")
        answer = _LISTS[kind](case, skip)
        return _send(out, 200, json.dumps(answer).encode(), "application/json")

    def _huge(self, out: Any, kind: str) -> None:
        """A chunked JSON answer of :data:`HUGE` bytes, produced as it is sent."""
        head, item = _stream_parts(kind)
        out.write(_headers(200, "application/json", chunked=True))
        filler = item * (_CHUNK // len(item))
        for chunk in _bounded((head,), filler):
            out.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sent += len(chunk)

    def _bomb(self, out: Any, kind: str) -> None:
        """:data:`HUGE` bytes of JSON whitespace, gzip-compressed (about 1000:1) as sent."""
        head, _ = _stream_parts(kind)
        out.write(_headers(200, "application/json", chunked=True, gzip=True))
        z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        for plain in _bounded((head,), b" " * _CHUNK):
            chunk = z.compress(plain) + z.flush(zlib.Z_SYNC_FLUSH)
            out.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sent += len(plain)


# -- the list answers of each case ------------------------------------------------------------
def _customers(case: str, skip: int) -> Any:
    if case == "endless":  # always a full page of new customers, past the total it reports
        return {"customers": [_customer(skip + i) for i in range(1000)], "totalCount": 1500}
    if case == "same-page":  # skip ignored: the first page, again and again
        return {"customers": [_customer(i) for i in range(1000)], "totalCount": 5000}
    if case == "missing-id":
        return {
            "customers": [{"id": "c0001", "segmentIds": ["seg-a"]}, {"segmentIds": ["other"]}],
            "totalCount": 2,
        }
    if case == "wrong-types":
        return {"customers": [{"id": 5, "segmentIds": "seg-a"}], "totalCount": "1"}
    return {
        "customers": [{"id": "c0001", "segmentIds": ["other"]}],
        "totalCount": 1,
    }


def _customer(i: int) -> dict[str, Any]:
    return {"id": f"x{i:07d}", "segmentIds": []}


def _audiences(case: str, skip: int) -> Any:
    if case == "endless":
        data = [_audience(skip + i) for i in range(1000)]
        return {"hasMore": True, "totalResultSize": 1500, "data": data}
    if case == "same-page":
        return {
            "hasMore": True,
            "totalResultSize": 5000,
            "data": [_audience(i) for i in range(1000)],
        }
    if case == "missing-id":
        return {
            "hasMore": False,
            "totalResultSize": 1,
            "data": [{"name": "A", "integrationId": "a"}],
        }
    if case == "wrong-types":
        return {"hasMore": "no", "totalResultSize": 1, "data": {"id": "1"}}
    audience = {
        "id": 1,
        "accountId": 1,
        "created": "2026-01-01T00:00:00Z",
        "name": "Alpha",
        "integrationId": "seg-a",
        "integration": PLATFORM_NAME,
    }
    return {"hasMore": False, "totalResultSize": 1, "data": [audience]}


def _audience(i: int) -> dict[str, Any]:
    return {"id": 1000 + i, "name": f"A{i}", "integrationId": f"a{i}"}


_LISTS = {"epsilon": _customers, "talonone": _audiences}


def _stream_parts(kind: str) -> tuple[bytes, bytes]:
    if kind == "epsilon":
        return b'{"totalCount": 1, "customers": [', b'{"id": "c0001", "segmentIds": []},'
    return b'{"hasMore": false, "totalResultSize": 1, "data": [', b'{"id": 1, "name": "A"},'


def _bounded(first: tuple[bytes, ...], filler: bytes) -> Iterator[bytes]:
    yield from first
    for _ in range(HUGE // len(filler)):
        yield filler


# -- HTTP on a raw socket ------------------------------------------------------------------
def _read_request(rfile: Any) -> Request | None:
    line = rfile.readline(65537).decode("latin-1").strip()
    if not line:
        return None
    method, target, _ = line.split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = rfile.readline(65537).decode("latin-1").strip()
        if not raw:
            break
        name, _, value = raw.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rfile.read(int(headers.get("content-length") or 0))
    parts = urllib.parse.urlsplit(target)
    return Request(method, parts.path, urllib.parse.parse_qs(parts.query), headers, body)


def _headers(
    status: int, ctype: str, *, length: int | None = None, chunked: bool = False, gzip: bool = False
) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", f"Content-Type: {ctype}", "Connection: close"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if gzip:
        lines.append("Content-Encoding: gzip")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send(out: Any, status: int, body: bytes, ctype: str) -> None:
    out.write(_headers(status, ctype, length=len(body)) + body)


def _trickle(out: Any) -> None:
    """Headers at once, then the body one byte a second (for ten minutes at most)."""
    body = b'{"customers": [], "totalCount": 0, "data": [], "hasMore": false}' + b" " * 600
    out.write(_headers(200, "application/json", length=len(body)))
    out.flush()
    for i in range(len(body)):
        out.write(body[i : i + 1])
        out.flush()
        time.sleep(1.0)
