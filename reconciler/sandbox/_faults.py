"""Seeded, per-route fault injection.

A rule matches requests by a glob on ``"METHOD /path"`` (the full path, prefix included, no
query). For the k-th request (k = 0, 1, ...) on one exact ``"METHOD /path"`` matched by rule r,
the decision is a pure function of ``(rule.seed, "METHOD /path", k)``: a BLAKE2b digest whose first
8 bytes give a uniform number u in [0, 1) (fault when ``u < rate``) and whose next 8 bytes pick the
kind. The same seed and the same request sequence therefore give the same faults. The first
matching rule decides; a rule with ``limit`` stops injecting after that many faults.

Spec syntax (CLI ``--faults``): rules separated by ``;``, fields by ``,``::

    seed=7,rate=0.2,kinds=429+500+applied500,route=POST /epsilon/v1/customers*
    rate=1,kinds=timeout,delay=2.5,route=GET /talonone-mgmt/*;rate=0.1,kinds=drop

Kinds: ``429`` (with ``Retry-After``), ``500``, ``502``, ``503``, ``timeout`` (the request is
performed, then the answer waits ``delay`` seconds), ``drop`` (the connection is closed without a
response; nothing is performed), ``applied500`` (the request is performed, then answers 500),
``latency`` (like ``timeout``, for a ``delay`` below the client's timeout: a network round
trip, e.g. ``rate=1,kinds=latency,delay=0.02`` for 20 ms on every request; not an error).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from reconciler.exceptions import SandboxError

__all__ = [
    "FAULT_KINDS",
    "FaultInjector",
    "FaultRule",
    "format_fault_spec",
    "parse_fault_spec",
    "rules_from_json",
]

FAULT_KINDS = ("429", "500", "502", "503", "timeout", "drop", "applied500", "latency")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault rule; see the module docstring for the semantics."""

    route: str = "*"
    rate: float = 0.0
    kinds: tuple[str, ...] = ("500",)
    seed: int = 0
    delay: float = 1.0
    retry_after: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise SandboxError(f"fault rate must be within 0..1, got {self.rate}")
        if not self.kinds:
            raise SandboxError("a fault rule needs at least one kind")
        for kind in self.kinds:
            if kind not in FAULT_KINDS:
                raise SandboxError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.delay < 0 or self.retry_after < 0:
            raise SandboxError("fault delay and retry_after must not be negative")
        if self.limit is not None and self.limit < 0:
            raise SandboxError("fault limit must not be negative")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kinds"] = list(self.kinds)
        return data

    def spec(self) -> str:
        parts = [
            f"seed={self.seed}",
            f"rate={self.rate:g}",
            f"kinds={'+'.join(self.kinds)}",
        ]
        if self.delay != 1.0:
            parts.append(f"delay={self.delay:g}")
        if self.retry_after != 1:
            parts.append(f"retry_after={self.retry_after}")
        if self.limit is not None:
            parts.append(f"limit={self.limit}")
        parts.append(f"route={self.route}")
        return ",".join(parts)


def _rule_from_fields(fields: Mapping[str, Any], where: str) -> FaultRule:
    known = {"route", "rate", "kinds", "seed", "delay", "retry_after", "limit"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise SandboxError(f"{where}: unknown fault field(s): {', '.join(unknown)}")
    try:
        kinds_raw = fields.get("kinds", ("500",))
        if isinstance(kinds_raw, str):
            kinds = tuple(k.strip() for k in kinds_raw.split("+") if k.strip())
        else:
            kinds = tuple(str(k) for k in kinds_raw)
        limit = fields.get("limit")
        return FaultRule(
            route=str(fields.get("route", "*")),
            rate=float(fields.get("rate", 0.0)),
            kinds=kinds,
            seed=int(fields.get("seed", 0)),
            delay=float(fields.get("delay", 1.0)),
            retry_after=int(fields.get("retry_after", 1)),
            limit=None if limit is None else int(limit),
        )
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"{where}: invalid fault rule: {exc}") from exc


def parse_fault_spec(spec: str) -> tuple[FaultRule, ...]:
    """Parse ``"seed=7,rate=0.2,kinds=429+500,route=POST /epsilon/*; ..."``."""
    rules: list[FaultRule] = []
    for n, chunk in enumerate(spec.split(";"), start=1):
        if not chunk.strip():
            continue
        fields: dict[str, str] = {}
        for part in chunk.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise SandboxError(f"fault rule {n}: expected key=value, got {part.strip()!r}")
            fields[key.strip()] = value.strip()
        rules.append(_rule_from_fields(fields, f"fault rule {n}"))
    return tuple(rules)


def format_fault_spec(rules: Iterable[FaultRule]) -> str:
    return ";".join(rule.spec() for rule in rules)


def rules_from_json(data: Any) -> tuple[FaultRule, ...]:
    """Rules from ``{"rules": [...]}``, a list of rule objects, or ``{"spec": "..."}``."""
    if isinstance(data, dict) and "spec" in data and len(data) == 1:
        return parse_fault_spec(str(data["spec"]))
    if isinstance(data, dict) and set(data) <= {"rules"}:
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise SandboxError('faults: expected {"rules": [...]}, {"spec": "..."} or a list')
    out: list[FaultRule] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise SandboxError(f"faults.rules[{i}]: expected an object")
        out.append(_rule_from_fields(item, f"faults.rules[{i}]"))
    return tuple(out)


@dataclass(slots=True)
class _RuleState:
    rule: FaultRule
    counters: dict[str, int] = field(default_factory=dict)
    injected: int = 0


def decide(seed: int, key: str, k: int, rate: float, kinds: Sequence[str]) -> str | None:
    """The pure decision function: the kind for the k-th request on ``key``, or None."""
    digest = hashlib.blake2b(f"{seed}\x00{key}\x00{k}".encode(), digest_size=16).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u >= rate:
        return None
    return kinds[int.from_bytes(digest[8:], "big") % len(kinds)]


class FaultInjector:
    """Holds the active rules and their per-route counters (thread-safe)."""

    def __init__(self, rules: Sequence[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._states = [_RuleState(r) for r in rules]

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(s.rule for s in self._states)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        with self._lock:
            self._states = [_RuleState(r) for r in rules]

    def reset_counters(self) -> None:
        with self._lock:
            self._states = [_RuleState(s.rule) for s in self._states]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """Count this request and return the rule that faults it, with ``kinds`` = (kind,)."""
        if not self._states:
            return None
        key = f"{method} {path}"
        with self._lock:
            for state in self._states:
                rule = state.rule
                if not fnmatchcase(key, rule.route):
                    continue
                k = state.counters.get(key, 0)
                state.counters[key] = k + 1
                if rule.limit is not None and state.injected >= rule.limit:
                    return None
                kind = decide(rule.seed, key, k, rule.rate, rule.kinds)
                if kind is None:
                    return None
                state.injected += 1
                return FaultRule(
                    route=rule.route,
                    rate=rule.rate,
                    kinds=(kind,),
                    seed=rule.seed,
                    delay=rule.delay,
                    retry_after=rule.retry_after,
                    limit=rule.limit,
                )
        return None
