"""The shared state of the semantic checks: the document, the problems found, located reports
and the path and pattern checks every section uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ..engines import memory
from ..engines.readers import csv_error
from ..exceptions import PatternError, Problem
from ..rules import check_pattern
from ._digest import FileDigests
from ._limits import file_kind
from ._locations import Document, NodePath, format_path
from ._model import SparkSettings

if TYPE_CHECKING:
    from ..engines import SparkEngine

__all__ = ["Analyser", "first_line", "read_error"]


class Analyser:
    """The state the checks share: the document, its problems, a DuckDB connection."""

    def __init__(self, doc: Document, schema_errors: Iterable[NodePath]) -> None:
        self.doc = doc
        self.file = str(doc.path)
        self.base = doc.path.parent
        self.problems: list[Problem] = []
        self.invalid = [tuple(p) for p in schema_errors]
        self._con: duckdb.DuckDBPyConnection | None = None
        #: the data files the config references, hashed as they are found (for its digest)
        self.referenced = FileDigests()
        #: the Spark section (None when the schema rejected it)
        self.spark_settings: SparkSettings | None = SparkSettings()
        #: the Spark engine once started, or why it could not be
        self._spark: tuple[SparkEngine | None, str] | None = None
        self.uses_spark = False

    # --- helpers ---------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = memory.connect()
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
        self.referenced.stop()

    def report(self, path: NodePath, message: str) -> None:
        line, col = self.doc.locations.of(path)
        self.problems.append(Problem(self.file, line, col, format_path(path), message))

    def bad(self, path: NodePath) -> bool:
        """Whether the schema found a problem at, inside or above ``path``."""
        n = len(path)
        return any(p[:n] == path or path[: len(p)] == p for p in self.invalid)

    def resolve_path(self, text: str) -> Path:
        p = Path(text)
        return p if p.is_absolute() else (self.base / p)

    def confined(self, text: str, node: NodePath, outside: bool, opt_out: str) -> Path | None:
        """``text`` resolved against the YAML's folder, or None (reported) when it leads out of
        that folder, symlinks included, and the config did not opt out for this path
        (``outside: true``); ``opt_out`` says how to."""
        path = self.resolve_path(text)
        if outside:
            return path
        base = Path(os.path.realpath(self.base))
        try:
            real = Path(os.path.realpath(path))
        except OSError as exc:  # a symlink loop
            self.report(node, f"cannot resolve {text}: {exc.strerror or exc}")
            return None
        if real == base or real.is_relative_to(base):
            return path
        lexical = Path(os.path.normpath(path))
        via = " through a symlink" if lexical.is_relative_to(os.path.normpath(self.base)) else ""
        self.report(
            node,
            f"{text} resolves{via} outside the config's folder; to allow it, {opt_out}",
        )
        return None

    def data_file(self, text: str, node: NodePath, outside: bool, opt_out: str) -> Path | None:
        """A file the config reads (member file, customer source): confined (see
        :meth:`confined`) and a regular file, never a FIFO or a device that would block or
        never end (None, reported, otherwise)."""
        path = self.confined(text, node, outside, opt_out)
        if path is None:
            return None
        try:
            mode = path.stat().st_mode
        except OSError:
            self.report(node, f"file not found: {text}")
            return None
        kind = file_kind(mode)
        if kind is not None:
            self.report(node, f"{text} is {kind}, not a regular file")
            return None
        return path

    def check_regex(self, pattern: str) -> str | None:
        try:
            self.con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            return str(exc).split(": ", 1)[-1].splitlines()[0]
        try:
            check_pattern(pattern)
        except PatternError as exc:
            return f"not portable across engines: {exc}"
        return None


def read_error(display: str, exc: duckdb.Error) -> str:
    """``file:line: reason`` for a malformed CSV row, else ``cannot read file: …``."""
    row = csv_error(exc)
    if row is not None:
        return f"{display}:{row[1]}: {row[2]}"
    return f"cannot read {display}: {first_line(exc)}"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
