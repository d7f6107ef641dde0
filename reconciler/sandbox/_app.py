"""The ASGI application: three platform route groups under prefixes, plus ``/_sandbox/``.

The platforms' routes, authentication and error shapes come from their own modules
(:mod:`~reconciler.sandbox._epsilon`, :mod:`~reconciler.sandbox._talonone`); this is what they
share: the request log, fault injection and the inspection routes (routing and the rate limit
are in :mod:`~reconciler.sandbox._routing`).

Per platform request, in order: log id, fault decision (a gateway fault wins over everything),
route match (404/405), authentication (401; the CDP's two required headers then 400), the
Management API rate limit (429 with ``Retry-After``), then the handler. Inspection routes under
``/_sandbox/`` are never logged, faulted or rate limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

from reconciler.exceptions import SandboxError
from reconciler.sandbox import _epsilon, _talonone
from reconciler.sandbox._epsilon import EPSILON_API_KEY, EPSILON_BEARER_TOKEN
from reconciler.sandbox._faults import FaultInjector, FaultRule, format_fault_spec, rules_from_json
from reconciler.sandbox._proto import ApiError, Request, Response, json_response
from reconciler.sandbox._routing import Group, RateLimiter, compile_group
from reconciler.sandbox._store import Store
from reconciler.sandbox._talonone import TALONONE_API_KEY, TALONONE_MANAGEMENT_KEY

__all__ = ["Credentials", "SandboxApp"]

#: every route's authentication scheme → (error shape, header prefix, credentials field)
_AUTH = {**_epsilon.AUTH, **_talonone.AUTH}
#: error shape → its renderer
_RENDER: dict[str, Callable[[ApiError, str], Response]] = {
    "epsilon": _epsilon.render_error,
    "cdp": _talonone.render_cdp_error,
    "management": _talonone.render_management_error,
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST_LOG_SIZE = 200_000
_CDP_HEADERS = ("customer-data-platform-name", "destination-hostname")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The four secrets the sandbox accepts."""

    epsilon_bearer_token: str = EPSILON_BEARER_TOKEN
    epsilon_api_key: str = EPSILON_API_KEY
    talonone_api_key: str = TALONONE_API_KEY
    talonone_management_key: str = TALONONE_MANAGEMENT_KEY

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def expected(self, auth: str) -> str:
        _, prefix, name = _AUTH[auth]
        return f"{prefix} {getattr(self, name)}"


def _style_of(auth: str) -> str:
    return _AUTH[auth][0]


def render_error(style: str, err: ApiError, request_uuid: str) -> Response:
    resp = _RENDER[style](err, request_uuid)
    resp.headers.extend(err.headers)
    return resp


class _Dropped(Exception):
    """Raised only when the server offers no transport to abort (uvicorn then answers 500)."""


_LOG_FIELDS = (
    "id",
    "time",
    "method",
    "path",
    "query",
    "status",
    "latency_ms",
    "group",
    "route",
    "fault",
)


class SandboxApp:
    """The whole sandbox as one ASGI 3 callable."""

    def __init__(
        self,
        store: Store,
        credentials: Credentials | None = None,
        faults: Sequence[FaultRule] = (),
        talonone_rate_limit: float = 3.0,
    ) -> None:
        self.store = store
        self.credentials = credentials or Credentials()
        self.faults = FaultInjector(faults)
        self.default_rate_limit = talonone_rate_limit
        self.rate_limiter = RateLimiter(talonone_rate_limit)
        self._log: deque[tuple[Any, ...]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._next_id = 0
        self._id_lock = threading.Lock()
        #: requests up to this id started before the log was last cleared: one still being
        #: answered then (a client gone, a delay running out) is not logged after it
        self._cleared_at = 0
        self.groups = (
            compile_group(
                "talonone-mgmt", "/talonone-mgmt", "management", _talonone.MANAGEMENT_ROUTES
            ),
            compile_group(
                "talonone",
                "/talonone",
                "cdp",
                (*_talonone.CDP_ROUTES, *_talonone.INTEGRATION_ROUTES),
            ),
            compile_group("epsilon", "/epsilon", "epsilon", _epsilon.ROUTES),
        )

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:  # the client left before its body ended: no platform sees that
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            await _send(send, self._inspect(scope["method"], path, scope, body))
            return
        await self._platform(scope, body, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _new_id(self) -> int:
        with self._id_lock:
            self._next_id += 1
            return self._next_id

    async def _platform(self, scope: Scope, body: bytes, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        full_path: str = scope["path"]
        query_text = scope.get("query_string", b"").decode("utf-8", "replace")
        rid = self._new_id()
        group = next(
            (
                g
                for g in self.groups
                if full_path == g.prefix or full_path.startswith(g.prefix + "/")
            ),
            None,
        )
        fault = self.faults.pick(method, full_path)
        kind = fault.kinds[0] if fault else None
        route_name = ""
        if group is None:
            resp = Response(404, b"not found", "text/plain; charset=utf-8")
        else:
            path = full_path[len(group.prefix) :] or "/"
            req = Request(
                method=method,
                path=path,
                query=parse_qs(query_text, keep_blank_values=True),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                },
                body=body,
                request_id=rid,
            )
            style = group.style
            if kind in ("429", "500", "502", "503"):
                assert fault is not None
                err = ApiError(int(kind), "" if group.style == "epsilon" else "injected fault")
                if kind == "429":
                    err.headers.append((b"retry-after", str(fault.retry_after).encode()))
                resp = render_error(style, err, req.uuid)
            elif kind == "drop":
                self._record(rid, method, full_path, query_text, 0, started, group.name, "", kind)
                await _drop(send)
                return
            else:
                resp, route_name = self._dispatch(group, req)
            if kind == "applied500":
                resp = render_error(
                    style,
                    ApiError(500, "" if style == "epsilon" else "injected fault after apply"),
                    req.uuid,
                )
            elif kind in ("timeout", "latency"):
                assert fault is not None
                await asyncio.sleep(fault.delay)
        self._record(
            rid,
            method,
            full_path,
            query_text,
            resp.status,
            started,
            group.name if group else "",
            route_name,
            kind,
        )
        with contextlib.suppress(OSError):  # the client gave up (e.g. an injected timeout)
            await _send(send, resp)

    def _dispatch(self, group: Group, req: Request) -> tuple[Response, str]:
        comp, params, exists = group.match(req.method, req.path)
        if comp is None:
            status = 405 if exists else 404
            text = "method not allowed" if exists else f"no such endpoint: {req.path}"
            return render_error(group.style, ApiError(status, text), req.uuid), ""
        route = comp.route
        style = _style_of(route.auth)
        req.params = params
        try:
            if req.headers.get("authorization") != self.credentials.expected(route.auth):
                raise ApiError(401, "unauthorized")
            if route.auth == "cdp":
                for name in _CDP_HEADERS:
                    if not req.headers.get(name):
                        raise ApiError(400, f"missing required header {name!r}", "MISSING_HEADER")
            if route.rate_limited:
                wait = self.rate_limiter.acquire(comp.template)
                if wait:
                    err = ApiError(429, "rate limit exceeded")
                    err.headers.append((b"retry-after", str(wait).encode()))
                    raise err
            return route.handler(req, self.store), comp.template
        except ApiError as err:
            return render_error(style, err, req.uuid), comp.template

    def _record(
        self,
        rid: int,
        method: str,
        path: str,
        query: str,
        status: int,
        started: float,
        group: str,
        route: str,
        fault: str | None,
    ) -> None:
        if rid <= self._cleared_at:
            return
        latency = round((time.perf_counter() - started) * 1000.0, 3)
        self._log.append(
            (rid, time.time(), method, path, query, status, latency, group, route, fault)
        )

    # ------------------------------------------------------------------ inspection
    def requests(
        self, since: int = 0, method: str | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for entry in list(self._log):
            if entry[0] <= since:
                continue
            if method is not None and entry[2] != method.upper():
                continue
            if group is not None and entry[7] != group:
                continue
            out.append(dict(zip(_LOG_FIELDS, entry, strict=True)))
        return out

    def _clear_log(self) -> None:
        with self._id_lock:
            self._cleared_at = self._next_id
        self._log.clear()

    def reset(self) -> None:
        self.store.reset()
        self._clear_log()
        self.faults.set_rules(())
        self.rate_limiter.set_rate(self.default_rate_limit)

    def _inspect(self, method: str, path: str, scope: Scope, body: bytes) -> Response:
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        key = (method, path.rstrip("/"))
        try:
            if key == ("GET", "/_sandbox/health"):
                return json_response({"ok": True})
            if key == ("GET", "/_sandbox/state"):
                return json_response(self.store.state())
            if key == ("GET", "/_sandbox/requests"):
                since = int(query.get("since", ["0"])[0])
                return json_response(
                    {
                        "requests": self.requests(
                            since, query.get("method", [None])[0], query.get("group", [None])[0]
                        )
                    }
                )
            if key == ("DELETE", "/_sandbox/requests"):
                self._clear_log()
                return Response(204)
            if key == ("GET", "/_sandbox/faults"):
                return self._faults_response()
            if key == ("PUT", "/_sandbox/faults"):
                self.faults.set_rules(rules_from_json(json.loads(body or b"[]")))
                return self._faults_response()
            if key == ("DELETE", "/_sandbox/faults"):
                self.faults.set_rules(())
                return Response(204)
            if key == ("GET", "/_sandbox/config"):
                return json_response({"talonone_rate_limit": self.rate_limiter.rate})
            if key == ("PUT", "/_sandbox/config"):
                data = json.loads(body or b"{}")
                if not isinstance(data, dict) or set(data) - {"talonone_rate_limit"}:
                    raise ValueError('expected {"talonone_rate_limit": number}')
                if "talonone_rate_limit" in data:
                    self.rate_limiter.set_rate(float(data["talonone_rate_limit"]))
                return json_response({"talonone_rate_limit": self.rate_limiter.rate})
            if key == ("POST", "/_sandbox/reset"):
                self.reset()
                return Response(204)
            if key == ("POST", "/_sandbox/seed"):
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("seed data must be an object")
                self.store.seed(data, _epsilon.EPSILON_RETAILER_TEAM_ID)
                return Response(204)
        except (SandboxError, ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"error": f"no inspection route {method} {path}"}, 404)

    def _faults_response(self) -> Response:
        rules = self.faults.rules
        return json_response(
            {"rules": [r.as_dict() for r in rules], "spec": format_fault_spec(rules)}
        )


async def _read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None when the client disconnected before it ended (a process
    killed between its headers and its body: a platform answers nothing it did not receive)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, resp: Response) -> None:
    headers = list(resp.headers)
    if resp.content_type:
        headers.append((b"content-type", resp.content_type.encode()))
    headers.append((b"content-length", str(len(resp.body)).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": resp.body})


async def _drop(send: Send) -> None:
    """Close the connection without a response: abort uvicorn's transport under ``send``."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is None:
        raise _Dropped
    transport.abort()
    # Let the loop deliver connection_lost, so the server sees a disconnected client and does
    # not try to answer on our behalf.
    await asyncio.sleep(0.01)
