"""Where each node of a YAML document is: node paths, their ``line:column``, and the parsed
:class:`Document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yaml.nodes import Node

from ..exceptions import Problem

__all__ = ["Document", "Locations", "NodePath", "format_path"]

NodePath = tuple[str | int, ...]


def format_path(path: NodePath) -> str:
    """``("segments", 2, "members", "rule")`` → ``segments[2].members.rule``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("-", "").replace("_", "").isalnum():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


@dataclass(frozen=True, slots=True)
class Locations:
    """1-based ``(line, column)`` of every value (and of every mapping key) by node path."""

    values: Mapping[NodePath, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    keys: Mapping[NodePath, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))

    def of(self, path: NodePath) -> tuple[int, int]:
        """Where the value at ``path`` starts, or its nearest located ancestor (1:1 at worst)."""
        probe = tuple(path)
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: NodePath) -> tuple[int, int]:
        """Where the mapping key naming ``path`` is written (falls back to :meth:`of`)."""
        return self.keys.get(tuple(path)) or self.of(path)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed YAML file: plain data, where each node is, and the exact bytes read."""

    path: Path
    data: Any
    locations: Locations
    raw: bytes


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _problem(file: str, where: tuple[int, int], path: NodePath, message: str) -> Problem:
    return Problem(file, where[0], where[1], format_path(path), message)
