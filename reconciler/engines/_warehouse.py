"""Warehouse SQL (Snowflake, BigQuery): the same members query, compiled to the dialect,
checked and formatted by sqlglot, to be run by the warehouse's own client (Snowflake's:
:mod:`._snowflake`; the membership diff's statements are
:mod:`reconciler.membership.warehouse_sql`'s, formatted here too).

The semantics come from :mod:`reconciler.rules` (one operator table, ``matches`` spelled per
dialect, the pattern re-spelled per regex flavour); sqlglot only parses each statement in its
dialect (a template typo fails here, not in the warehouse) and formats it. It is never asked
to translate meaning: ``sqlglot.transpile`` turns DuckDB's find-anywhere ``regexp_matches``
into Snowflake's whole-value ``REGEXP_LIKE`` (measured with sqlglot 30.30.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..exceptions import PlanError
from ..rules import DIALECTS, Query, SegmentRule, SqlDialect, members_query

__all__ = ["compile_members", "format_sql"]


def format_sql(sql: str, dialect: SqlDialect) -> str:
    """``sql`` parsed in ``dialect`` and pretty-printed back to it (raises PlanError)."""
    try:
        import sqlglot
        from sqlglot.errors import ParseError
    except ImportError as exc:  # pragma: no cover - the warehouse extra
        raise PlanError(
            "warehouse SQL needs sqlglot: pip install 'audience-reconciler[warehouse]'"
        ) from exc
    try:
        return sqlglot.transpile(sql, read=dialect.sqlglot, write=dialect.sqlglot, pretty=True)[0]
    except ParseError as exc:
        raise PlanError(f"{dialect.name}: generated SQL does not parse: {exc}") from exc


def _dialect(name: str) -> SqlDialect:
    if name not in ("snowflake", "bigquery", "spark", "duckdb"):
        raise PlanError(f"unknown SQL dialect {name!r}")
    return DIALECTS[name]


def compile_members(
    dialect: str,
    table: str,
    id_column: str,
    columns: Mapping[str, str],
    segments: Sequence[SegmentRule],
) -> Query:
    """The members query over ``table`` in ``dialect``, formatted."""
    d = _dialect(dialect)
    q = members_query(d, d.ident(table), id_column, columns, segments)
    return Query(format_sql(q.sql, d), q.params)
