"""A tiny JSON server on 127.0.0.1 for provider tests: a function answers each request, and the
server counts the requests in flight (the most at once is what a concurrency setting bounds)."""

from __future__ import annotations

import json
import socketserver
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


#: (call) → (status, JSON body)
Answer = Callable[[Call], tuple[int, Any]]


class Served:
    """A test server on 127.0.0.1 answering from daemon threads: ``_start`` it in
    ``__enter__``; leaving the ``with`` block stops it."""

    _server: socketserver.TCPServer | None

    def _start(self, server: socketserver.TCPServer) -> None:
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class Loopback(Served):
    """``with Loopback(answer) as server:`` serves ``answer`` at ``server.url``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[Call] = []
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()
        self._server = None

    def __enter__(self) -> Loopback:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urllib.parse.urlsplit(self.path)
                call = Call(
                    self.command,
                    split.path,
                    urllib.parse.parse_qs(split.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                with loopback.lock:
                    loopback.calls.append(call)
                    loopback.in_flight += 1
                    loopback.peak = max(loopback.peak, loopback.in_flight)
                try:
                    status, body = loopback.answer(call)
                finally:
                    with loopback.lock:
                        loopback.in_flight -= 1
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    return

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._start(server)
        return self
