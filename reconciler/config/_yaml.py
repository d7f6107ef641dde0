"""YAML loading that keeps the line and column of every node.

The document is composed and measured within the limits of :mod:`._limits`; only then are plain
Python values built, recording a :class:`Locations` entry for every mapping key and value and every
sequence item. Every failure is a located :class:`Problem`.

Scalars keep YAML 1.1 core types (null, bool, int, float, str); timestamps stay strings (a rule may
compare them with a date column); any other tag is refused.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..exceptions import ConfigError, Problem
from ._limits import MAX_FILE_BYTES, _Loader, _measure, _read_regular, _TooBig, file_kind
from ._locations import Document, Locations, NodePath, _mark, _problem

__all__ = ["load_yaml"]

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


class _Builder:
    """Turns a measured node graph into plain values plus locations."""

    def __init__(self, loader: _Loader, file: str) -> None:
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


def _read_text(path: Path, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of ``path`` and their text, once they are a regular file within ``max_bytes``,
    valid UTF-8 and printable (a located :class:`ConfigError` otherwise)."""
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
    return raw, text


def load_yaml(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read ``path`` into a :class:`Document`; :class:`ConfigError` lists located problems."""
    file = str(path)
    raw, text = _read_text(path, max_bytes)
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
