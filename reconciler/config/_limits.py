"""The limits a configuration file must stay within, checked before anything is built.

libyaml (PyYAML's C parser and composer) composes the document into a node graph (aliases become
shared nodes, nothing is expanded yet), counting nodes and depth as it goes: a document with too
many nodes, or nested too deep, is refused at the node that crosses the limit, before the rest is
read. We then measure the graph (alias uses, nodes after expansion, cycles) before plain values are
built from it.

Only a regular file is read: a FIFO, a device or a directory is refused before it is opened (a
FIFO would block the reader forever).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..exceptions import Problem

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: the same hooks, in Python
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

from ._locations import NodePath, _mark, _problem

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "file_kind"]

#: Largest configuration file accepted, in bytes.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Most alias uses (``*name``) accepted in one document.
MAX_ALIASES = 100
#: Most nodes (keys, values, list items) the document may have, as written and once every alias
#: is expanded.
MAX_NODES = 200_000
#: Deepest nesting accepted (a rule nested this deep is already unreadable; deeper documents
#: would exhaust the parsers' recursion).
MAX_DEPTH = 128


class _TooBig(Exception):
    """Raised from inside libyaml's composer at the node that crosses a limit."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Loader(_BaseLoader):
    """libyaml's loader, counting nodes and depth while it composes.

    libyaml's composer calls :meth:`descend_resolver` before each node it composes (every node
    but an alias, which is a shared node measured later) and :meth:`ascend_resolver` after it:
    the count and the depth are kept there, and the first node past a limit stops the composer.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.depth = 0

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        self.nodes += 1
        self.depth += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(
                self._here(),
                f"the document has more than {MAX_NODES} nodes (keys, values and list items); "
                f"the limit is {MAX_NODES}",
            )
        if self.depth > MAX_DEPTH:
            raise _TooBig(
                self._here(),
                f"the document is nested more than {MAX_DEPTH} levels deep",
            )

    def ascend_resolver(self) -> None:
        self.depth -= 1

    def _here(self) -> Any:
        """The mark of the event after the node being composed (the stream is abandoned)."""
        event = self.peek_event()
        return event.start_mark if event is not None else None


def file_kind(mode: int) -> str | None:
    """What a non-regular file is (``a FIFO (named pipe)``…), from its ``st_mode``; None for a
    regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class _Bomb(Exception):
    def __init__(self, node: Node, path: NodePath, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.path = path
        self.message = message


def _measure(root: Node, file: str) -> list[Problem]:
    """Refuse alias bombs and recursive aliases before anything is expanded.

    Walks the composed graph once, measuring each shared (aliased) node a single time, and keeps
    a running count of the nodes the document would have once expanded; the walk stops at the
    first node that crosses a limit and reports where that is.
    """
    aliases = 0
    expanded = 0
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node, parent: Node, path: NodePath) -> int:
        nonlocal aliases, expanded
        key = id(node)
        if key in active:
            raise _Bomb(parent, path, "recursive YAML alias is not allowed")
        if len(path) > MAX_DEPTH:
            raise _Bomb(parent, path, f"the document is nested more than {MAX_DEPTH} levels deep")
        if key in sizes:
            aliases += 1
            expanded += sizes[key]
            if aliases > MAX_ALIASES:
                raise _Bomb(
                    parent, path, f"more than {MAX_ALIASES} YAML aliases; refusing to expand them"
                )
        else:
            active.add(key)
            expanded += 1
            before = expanded
            for child_path, child in _children(node, path):
                size(child, node, child_path)
            active.discard(key)
            sizes[key] = expanded - before + 1
        if expanded > MAX_NODES:
            raise _Bomb(
                parent, path, f"document expands to more than {MAX_NODES} nodes (YAML alias bomb?)"
            )
        return sizes[key]

    try:
        size(root, root, ())
    except _Bomb as exc:
        return [_problem(file, _mark(exc.node), exc.path[:-1], exc.message)]
    except RecursionError:
        return [_problem(file, _mark(root), (), "document is nested too deeply")]
    return []


def _children(node: Node, path: NodePath) -> Iterator[tuple[NodePath, Node]]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else "?"
            yield (*path, name), key
            yield (*path, name), value
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield (*path, i), item


def _read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` (at most ``max_bytes + 1``), opened without blocking and checked to
    be a regular file once open (it may have been swapped for a FIFO since it was looked at)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(0, f"it is {kind}, not a regular file")
        return fh.read(max_bytes + 1)
