"""Snowflake: rules compiled to Snowflake SQL and run where the table lives, through
``snowflake-connector-python`` (the ``warehouse`` extra; importing this module does not need it).

``matches`` is ``REGEXP_INSTR(...) > 0`` (found anywhere: ``REGEXP_LIKE`` and ``RLIKE`` match
the whole value), the pattern re-spelled for Snowflake's POSIX flavour. Values are bound
server-side (``qmark``), never spliced into the text. Results stream back as Arrow batches.

The session is opened with ``QUOTED_IDENTIFIERS_IGNORE_CASE``: the compiler quotes every
column (``"email"``), and a column created unquoted is stored as ``EMAIL``; with it, both name
the same column, as they do in DuckDB and Spark.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..exceptions import PlanError
from ..rules import SNOWFLAKE, SegmentRule, members_query
from ._base import MEMBERS_SCHEMA, Engine, SourceRef

__all__ = ["LOAD_ROWS", "SnowflakeEngine", "snowflake_type"]

logger = logging.getLogger("reconciler.engines.snowflake")

#: rows per statement when a small local table is sent (an array binding)
LOAD_ROWS = 16384

#: what every session of the reconciler sets
_SESSION = {
    "QUOTED_IDENTIFIERS_IGNORE_CASE": True,
    "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
    "TIMEZONE": "UTC",
}

_TYPES = {
    "FLOAT": "DOUBLE",
    "FLOAT4": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "REAL": "DOUBLE",
    "INT": "BIGINT",
    "INTEGER": "BIGINT",
    "BIGINT": "BIGINT",
    "SMALLINT": "BIGINT",
    "TINYINT": "BIGINT",
    "BYTEINT": "BIGINT",
    "VARCHAR": "VARCHAR",
    "CHAR": "VARCHAR",
    "CHARACTER": "VARCHAR",
    "STRING": "VARCHAR",
    "TEXT": "VARCHAR",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "TIMESTAMP_LTZ": "TIMESTAMP",
    "TIMESTAMP_TZ": "TIMESTAMP",
}


def snowflake_type(type_name: str) -> str:
    """A Snowflake type as ``DESCRIBE TABLE`` spells it (``NUMBER(38,0)``, ``VARCHAR(16777216)``,
    ``TIMESTAMP_NTZ(9)``) → the DuckDB type name the rule checker reads."""
    base, _, args = type_name.upper().partition("(")
    base = base.strip()
    if base in ("NUMBER", "DECIMAL", "NUMERIC"):
        scale = args.rstrip(")").split(",")[1].strip() if "," in args else "0"
        return "BIGINT" if scale == "0" else "DECIMAL"
    return _TYPES.get(base, base)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SnowflakeEngine(Engine):
    """One Snowflake session (opened on first use, closed with the engine)."""

    dialect = SNOWFLAKE

    def __init__(self, connect_args: Mapping[str, Any], *, timeout: float = 30.0) -> None:
        args = dict(connect_args)
        self.session_parameters = {**_SESSION, **args.pop("session_parameters", {})}
        self.connect_args = args
        self.timeout = timeout
        self._con: Any = None

    @property
    def con(self) -> Any:
        if self._con is None:
            self._con = self._connect()
        return self._con

    def _connect(self) -> Any:
        try:
            import snowflake.connector
        except ImportError as exc:
            raise PlanError(
                "engine snowflake needs snowflake-connector-python: "
                "pip install 'audience-reconciler[warehouse]'"
            ) from exc
        try:
            return snowflake.connector.connect(
                **self.connect_args,
                paramstyle="qmark",
                session_parameters=self.session_parameters,
                login_timeout=self.timeout,
                network_timeout=self.timeout,
                client_session_keep_alive=False,
            )
        except snowflake.connector.Error as exc:
            raise PlanError(f"engine snowflake: cannot log in: {_why(exc)}") from exc

    def close(self) -> None:
        if self._con is not None:
            con, self._con = self._con, None
            try:
                con.close()
            except Exception as exc:  # the session ends server-side anyway
                logger.debug("closing the Snowflake session: %s", first_line(exc))

    # -- statements -----------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A cursor that ran ``sql`` with its ``?`` markers bound to ``params``."""
        import snowflake.connector

        cursor = self.con.cursor()
        try:
            cursor.execute(sql, list(params) if params else None, timeout=self.timeout)
        except snowflake.connector.Error as exc:
            cursor.close()
            raise PlanError(f"engine snowflake: {_why(exc)}") from exc
        return cursor

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.execute(sql, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def arrow(self, sql: str, params: Sequence[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        """``sql``'s rows as Arrow batches of ``schema`` (its columns in order, as text)."""
        import snowflake.connector

        cursor = self.execute(sql, params)
        try:
            for table in cursor.fetch_arrow_batches():  # a pyarrow Table per result chunk
                cast = [c.cast(f.type) for c, f in zip(table.columns, schema, strict=True)]
                yield from pa.Table.from_arrays(cast, schema=schema).to_batches()
        except snowflake.connector.Error as exc:
            raise PlanError(f"engine snowflake: {_why(exc)}") from exc
        finally:
            cursor.close()

    def load(self, table: str, columns: Mapping[str, str], rows: Sequence[tuple[Any, ...]]) -> None:
        """A temporary table ``table`` (``columns``: name → Snowflake type) holding ``rows``,
        sent as array bindings of :data:`LOAD_ROWS` rows."""
        spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        self.fetch(f"CREATE OR REPLACE TEMPORARY TABLE {table} ({spec})")
        marks = ", ".join("?" for _ in columns)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        import snowflake.connector

        for start in range(0, len(rows), LOAD_ROWS):
            cursor = self.con.cursor()
            try:
                cursor.executemany(insert, [list(r) for r in rows[start : start + LOAD_ROWS]])
            except snowflake.connector.Error as exc:
                raise PlanError(f"engine snowflake: {_why(exc)}") from exc
            finally:
                cursor.close()

    def put_parquet(self, path: Path, table: str) -> None:
        """The rows of the Parquet file ``path`` copied into ``table`` (matched by column
        name), through the table's own stage (which holds that file alone: ``table`` is a
        table being loaded)."""
        stage = _table_stage(table)
        location = "file://" + path.resolve().as_posix().replace("'", "\\'")
        self.fetch(f"PUT '{location}' {stage} AUTO_COMPRESS=FALSE OVERWRITE=TRUE")
        self.fetch(
            f"COPY INTO {table} FROM {stage} "
            "FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
        )

    # -- sources --------------------------------------------------------------------------
    def relation(self, source: SourceRef) -> str:
        if source.table is None:
            raise PlanError(f"engine snowflake: source {source.name} names no table")
        return self.dialect.ident(source.table)

    def describe(self, source: SourceRef) -> dict[str, str]:
        rows = self.fetch(f"DESCRIBE TABLE {self.relation(source)}")
        return {_name(str(r[0])): snowflake_type(str(r[1])) for r in rows}

    def members(
        self, source: SourceRef, segments: Sequence[SegmentRule], *, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        q = members_query(
            self.dialect, self.relation(source), source.id_column, source.columns, segments
        )
        return self.arrow(q.sql, q.params, MEMBERS_SCHEMA)


def _name(column: str) -> str:
    """A column as a config names it: Snowflake stores an unquoted name in upper case
    (``EMAIL``), which the session reads case-insensitively; a name created quoted in
    another case (``"eMail"``) is kept as it is."""
    return column.lower() if column == column.upper() else column


def _table_stage(table: str) -> str:
    """``@db.schema.%table`` for ``db.schema.table``."""
    *qualifier, name = table.split(".")
    return "@" + ".".join([*qualifier, "%" + name])


def _why(exc: BaseException) -> str:
    """The connector's message on one line, without its error number and SQL state
    (``002003 (42S02): SQL compilation error:`` then the reason on the next line)."""
    msg = getattr(exc, "msg", None)
    text = msg if isinstance(msg, str) and msg.strip() else str(exc)
    text = " ".join(text.split())
    return re.sub(r"^\d{6} \([0-9A-Z]{5}\): ", "", text) or type(exc).__name__
