"""The settings a target type accepts, declared once beside the provider that reads them.

A provider lists its :class:`Setting` values in ``Provider.settings_spec``: name, JSON Schema of
the value, default, and what the value is (a credential, a path, a URL). The configuration reads
its defaults and field kinds from there, and the JSON Schema's per-type branch of a target is
built from it (:mod:`reconciler.config._targets`), so a platform is declared in one place, inside
or outside this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "Setting",
    "boolean",
    "choice",
    "credential",
    "directory",
    "http_settings",
    "number",
    "text",
    "url",
]

Kind = Literal["value", "credential", "path", "url"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of a target of this type."""

    name: str
    title: str
    description: str
    #: the JSON Schema of the value (a ``default`` here is only documentation for editors)
    schema: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: the value a target that does not write the field gets
    default: Any = None
    required: bool = False
    #: ``credential``: an ``${ENV_VAR}`` reference, read from the environment; ``path``:
    #: resolved against the YAML's folder and confined to it; ``url``: checked, no trailing /
    kind: Kind = "value"


def text(
    name: str,
    title: str,
    description: str,
    *,
    default: str | None = None,
    required: bool = False,
    **schema: Any,
) -> Setting:
    return Setting(name, title, description, {"type": "string", **schema}, default, required)


def number(
    name: str, title: str, description: str, *, default: float | None = None, **schema: Any
) -> Setting:
    return Setting(name, title, description, {"type": "number", **schema}, default)


def boolean(name: str, title: str, description: str, *, default: bool = False) -> Setting:
    return Setting(name, title, description, {"type": "boolean"}, default)


def choice(name: str, title: str, description: str, options: Sequence[str]) -> Setting:
    """One of ``options``; the first is the default."""
    return Setting(name, title, description, {"enum": list(options)}, options[0])


def url(
    name: str,
    title: str,
    description: str,
    *,
    default: str | None = None,
    required: bool = False,
) -> Setting:
    return Setting(name, title, description, {"type": "string"}, default, required, "url")


def credential(name: str, title: str, description: str) -> Setting:
    """A secret: the YAML may only name the environment variable holding it."""
    return Setting(name, title, description, {"type": "string"}, None, True, "credential")


def directory(name: str, title: str, description: str, *, required: bool = True) -> Setting:
    """A folder, relative to the YAML file and confined to its folder unless it says so."""
    return Setting(name, title, description, {}, None, required, "path")


def http_settings(concurrency: int, *, adaptive: bool = False) -> tuple[Setting, ...]:
    """``concurrency`` (its default: the platform's own, ``Capabilities.concurrency``) and
    ``timeout``, the settings of every provider that speaks HTTP through
    :meth:`Provider.http`; ``adaptive``: also ``max_concurrency``, what an apply's writes may
    grow to (by default nothing: the width is fixed)."""
    grow = (
        Setting(
            "max_concurrency",
            "Max concurrency",
            "Most requests in flight at once that an apply's writes may grow to, from "
            "`concurrency`, while the platform answers at its pace (halved on 429, 503, 504 "
            "or a timeout). Unset: fixed at `concurrency`.",
            {"type": "integer", "minimum": 1, "maximum": 256},
            None,
        ),
    )
    return (
        Setting(
            "concurrency",
            "Concurrency",
            "Most requests in flight at once (where an apply's writes start, see "
            "`max_concurrency`).",
            {"type": "integer", "minimum": 1, "maximum": 64},
            concurrency,
        ),
        *(grow if adaptive else ()),
        Setting(
            "timeout",
            "Timeout",
            "Seconds one request may take in all: connecting, the headers and the whole answer "
            "(an attempt past it is retried like a timeout).",
            # None: the retry policy's deadline (30 s by default)
            {"type": "number", "exclusiveMinimum": 0, "default": 30},
            None,
        ),
    )
