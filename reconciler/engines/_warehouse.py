"""Warehouse SQL (Snowflake, BigQuery): the same members query and diff, compiled to the
dialect, checked and formatted by sqlglot, to be run by the warehouse's own client.

The semantics come from this package (one operator table, ``matches`` spelled per dialect, the
pattern re-spelled per regex flavour); sqlglot only parses each statement in its dialect (a
template typo fails here, not in the warehouse) and formats it. It is never asked to translate
meaning: ``sqlglot.transpile`` turns DuckDB's find-anywhere ``regexp_matches`` into Snowflake's
whole-value ``REGEXP_LIKE`` (measured with sqlglot 30.30.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..exceptions import PlanError
from ._sql import (
    DIALECTS,
    Query,
    SegmentRule,
    SqlDialect,
    diff_queries,
    distinct_pairs,
    members_query,
)

__all__ = ["WarehouseScript", "compile_diff", "compile_members", "format_sql"]


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


@dataclass(frozen=True, slots=True)
class WarehouseScript:
    """Statements to run in order in one warehouse session; ``adds``/``removes`` stream back."""

    desired: Query
    counts: Query
    adds: Query
    removes: Query

    def statements(self) -> list[tuple[str, Query]]:
        return [
            ("desired", self.desired),
            ("counts", self.counts),
            ("adds", self.adds),
            ("removes", self.removes),
        ]


def compile_diff(
    dialect: str,
    table: str,
    id_column: str,
    columns: Mapping[str, str],
    segments: Sequence[SegmentRule],
    snapshot_table: str,
    *,
    work_table: str = "reconcile_desired",
) -> WarehouseScript:
    """Materialise the desired pairs, count, then the two anti-joins against the snapshot."""
    d = _dialect(dialect)
    q = members_query(d, d.ident(table), id_column, columns, segments)
    desired = d.temp_table.format(name=d.ident(work_table), select=distinct_pairs(q.sql))
    snap = f"(SELECT DISTINCT customer_id, segment_id FROM {d.ident(snapshot_table)})"
    dq = diff_queries(d.ident(work_table), snap)
    return WarehouseScript(
        Query(format_sql(desired, d), q.params),
        Query(format_sql(dq.counts.sql, d)),
        Query(format_sql(dq.adds.sql, d)),
        Query(format_sql(dq.removes.sql, d)),
    )
