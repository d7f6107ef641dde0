"""How customer sources and member files are read: DuckDB's readers (the only place that spells
them), and the Spark session of ``engine: spark`` sources."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import duckdb

if TYPE_CHECKING:  # the engines import this module: import them lazily
    from ..engines import SourceRef, SparkEngine
    from ._model import CustomerSource, SparkSettings

__all__ = [
    "bounded",
    "describe",
    "describe_csv_columns",
    "file_ids_sql",
    "in_background",
    "reach",
    "source_format",
    "source_ref",
    "source_sql",
    "spark_engine",
    "sql_string",
    "temp_table",
]

_T = TypeVar("_T")

#: default ports of a master URL without one
_PORTS = {"sc": 15002, "spark": 7077}

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def temp_table(con: Any, name: str, columns: Mapping[str, tuple[str, Sequence[Any]]]) -> None:
    """(Re)create the temporary table ``name`` in ``con`` from Python lists of equal length:
    ``columns`` maps a column to its DuckDB type and values (no Arrow: pyarrow's import alone
    costs more than a plan's join)."""
    select = ", ".join(
        f"unnest($c{i}::{kind}[]) AS {col}" for i, (col, (kind, _)) in enumerate(columns.items())
    )
    params = {f"c{i}": list(values) for i, (_, values) in enumerate(columns.values())}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select}", params)


def source_format(path: Path) -> str | None:
    """``csv`` / ``jsonl`` / ``parquet`` from the file name (``.gz`` ignored), else None."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    return _SUFFIXES.get(suffixes[-1]) if suffixes else None


def source_sql(path: Path, fmt: str, id_column: str | None = None) -> str:
    """A table-function call reading the whole file (the id column read as text)."""
    lit = sql_string(str(path))
    if fmt == "csv":
        types = f", types={{{sql_string(id_column)}: 'VARCHAR'}}" if id_column else ""
        return f"read_csv({lit}, header=true{types})"
    if fmt == "jsonl":
        return f"read_json({lit}, format='newline_delimited')"
    return f"read_parquet({lit})"


def describe(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type of a source, read from its header and a sample."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql(path, fmt)}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def describe_csv_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return list(describe(con, path, "csv"))


def file_ids_sql(path: Path, column: str | None) -> str:
    """A query yielding one ``cid`` per customer id listed in a member file."""
    lit = sql_string(str(path))
    if column is None:
        # one id per line; blank lines and lines starting with '#' are ignored
        return (
            "SELECT cid FROM (SELECT trim(line, ' \t\r') AS cid FROM "
            f"(SELECT unnest(string_split(content, chr(10))) AS line FROM read_text({lit}))) "
            "WHERE cid <> '' AND NOT starts_with(cid, '#')"
        )
    col = '"' + column.replace('"', '""') + '"'
    return (
        f"SELECT CAST({col} AS VARCHAR) AS cid FROM "
        f"read_csv({lit}, header=true, types={{{sql_string(column)}: 'VARCHAR'}})"
    )


def reach(master: str, timeout: float) -> str | None:
    """Why the host:port of a remote master (``sc://``, ``spark://``) does not accept a TCP
    connection within ``timeout`` seconds; None when it does (or for a local master)."""
    parts = urlsplit(master)
    if parts.scheme not in _PORTS:
        return None
    try:
        host, port = parts.hostname, parts.port or _PORTS[parts.scheme]
    except ValueError as exc:
        return str(exc)
    if not host:
        return "no host in the master URL"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


def in_background(call: Callable[[], _T], name: str) -> Future[_T]:
    """``call()`` in a daemon thread named ``name`` (a process never waits for it to exit);
    its result or exception is the future's."""
    future: Future[_T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # handed over to whoever waits
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def bounded(call: Callable[[], _T], timeout: float | None) -> _T:
    """``call()``, or :class:`TimeoutError` after ``timeout`` seconds (None: no bound).

    The call runs in a daemon thread, so a client that retries for minutes (Spark Connect's
    gRPC retry policy) cannot hold validation, nor the process's exit, past the bound.
    """
    if timeout is None:
        return call()
    future = in_background(call, "reconcile-bounded")
    done, _ = wait([future], timeout)
    if not done:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return future.result()


def spark_engine(settings: SparkSettings) -> SparkEngine:
    """An engine on the process's Spark session for ``settings`` (started on first use).

    Spark keeps one session per process (``getOrCreate``): the engine does not own it and
    closing it does not stop the session, which lives as long as the process (or until its
    owner stops it). Raises :class:`~reconciler.exceptions.PlanError` when it cannot start.
    """
    from ..engines import SparkEngine

    conf = dict(settings.conf)
    session = SparkEngine(settings.master, conf=conf).session
    return SparkEngine(settings.master, conf=conf, session=session)


def source_ref(source: CustomerSource) -> SourceRef:
    """The engine's view of a customer source."""
    from ..engines import SourceRef

    return SourceRef(
        source.name,
        source.id_column,
        source.columns,
        path=source.path,
        format=source.format,
        table=source.table,
        uri=source.uri,
    )
