"""How customer sources and member files are read: DuckDB's readers (the only place that spells
them).

CSV is read as RFC 4180 says, strictly: the delimiter is fixed by the name (``,``; a tab for
``.tsv``), a field starting with ``"`` is quoted (``""`` inside it is a quote), and a row with an
unterminated quote or the wrong number of fields is an error naming its line
(:func:`csv_error`) rather than a row read some other way. DuckDB's sniffer only finds the
header and the column types. A member file with one id per line is read as a one-column table
(the newline is the only separator; no quoting), in one streaming pass.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

__all__ = [
    "BAD_ID",
    "LINE_ID",
    "MAX_ID",
    "csv_error",
    "describe",
    "describe_csv_columns",
    "file_ids_sql",
    "ids_checked",
    "invalid_id_sql",
    "lines_sql",
    "source_format",
    "source_sql",
    "sql_string",
    "temp_table",
]

#: the longest customer id accepted
MAX_ID = 256
#: whitespace (incl. Unicode separators) or a control character, as RE2 and Java read it
BAD_ID = r"[\s\p{Z}\p{Cc}]"


def invalid_id_sql(cid: str) -> str:
    """DuckDB's condition for an invalid id ``cid``: NULL, too long, or holding a character of
    :data:`BAD_ID`."""
    return f"({cid} IS NULL OR length({cid}) > {MAX_ID} OR regexp_matches({cid}, '{BAD_ID}'))"


def ids_checked() -> str:
    """What a file records of its ids having passed :func:`invalid_id_sql` (this very
    condition: a reader with another one checks them again)."""
    return hashlib.sha256(invalid_id_sql("id").encode()).hexdigest()[:16]


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


def _delimiter(path: Path) -> str:
    suffixes = [x.lower() for x in path.suffixes]
    return "\t" if ".tsv" in suffixes else ","


def _dialect(path: Path) -> str:
    """The strict RFC 4180 options of :func:`read_csv` for ``path``."""
    return f"delim={sql_string(_delimiter(path))}, quote='\"', escape='\"', strict_mode=true"


def csv_sql(path: Path, types: str = "") -> str:
    """``read_csv`` of ``path`` with a header row, strictly (``types``: DuckDB's ``types=``
    option, e.g. ``{'id': 'VARCHAR'}``)."""
    extra = f", types={types}" if types else ""
    return f"read_csv({sql_string(str(path))}, header=true, {_dialect(path)}{extra})"


def lines_sql(path: Path) -> str:
    """Every line of a text file as one row ``line`` (NULL for an empty line), in file order:
    a line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r``; nothing else separates or quotes."""
    return (
        f"read_csv({sql_string(str(path))}, header=false, auto_detect=false, "
        "columns={'line': 'VARCHAR'}, delim='\n', quote='', escape='', "
        "strict_mode=false)"
    )


#: the customer id of a ``line`` of :func:`lines_sql`: without the spaces and tabs around it
#: (``trim`` with a character list costs twice the plain one: only lines with a tab take it)
LINE_ID = "CASE WHEN contains(line, chr(9)) THEN trim(line, ' ' || chr(9)) ELSE trim(line) END"


def source_sql(path: Path, fmt: str, id_column: str | None = None) -> str:
    """A table-function call reading the whole file (the id column read as text)."""
    lit = sql_string(str(path))
    if fmt == "csv":
        return csv_sql(path, f"{{{sql_string(id_column)}: 'VARCHAR'}}" if id_column else "")
    if fmt == "jsonl":
        return f"read_json({lit}, format='newline_delimited')"
    return f"read_parquet({lit})"


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_FILE = re.compile(r"^\s*file = (.+)$", re.MULTILINE)
_CSV_REASONS = re.compile(
    r"Value with unterminated quote found|Expected Number of Columns: \d+ Found: \d+"
    r"|Invalid unicode[^\n.]*|Could not convert [^\n]*|Maximum line size of \d+ bytes exceeded"
    r"|The CSV Parser state machine reached an invalid state"
)


def csv_error(exc: BaseException) -> tuple[str, int, str] | None:
    """``(file, line, reason)`` of a DuckDB error about one row of a CSV file, else None."""
    text = str(exc)
    line = _CSV_LINE.search(text)
    if line is None:
        return None
    where = _CSV_FILE.search(text)
    reason = _CSV_REASONS.search(text)
    what = reason.group(0) if reason else "malformed row"
    if what.startswith("Invalid unicode"):
        what = "the line is not valid UTF-8"
    elif what.startswith("Expected Number"):
        what = "wrong number of columns (" + what.removeprefix("Expected Number of ").lower() + ")"
    elif what.startswith("Value with"):
        what = "a quoted value is never closed (unterminated quote)"
    return (where.group(1).strip() if where else "", int(line.group(1)), what)


def _locate_csv_error(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """When the sniffer cannot read ``path`` strictly, scan it with its header's columns (all
    text) so that DuckDB names the offending line; raises that error (returns if none)."""
    first = con.execute(f"SELECT line FROM {lines_sql(path)} LIMIT 1").fetchall()
    if not first or first[0][0] is None:
        return
    header = next(csv.reader([str(first[0][0]).rstrip("\r")], delimiter=_delimiter(path)))
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    con.execute(
        f"SELECT count(*) FROM read_csv({sql_string(str(path))}, header=true, "
        f"auto_detect=false, columns={{{columns}}}, {_dialect(path)})"
    ).fetchall()


def describe(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type of a source, read from its header and a sample.

    A CSV whose sample the sniffer cannot read strictly raises the error of its first
    malformed row (see :func:`csv_error`)."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql(path, fmt)}").fetchall()
    except duckdb.Error as exc:
        if fmt != "csv" or "sniffing" not in str(exc):
            raise
        _locate_csv_error(con, path)
        raise
    return {str(r[0]): str(r[1]) for r in rows}


def describe_csv_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return list(describe(con, path, "csv"))


def file_ids_sql(path: Path, column: str | None) -> str:
    """A query yielding one ``cid`` per customer id listed in a member file."""
    if column is None:
        # one id per line; blank lines and lines starting with '#' are ignored
        return (
            f"SELECT cid FROM (SELECT {LINE_ID} AS cid FROM {lines_sql(path)}) "
            "WHERE cid <> '' AND NOT starts_with(cid, '#')"
        )
    col = '"' + column.replace('"', '""') + '"'
    return (
        f"SELECT CAST({col} AS VARCHAR) AS cid FROM "
        f"{csv_sql(path, '{' + sql_string(column) + ': ' + sql_string('VARCHAR') + '}')}"
    )
