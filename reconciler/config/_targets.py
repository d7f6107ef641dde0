"""Target types, read from the providers' own declarations (``Provider.settings_spec``).

The registry (:func:`target_type`) and the JSON Schema's per-type branches (:func:`branch`) are
both built from the declaration, so they cannot disagree. The shipped schema file holds the
branches of the built-in types, for editors; :func:`target_def` rebuilds them and a test fails
when the file is stale (``python -m reconciler.config._targets`` writes it again). A type named
by dotted path gets its branch built at load time from its own declaration.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..providers import PROVIDER_MODULES, provider_class
from ..providers.settings import Setting
from ._secrets import SECRET_PATTERN

__all__ = ["GUARDS", "TARGET_TYPES", "TargetType", "branch", "target_def", "target_type"]

_URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$"
_CREDENTIAL_NOTE = (
    " Only a reference is accepted: `${NAME}` (an environment variable) or `${file:PATH}` (a "
    "file holding the secret, such as a mounted Docker or Kubernetes secret; PATH relative to "
    "this YAML file or absolute; a trailing newline is trimmed); a literal value is an error."
)
_PATH_NOTE = (
    ", relative to this YAML file; it must resolve inside this YAML file's folder (symlinks "
    "followed), unless written `{path: ..., outside_config_dir: true}`."
)


@dataclass(frozen=True, slots=True)
class TargetType:
    """What a target type accepts: settings with their defaults, and credential fields."""

    name: str
    settings: Mapping[str, Any]
    credentials: tuple[str, ...]
    #: settings that are paths, resolved relative to the YAML file
    paths: tuple[str, ...] = ()
    #: settings that are http(s) URLs (checked; stored without a trailing slash)
    urls: tuple[str, ...] = ()


@functools.cache
def target_type(name: str) -> TargetType:
    """The target type ``name`` (built-in or ``module:Class``), from its provider's declaration
    (:class:`~reconciler.exceptions.ConfigError` when it names no provider)."""
    spec = provider_class(name).settings_spec
    plain = [s for s in spec if s.kind != "credential"]
    return TargetType(
        name,
        MappingProxyType({s.name: s.default for s in plain}),
        tuple(s.name for s in spec if s.kind == "credential"),
        paths=tuple(s.name for s in spec if s.kind == "path"),
        urls=tuple(s.name for s in spec if s.kind == "url"),
    )


class _Registry(Mapping[str, TargetType]):
    """The built-in target types, each read from its provider module on first use."""

    def __getitem__(self, name: str) -> TargetType:
        if name not in PROVIDER_MODULES:
            raise KeyError(name)
        return target_type(name)

    def __iter__(self) -> Any:
        return iter(PROVIDER_MODULES)

    def __len__(self) -> int:
        return len(PROVIDER_MODULES)


#: The built-in target types (the schema's ``type`` enum lists exactly these).
TARGET_TYPES: Mapping[str, TargetType] = _Registry()

# -- the JSON Schema ------------------------------------------------------------------------
#: ``$defs/guards``: a segment's guards (a target's ``safety.guards`` sets its segments' defaults)
GUARDS: dict[str, Any] = {
    "title": "Segment guards",
    "description": "What a plan may do to one segment's members before apply refuses it "
    "without --force (and `reconcile plan` exits 1). On a target (`safety.guards`): the default "
    "of each of its segments; on a segment: its own, over the defaults (only the settings it "
    "names). Raising one on a segment is how a pull request accepts an intended large change.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_removed_share": {
            "title": "Maximum removed share",
            "description": "Largest share (0..1) of the segment's members before the plan that "
            "may leave it; null: no limit.",
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": 1,
            "default": 0.3,
        },
        "max_growth_share": {
            "title": "Maximum growth share",
            "description": "Largest net growth of the segment, as a share of its members before "
            "the plan (1: it may double); null: no limit.",
            "type": ["number", "null"],
            "minimum": 0,
            "default": None,
        },
        "min_members": {
            "title": "Minimum members",
            "description": "Fewest members a segment that changes may have after the plan "
            "(platforms refuse or cannot target tiny audiences); null: no minimum.",
            "type": ["integer", "null"],
            "minimum": 0,
            "default": None,
        },
        "min_existing": {
            "title": "Minimum existing members",
            "description": "The two share guards apply only to a segment that had at least this "
            "many members before the plan.",
            "type": "integer",
            "minimum": 0,
            "default": 100,
        },
    },
}

_COMMON: dict[str, Any] = {
    "prune": {
        "title": "Prune",
        "description": "Delete remote segments that the config does not declare (default "
        "false: they are reported as unmanaged and left alone).",
        "type": "boolean",
        "default": False,
    },
    "prune_prefix": {
        "title": "Prune prefix",
        "description": "With `prune: true`, only prune remote segments whose id starts with "
        "this prefix.",
        "type": ["string", "null"],
        "default": None,
    },
    "safety": {
        "title": "Safety thresholds",
        "description": "Limits on how much a plan may remove before it needs --force, and the "
        "default guards of this target's segments.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_delete_share": {
                "title": "Maximum delete share",
                "description": "Largest share (0..1) of existing links or segments a plan may "
                "remove without --force.",
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.3,
            },
            "min_existing": {
                "title": "Minimum existing",
                "description": "The share threshold applies only when at least this many items "
                "exist.",
                "type": "integer",
                "minimum": 0,
                "default": 10,
            },
            "guards": GUARDS,
        },
    },
}


def _path_schema(setting: Setting) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "required": ["path"],
                "additionalProperties": False,
                "properties": {
                    "path": {
                        "title": "Path",
                        "description": f"The {setting.title.lower()}, relative to this YAML file.",
                        "type": "string",
                        "minLength": 1,
                    },
                    "outside_config_dir": {
                        "title": "Outside the config's folder",
                        "description": "true: this path may lead outside the folder of this "
                        "YAML file (an absolute path, `..`, or a symlink out of it). Without it "
                        "such a path is an error, so that a config cannot read (and show in a "
                        "plan) or write files elsewhere on the machine unless it says so where "
                        "a reviewer sees it.",
                        "type": "boolean",
                        "default": False,
                    },
                },
            },
        ]
    }


def _property(setting: Setting) -> dict[str, Any]:
    out: dict[str, Any] = {"title": setting.title, "description": setting.description}
    if setting.kind == "credential":
        out["description"] += _CREDENTIAL_NOTE
        out |= {"type": "string", "pattern": SECRET_PATTERN}
    elif setting.kind == "path":
        out["description"] += _PATH_NOTE
        out |= _path_schema(setting)
    elif setting.kind == "url":
        out |= {"type": "string", "pattern": _URL_PATTERN}
    out |= setting.schema
    if "default" not in out and setting.default is not None:
        out["default"] = setting.default
    return out


def _type_property(names: list[str]) -> dict[str, Any]:
    described = ", ".join(f"`{n}` ({provider_class(n).title})" for n in names)
    return {
        "title": "Target type",
        "description": f"Which platform this target talks to: {described}; or "
        "`package.module:Class`, a provider outside this package.",
        "enum": names,
    }


def branch(name: str, type_property: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema a target of type ``name`` must match (self-contained: no ``$ref``)."""
    spec = provider_class(name).settings_spec
    kind = type_property or {"title": "Target type", "description": "The provider class."}
    properties = {"type": dict(kind), **_COMMON, **{s.name: _property(s) for s in spec}}
    return {
        "properties": properties,
        "required": ["type", *(s.name for s in spec if s.required)],
        "additionalProperties": False,
    }


def target_def() -> dict[str, Any]:
    """``$defs/target`` of the shipped schema: the built-in types and their branches."""
    names = list(PROVIDER_MODULES)
    kind = _type_property(names)
    return {
        "title": "Target",
        "description": "A platform the segments are pushed to. The other fields depend on `type`.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": kind},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": n}}, "required": ["type"]},
                "then": branch(n, kind),
            }
            for n in names
        ],
    }


def _write(path: Path) -> bool:
    """Write ``path`` (the schema file) with :func:`target_def`; True when it changed."""
    old = path.read_text(encoding="utf-8")
    data = json.loads(old)
    data["$defs"]["target"] = target_def()
    data["$defs"]["guards"] = GUARDS
    new = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


if __name__ == "__main__":
    schema_file = Path(__file__).parent.parent / "schemas" / "audiences.schema.json"
    print(f"{schema_file.name}: {'rewritten' if _write(schema_file) else 'up to date'}")
    sys.exit(0)
