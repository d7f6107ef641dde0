"""Spark: rules compiled to Spark SQL and run where the data lives (a table name or a Parquet
path); the session is ``local[*]`` (or any ``local``/``spark://`` master) or Spark Connect
(``sc://host:port``).

``matches`` is ``RLIKE``, which is ``java.util.regex.Matcher.find`` (anywhere in the value); the
pattern is re-spelled for Java (see :mod:`reconciler.rules.patterns`). pyspark is optional
(``pip install 'audience-reconciler[spark]'``); importing this module does not need it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..exceptions import PlanError
from ..rules import SPARK_SQL, SegmentRule, members_query
from ._base import MEMBERS_SCHEMA, Engine, SourceRef

__all__ = ["LOCAL_CONF", "SparkEngine", "named_params", "spark_type"]

#: Settings for a local session: small, quiet, and bound to the loopback interface only.
LOCAL_CONF: Mapping[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
}

_TYPES = {
    "byte": "TINYINT",
    "short": "SMALLINT",
    "integer": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
}


def spark_type(type_name: str) -> str:
    """A Spark type name (``long``, ``decimal(10,2)``, ``varchar(8)``) → a DuckDB type name."""
    base = type_name.split("(", 1)[0].lower()
    if base == "decimal":
        return "DECIMAL"
    if base in ("varchar", "char"):
        return "VARCHAR"
    return _TYPES.get(base, type_name.upper())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def named_params(sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``?`` markers → ``:p0, :p1 …`` in text order, skipping quoted identifiers and literals.

    Spark binds positional markers in the order of its analysed plan, which is NOT the text
    order across ``UNION ALL`` (measured: segment ids swapped between branches); named
    markers bind by name.
    """
    out: list[str] = []
    quote: str | None = None
    n = 0
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("`", "'"):
            quote = ch
        elif ch == "?":
            out.append(f":p{n}")
            n += 1
            continue
        out.append(ch)
    if n != len(params):
        raise PlanError(f"engine spark: {n} parameter markers for {len(params)} values")
    return "".join(out), {f"p{i}": value for i, value in enumerate(params)}


def _quiet_error_loggers() -> None:
    """PySpark logs every failed query with its whole JVM stack trace, as JSON on stderr;
    its message already reaches the user in a located error, so those loggers are off."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # older pyspark: no such loggers
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def _quote_path(path: str) -> str:
    return "`" + path.replace("`", "``") + "`"


class SparkEngine(Engine):
    """A Spark session (created on first use) running the same SQL as every engine."""

    dialect = SPARK_SQL

    def __init__(
        self,
        master: str = "local[*]",
        *,
        conf: Mapping[str, str] | None = None,
        session: Any = None,
    ) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self._session = session
        self._owned = session is None

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = self._start()
        return self._session

    def _start(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise PlanError(
                "engine spark needs pyspark: pip install 'audience-reconciler[spark]'"
            ) from exc
        builder: Any = SparkSession.builder.appName("audience-reconciler")
        if self.master.startswith("sc://"):
            builder = builder.remote(self.master)
            conf = self.conf
        else:
            builder = builder.master(self.master)
            conf = {**LOCAL_CONF, **self.conf}
            # the JVM otherwise warns that the host name resolves to a loopback address
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j / grpc errors carry no common base
            raise PlanError(
                f"cannot start a Spark session on {self.master}: {_first_line(exc)}"
            ) from exc
        if not self.master.startswith("sc://"):
            session.sparkContext.setLogLevel("ERROR")
        _quiet_error_loggers()
        return session

    def close(self) -> None:
        if self._owned and self._session is not None:
            self._session.stop()
            self._session = None

    # -- sources --------------------------------------------------------------------------
    def relation(self, source: SourceRef) -> str:
        if source.table is not None:
            return self.dialect.ident(source.table)
        fmt: str = source.format or "parquet"
        if fmt == "jsonl":
            fmt = "json"
        if fmt == "csv":  # header and types need options: go through a temporary view
            view = f"_src_{uuid.uuid4().hex[:8]}"
            self.session.read.csv(
                source.location, header=True, inferSchema=True
            ).createOrReplaceTempView(view)
            return view
        return f"{fmt}.{_quote_path(source.location)}"

    def describe(self, source: SourceRef) -> dict[str, str]:
        try:
            schema = self.session.sql(f"SELECT * FROM {self.relation(source)} LIMIT 0").schema
        except PlanError:
            raise
        except Exception as exc:
            what = source.table if source.table is not None else source.location
            raise PlanError(f"engine spark: cannot read {what}: {_first_line(exc)}") from exc
        return {f.name: spark_type(f.dataType.simpleString()) for f in schema.fields}

    def sql(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A DataFrame of ``sql`` with its ``?`` markers bound to ``params`` in text order;
        Spark's errors become :class:`PlanError` (their first line)."""
        try:
            if not params:
                return self.session.sql(sql)
            text, args = named_params(sql, params)
            return self.session.sql(text, args=args)
        except PlanError:
            raise
        except Exception as exc:
            raise PlanError(f"engine spark: {_first_line(exc)}") from exc

    def _stream(self, df: Any, schema: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
        names = schema.names
        buffer: list[list[Any]] = [[] for _ in names]
        try:
            for row in df.toLocalIterator(prefetchPartitions=True):
                for i, value in enumerate(row):
                    buffer[i].append(value)
                if len(buffer[0]) >= batch_rows:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c, pa.string()) for c in buffer], schema=schema
                    )
                    buffer = [[] for _ in names]
        except PlanError:
            raise
        except Exception as exc:
            raise PlanError(f"engine spark: {_first_line(exc)}") from exc
        if buffer[0]:
            yield pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in buffer], schema=schema
            )

    def members(
        self, source: SourceRef, segments: Sequence[SegmentRule], *, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        q = members_query(
            self.dialect, self.relation(source), source.id_column, source.columns, segments
        )
        return self._stream(self.sql(q.sql, q.params), MEMBERS_SCHEMA, batch_rows)
