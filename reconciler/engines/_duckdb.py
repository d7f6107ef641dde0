"""The embedded default: DuckDB over CSV, JSON lines or Parquet files (or a table of its own).

The working tables live in a DuckDB database file in a private temporary folder, with a memory
limit, so DuckDB spills to disk instead of growing the reconciler's memory with the table; the
delta streams out as Arrow record batches of a bounded size.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from ..config._sources import describe, source_sql, sql_string
from ..exceptions import PlanError
from ._base import DELTA_SCHEMA, Delta, DiffCounts, Engine, SourceRef
from ._sql import (
    DUCKDB_SQL,
    SegmentRule,
    diff_queries,
    distinct_pairs,
    empty_pairs,
    members_query,
)

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

    def _snapshot_relation(self, snapshot: str | Path) -> str:
        path = Path(snapshot)
        if not path.exists():
            return empty_pairs(self.dialect)
        return f"read_parquet({sql_string(str(path))})"

    def diff(
        self,
        source: SourceRef,
        segments: Sequence[SegmentRule],
        snapshot: str | Path,
        *,
        batch_rows: int = 65536,
    ) -> Delta:
        q = members_query(
            self.dialect, self.relation(source), source.id_column, source.columns, segments
        )
        try:
            self.con.execute("DROP TABLE IF EXISTS _desired")
            self.con.execute("DROP TABLE IF EXISTS _snapshot")
            self.con.execute(f"CREATE TABLE _desired AS {distinct_pairs(q.sql)}", list(q.params))
            self.con.execute(
                "CREATE TABLE _snapshot AS "
                + distinct_pairs(f"SELECT * FROM {self._snapshot_relation(snapshot)}")
            )
            dq = diff_queries("_desired", "_snapshot")
            row = self.con.execute(dq.counts.sql).fetchall()[0]
        except duckdb.Error as exc:
            raise PlanError(f"engine duckdb: {_first_line(exc)}") from exc
        assert row is not None
        counts = DiffCounts(*(int(v) for v in row))
        counts.check(self.name)

        def batches() -> Iterator[pa.RecordBatch]:
            for query in (dq.adds, dq.removes):
                for batch in self._stream(query.sql, query.params, batch_rows):
                    yield batch.cast(DELTA_SCHEMA) if batch.schema != DELTA_SCHEMA else batch

        return Delta(self.name, counts, batches())

    def commit_snapshot(
        self, snapshot: str | Path, acknowledged: pa.Table, *, rejected: pa.Table | None = None
    ) -> None:
        path = Path(snapshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self.con.register("_acked", acknowledged)
        try:
            self.con.execute(
                f"COPY (SELECT customer_id, segment_id FROM {self._snapshot_relation(path)} AS s "
                "WHERE NOT EXISTS (SELECT 1 FROM _acked AS a WHERE a.op = 'remove' "
                "AND a.customer_id = s.customer_id AND a.segment_id = s.segment_id) "
                "UNION SELECT customer_id, segment_id FROM _acked WHERE op = 'add') "
                f"TO {sql_string(str(tmp))} (FORMAT parquet)"
            )
            os.replace(tmp, path)
            if rejected is not None:
                self.con.register("_rejected", rejected)
                out = path.with_name(path.name + ".rejected.parquet")
                self.con.execute(f"COPY _rejected TO {sql_string(str(out))} (FORMAT parquet)")
                self.con.unregister("_rejected")
        except duckdb.Error as exc:
            raise PlanError(
                f"engine duckdb: cannot write the snapshot: {_first_line(exc)}"
            ) from exc
        finally:
            self.con.unregister("_acked")
