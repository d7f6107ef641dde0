"""How DuckDB reads customer sources and member files (the only place that spells readers)."""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = [
    "describe",
    "describe_csv_columns",
    "file_ids_sql",
    "source_format",
    "source_sql",
    "sql_string",
]

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
