"""Routing of the simulated platforms' requests, and the Management API's rate limit.

A route group (a platform's API under its prefix) matches ``METHOD path`` to a route, binding
its ``{name}`` parameters; a path that exists for another method is told apart (405 rather
than 404). The rate limiter is a token bucket per endpoint.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.sandbox._proto import Route

__all__ = ["Compiled", "Group", "RateLimiter", "compile_group"]


@dataclass(frozen=True, slots=True)
class Compiled:
    route: Route
    regex: re.Pattern[str] | None
    template: str


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    prefix: str
    style: str
    static: dict[tuple[str, str], Compiled]
    dynamic: tuple[Compiled, ...]

    def match(self, method: str, path: str) -> tuple[Compiled | None, dict[str, str], bool]:
        """The route for ``method path``, its params, and whether the path exists at all."""
        hit = self.static.get((method, path))
        if hit is not None:
            return hit, {}, True
        exists = any(p == path for (_, p) in self.static)
        for comp in self.dynamic:
            assert comp.regex is not None
            m = comp.regex.fullmatch(path)
            if m is None:
                continue
            if comp.route.method == method:
                return comp, m.groupdict(), True
            exists = True
        return None, {}, exists


def compile_group(name: str, prefix: str, style: str, routes: Sequence[Route]) -> Group:
    static: dict[tuple[str, str], Compiled] = {}
    dynamic: list[Compiled] = []
    for route in routes:
        template = f"{route.method} {prefix}{route.template}"
        if "{" not in route.template:
            static[(route.method, route.template)] = Compiled(route, None, template)
            continue
        pattern = ""
        for part in re.split(r"(\{\w+\})", route.template):
            if part.startswith("{"):
                pattern += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                pattern += re.escape(part)
        dynamic.append(Compiled(route, re.compile(pattern), template))
    return Group(name, prefix, style, static, tuple(dynamic))


class RateLimiter:
    """A token bucket per endpoint: ``rate`` requests a second, bursts up to ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.rate = rate
            self._buckets.clear()

    def acquire(self, key: str) -> int:
        """0 when allowed, else the seconds to wait (for ``Retry-After``)."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        cap = max(1.0, self.rate)
        with self._lock:
            tokens, last = self._buckets.get(key, (cap, now))
            tokens = min(cap, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
