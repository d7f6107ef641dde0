"""Small HTTP values shared by the simulated platforms: request, response, API error, validators.

Handlers are plain synchronous functions ``(Request, tables) -> Response``, ``tables`` being
their platform's (the sandbox's :class:`~reconciler.sandbox._store.Store` is every platform's);
they raise :class:`ApiError` for every refusal, and the app renders it in the platform's own
error shape. This module imports no other of the sandbox.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "Handler",
    "Request",
    "Response",
    "Route",
    "as_bool_param",
    "as_int_list",
    "as_int_param",
    "as_object",
    "as_str",
    "as_str_list",
    "json_response",
]

JSON = Any


class ApiError(Exception):
    """A refusal: HTTP ``status`` with a human ``message`` and a machine ``code``."""

    def __init__(self, status: int, message: str = "", code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "ERROR")
        self.headers: list[tuple[bytes, bytes]] = []


_DEFAULT_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
}


@dataclass(slots=True)
class Request:
    """One parsed HTTP request; ``path`` is relative to the route group's prefix."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    request_id: int = 0

    def json(self) -> JSON:
        if not self.body:
            raise ApiError(400, "request body is required", "INVALID_ARGUMENT")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"malformed JSON body: {exc}", "INVALID_JSON") from exc

    def json_object(self) -> dict[str, JSON]:
        return as_object(self.json(), "body")

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise ApiError(400, f"query parameter {name!r} given more than once")
        return values[0]

    @property
    def uuid(self) -> str:
        """A RequestUUID derived from the request's log id (deterministic)."""
        return str(uuid.UUID(int=self.request_id, version=4))


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


#: a route's handler: the request and its platform's tables (any: each platform has its own)
Handler = Callable[[Request, Any], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """One platform operation: ``template`` is relative to the group prefix, ``{name}`` binds."""

    method: str
    template: str
    handler: Handler
    auth: str
    rate_limited: bool = False


def json_response(data: JSON, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json")


def _type_name(value: JSON) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def as_object(
    value: JSON,
    where: str,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    *,
    open_keys: bool = False,
) -> dict[str, JSON]:
    """Check ``value`` is an object with every ``required`` key and no key beyond ``optional``."""
    if not isinstance(value, dict):
        raise ApiError(400, f"{where}: expected an object, got {_type_name(value)}", "INVALID_TYPE")
    for key in required:
        if key not in value:
            raise ApiError(400, f"{where}.{key}: required field missing", "MISSING_FIELD")
    if not open_keys:
        allowed = set(required) | set(optional)
        for key in value:
            if key not in allowed:
                raise ApiError(400, f"{where}.{key}: unknown field", "UNKNOWN_FIELD")
    return value


def as_str(value: JSON, where: str, *, min_len: int = 1, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{where}: expected a string, got {_type_name(value)}", "INVALID_TYPE")
    if len(value) < min_len:
        raise ApiError(400, f"{where}: must be at least {min_len} character(s)", "INVALID_LENGTH")
    if max_len is not None and len(value) > max_len:
        raise ApiError(400, f"{where}: must be at most {max_len} characters", "INVALID_LENGTH")
    return value


def as_str_list(
    value: JSON, where: str, *, check: Callable[[str, str], str] | None = None
) -> list[str]:
    if not isinstance(value, list):
        raise ApiError(400, f"{where}: expected an array, got {_type_name(value)}", "INVALID_TYPE")
    out: list[str] = []
    for i, item in enumerate(value):
        text = as_str(item, f"{where}[{i}]")
        out.append(check(text, f"{where}[{i}]") if check else text)
    return out


def as_int_list(value: JSON, where: str) -> list[int]:
    if not isinstance(value, list):
        raise ApiError(400, f"{where}: expected an array, got {_type_name(value)}", "INVALID_TYPE")
    out: list[int] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise ApiError(
                400, f"{where}[{i}]: expected an integer, got {_type_name(item)}", "INVALID_TYPE"
            )
        out.append(item)
    return out


def as_int_param(
    query: Mapping[str, list[str]], name: str, default: int, lo: int, hi: int | None = None
) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ApiError(400, f"query parameter {name!r} given more than once")
    try:
        number = int(values[0])
    except ValueError as exc:
        raise ApiError(400, f"query parameter {name!r} must be an integer") from exc
    if number < lo or (hi is not None and number > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ApiError(400, f"query parameter {name!r} must be {bound}")
    return number


def as_bool_param(query: Mapping[str, list[str]], name: str, default: bool = False) -> bool:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ApiError(400, f"query parameter {name!r} given more than once")
    text = values[0].lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false")
