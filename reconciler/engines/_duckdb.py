"""The embedded default: DuckDB over CSV, JSON lines or Parquet files (or a table of its own).

The working tables live in a DuckDB database file in a private temporary folder, with a memory
limit, so DuckDB spills to disk instead of growing the reconciler's memory with the table; the
members stream out as Arrow record batches of a bounded size.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from ..exceptions import PlanError
from ..rules import DUCKDB_SQL, SegmentRule, members_query
from ._base import Engine, SourceRef
from .readers import describe, source_sql, sql_string

__all__ = ["DuckDBEngine"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DuckDBEngine(Engine):
    """DuckDB in this process, with its working set on disk beyond ``memory_limit``."""

    dialect = DUCKDB_SQL

    def __init__(self, *, memory_limit: str = "1GB", threads: int | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="reconcile-duckdb-")
        db = os.path.join(self._dir.name, "work.duckdb")
        self.con = duckdb.connect(db)
        self.con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
        self.con.execute(f"SET temp_directory = {sql_string(self._dir.name)}")
        self.con.execute("SET preserve_insertion_order = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")

    def close(self) -> None:
        self.con.close()
        self._dir.cleanup()

    def relation(self, source: SourceRef) -> str:
        if source.table is not None:
            return self.dialect.ident(source.table)
        assert source.path is not None
        assert source.format is not None
        return source_sql(source.path, source.format, source.id_column)

    def describe(self, source: SourceRef) -> dict[str, str]:
        if source.path is not None and source.format is not None:
            return describe(self.con, source.path, source.format)
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation(source)}").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def _stream(
        self, sql: str, params: Sequence[object], batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        try:
            cursor = self.con.cursor()  # one per stream: several may be open at once
            reader = cursor.sql(sql, params=list(params)).to_arrow_reader(batch_rows)
            yield from reader
        except duckdb.Error as exc:
            raise PlanError(f"engine duckdb: {_first_line(exc)}") from exc

    def members(
        self, source: SourceRef, segments: Sequence[SegmentRule], *, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        q = members_query(
            self.dialect, self.relation(source), source.id_column, source.columns, segments
        )
        return self._stream(q.sql, q.params, batch_rows)
