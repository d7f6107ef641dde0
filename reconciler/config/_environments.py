"""Environments: one config, several deployments of it (staging, production), each overriding
some settings and credential references of its targets.

::

    environments:
      staging:
        targets:
          eps: {base_url: https://staging.example, bearer_token: "${STAGING_EPS_TOKEN}"}

An environment is chosen when the config is loaded (``reconcile ... --env staging``, or
``RECONCILE_ENV``): its overrides replace the target's fields of the same name (a whole
``safety`` block, not part of it), and the result is validated as if it were written there,
each value located where the environment writes it. A config that declares environments is
only loaded with one of them chosen, so a command never runs against the base by accident.
The chosen name is part of the config's digest: a plan made for staging is stale for
production.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..exceptions import ConfigError, Problem
from ._locations import Document, Locations, NodePath, format_path

__all__ = ["ENV_VAR", "declared", "select"]

#: the environment variable that chooses an environment when ``--env`` is not given
ENV_VAR = "RECONCILE_ENV"


def declared(doc: Document) -> tuple[str, ...]:
    """The environments ``doc`` declares, in the order written (none: empty)."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    envs = data.get("environments")
    return tuple(str(name) for name in envs) if isinstance(envs, Mapping) else ()


def _problem(doc: Document, path: NodePath, message: str, *, key: bool = False) -> Problem:
    line, col = doc.locations.key(path) if key else doc.locations.of(path)
    return Problem(str(doc.path), line, col, format_path(path), message)


def select(doc: Document, env: str | None) -> Document:
    """``doc`` with environment ``env``'s overrides applied to its targets (``doc`` itself when
    it declares none and none is asked for); a located :class:`ConfigError` when ``env`` is
    not declared, or none is chosen in a config that declares some."""
    names = declared(doc)
    if not env:  # an empty RECONCILE_ENV chooses none
        if names:
            raise ConfigError(
                [
                    _problem(
                        doc,
                        ("environments",),
                        f"this config declares environments ({', '.join(names)}): choose one "
                        f"with --env NAME (or {ENV_VAR})",
                        key=True,
                    )
                ]
            )
        return doc
    if env not in names:
        known = f"declared: {', '.join(names)}" if names else "this config declares none"
        path: NodePath = ("environments",) if names else ()
        raise ConfigError([_problem(doc, path, f"no environment {env!r} ({known})", key=True)])
    problems: list[Problem] = []
    data, locations = _merged(doc, env, problems)
    if problems:
        raise ConfigError(problems)
    # the digest covers the environment chosen (see the module's docstring)
    raw = doc.raw + b"\0environment\0" + env.encode()
    return dataclasses.replace(doc, data=data, locations=locations, raw=raw)


def _merged(doc: Document, env: str, problems: list[Problem]) -> tuple[Any, Locations]:
    """The document's data and locations with ``env``'s target overrides in place."""
    data = dict(doc.data)
    values = dict(doc.locations.values)
    keys = dict(doc.locations.keys)
    block = data["environments"][env]
    overrides = block.get("targets") if isinstance(block, Mapping) else None
    if not isinstance(overrides, Mapping):
        return data, doc.locations  # the schema reports a malformed environment
    targets = dict(data["targets"]) if isinstance(data.get("targets"), Mapping) else {}
    for name, fields in overrides.items():
        at: NodePath = ("environments", env, "targets", name)
        if name not in targets:
            known = ", ".join(map(str, targets)) or "none"
            message = f"no target {name!r} to override (known: {known})"
            problems.append(_problem(doc, at, message, key=True))
            continue
        if not isinstance(fields, Mapping) or not isinstance(targets[name], Mapping):
            continue  # the schema reports it
        if "type" in fields and fields["type"] != targets[name].get("type"):
            problems.append(
                _problem(doc, (*at, "type"), "an environment cannot change a target's type")
            )
            continue
        targets[name] = {**targets[name], **fields}
        for where in (values, keys):
            _move(where, ("targets", name), at, frozenset(fields))
    data["targets"] = targets
    return data, Locations(MappingProxyType(values), MappingProxyType(keys))


def _move(
    where: dict[NodePath, tuple[int, int]],
    base: NodePath,
    override: NodePath,
    fields: frozenset[Any],
) -> None:
    """Locate the ``fields`` of the target at ``base`` (and what is under them) where the
    environment at ``override`` writes them instead (one pass over the locations)."""
    n, m = len(base), len(override)
    moved: dict[NodePath, tuple[int, int]] = {}
    for path, mark in list(where.items()):
        if len(path) > n and path[:n] == base and path[n] in fields:
            del where[path]
        elif len(path) > m and path[:m] == override:
            moved[(*base, *path[m:])] = mark
    where.update(moved)
