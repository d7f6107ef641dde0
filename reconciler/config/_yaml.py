"""YAML loading that keeps the line and column of every node.

libyaml (PyYAML's C parser and composer) composes the document into a node graph (aliases become
shared nodes, nothing is expanded yet), counting nodes and depth as it goes: a document with too
many nodes, or nested too deep, is refused at the node that crosses the limit, before the rest is
read. We then measure the graph (alias uses, nodes after expansion, cycles) and only build plain
Python values when it is within bounds, recording a :class:`Locations` entry for every mapping key
and value and every sequence item. Every failure is a located :class:`Problem`.

Only a regular file is read: a FIFO, a device or a directory is refused before it is opened (a
FIFO would block the reader forever).

Scalars keep YAML 1.1 core types (null, bool, int, float, str); timestamps stay strings (a rule may
compare them with a date column); any other tag is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: the same hooks, in Python
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

from ..exceptions import ConfigError, Problem

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "Locations",
    "NodePath",
    "file_kind",
    "format_path",
    "load_yaml",
]

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

NodePath = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


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


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _problem(file: str, where: tuple[int, int], path: NodePath, message: str) -> Problem:
    return Problem(file, where[0], where[1], format_path(path), message)


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


class _Builder:
    """Turns a measured node graph into plain values plus locations."""

    def __init__(self, loader: _BaseLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.values: dict[NodePath, tuple[int, int]] = {}
        self.keys: dict[NodePath, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def build(self, node: Node, path: NodePath) -> Any:
        self.values.setdefault(path, _mark(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self._unsupported(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _unsupported(self, node: Node, path: NodePath) -> None:
        self.problems.append(
            _problem(self.file, _mark(node), path, f"unsupported YAML tag {node.tag!r}")
        )

    def _mapping(self, node: MappingNode, path: NodePath) -> dict[Any, Any]:
        if node.tag != _MAP:
            self._unsupported(node, path)
        out: dict[Any, Any] = {}
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.problems.append(
                    _problem(
                        self.file,
                        _mark(key_node),
                        path,
                        "YAML merge keys (<<) are not supported; write the fields out",
                    )
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    _problem(self.file, _mark(key_node), path, "mapping keys must be scalars")
                )
                continue
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                self.problems.append(
                    _problem(
                        self.file,
                        _mark(key_node),
                        path,
                        f"mapping key {key_node.value!r} is read as {type(key).__name__}, "
                        "not text; quote it",
                    )
                )
                continue
            child: NodePath = (*path, str(key))
            if key in seen:
                line, _ = seen[key]
                self.problems.append(
                    _problem(
                        self.file,
                        _mark(key_node),
                        child,
                        f"duplicate key {key!s} (first defined on line {line})",
                    )
                )
                continue
            seen[key] = _mark(key_node)
            self.keys[child] = _mark(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: Node, path: NodePath) -> Any:
        if not isinstance(node, ScalarNode):  # pragma: no cover - callers check
            return None
        if node.tag in _PLAIN_TAGS:
            try:
                return self.loader.construct_object(node, deep=True)
            except ValueError as exc:  # an integer of more digits than Python converts
                self.problems.append(_problem(self.file, _mark(node), path, _first_line(exc)))
                return None
        if node.tag == _TIMESTAMP:
            return str(node.value)
        self._unsupported(node, path)
        return node.value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _syntax_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(str(p) for p in (context, problem) if p) or str(exc)
    return Problem(file, line, col, "", f"YAML syntax error: {text}")


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` (at most ``max_bytes + 1``), opened without blocking and checked to
    be a regular file once open (it may have been swapped for a FIFO since it was looked at)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(0, f"it is {kind}, not a regular file")
        return fh.read(max_bytes + 1)


def load_yaml(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read ``path`` into a :class:`Document`; :class:`ConfigError` lists located problems."""
    file = str(path)
    try:
        info = path.stat()
        kind = file_kind(info.st_mode)
        if kind is not None:
            raise ConfigError(
                [Problem(file, 0, 0, "", f"is {kind}, not a regular file; give the YAML file")]
            )
        if info.st_size > max_bytes:
            message = f"file is {info.st_size} bytes; at most {max_bytes} are allowed"
            raise ConfigError([Problem(file, 0, 0, "", message)])
        raw = _read_regular(path, max_bytes)
    except OSError as exc:
        raise ConfigError(
            [Problem(file, 0, 0, "", f"cannot read the file: {exc.strerror or exc}")]
        ) from exc
    if len(raw) > max_bytes:  # grew between stat and read
        raise ConfigError([Problem(file, 0, 0, "", f"file exceeds {max_bytes} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        raise ConfigError(
            [Problem(file, line, col, "", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})")]
        ) from exc

    try:
        yaml.reader.Reader(text)  # checks every character is printable, and says where
    except yaml.reader.ReaderError as exc:
        line, col = _position(text.encode(), len(text[: exc.position].encode()))
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError(
            [Problem(file, line, col, "", f"the file holds a non-printable character ({char})")]
        ) from exc
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except _TooBig as exc:
        line, col = (exc.mark.line + 1, exc.mark.column + 1) if exc.mark is not None else (0, 0)
        raise ConfigError([Problem(file, line, col, "", exc.message)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(file, exc)]) from exc
    finally:
        loader.dispose()
    if root is None:
        return Document(path, None, Locations(), raw)

    problems = _measure(root, file)
    if problems:
        raise ConfigError(problems)
    builder = _Builder(loader, file)
    try:
        data = builder.build(root, ())
    except yaml.YAMLError as exc:  # e.g. a malformed !!int scalar
        raise ConfigError([*builder.problems, _syntax_problem(file, exc)]) from exc
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(
        path,
        data,
        Locations(MappingProxyType(builder.values), MappingProxyType(builder.keys)),
        raw,
    )
