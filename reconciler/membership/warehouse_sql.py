"""The membership diff as warehouse SQL: the statements :class:`~.snowflake.SnowflakeDiff` runs
in Snowflake, and the same statements compiled for BigQuery (one builder, one design).

The desired members are ``(customer, segment, excluded)`` rows: each rule source is scanned
ONCE by the members query of :mod:`reconciler.rules` (every rule a column of that scan), the
contributions computed here (inline ids, member files, DuckDB sources) are a table sent
beside them. Grouped by customer and segment (an excluded row wins), then by customer, they
give ``wanted(cid, want)``, ``want`` the segment ids sorted and joined by ``\\x1f`` as the
snapshot holds them.

The last-applied snapshot is a table the reconciler owns, overlaid by the customers changed
since it was written (``last``). ``lists`` holds each distinct segment list of the snapshot
with its managed part (``mine``), computed here as for DuckDB: a customer changes when it must
be created, or when what it wants differs from ``mine``. The counts of the join are compared
with plain scans of its two sides, and the rows streamed back with the changes it counted.

Every statement is parsed and formatted by sqlglot in its dialect (``format_sql``): what runs
is what the golden files show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engines._warehouse import format_sql
from ..rules import BIGQUERY, SNOWFLAKE, Query, Rule, SegmentRule, SqlDialect, members_query

__all__ = [
    "BIGQUERY_DIFF",
    "LOCAL",
    "SNOWFLAKE_DIFF",
    "RuleSource",
    "Spelling",
    "Statements",
]

#: the temporary tables of one diff (a session's own: fixed names are safe)
WANTED, LAST, LISTS, OVERLAY, LOCAL = (
    "RECONCILE_WANTED",
    "RECONCILE_LAST",
    "RECONCILE_LISTS",
    "RECONCILE_OVERLAY",
    "RECONCILE_LOCAL",
)


@dataclass(frozen=True, slots=True)
class Spelling:
    """What the diff spells per warehouse beyond the rules' dialect."""

    dialect: SqlDialect
    #: the segment ids of a group sorted and joined by ``{sep}``
    agg: str
    #: the separator, ``\\x1f``
    sep: str
    #: a session's temporary table made from a query
    temp: str
    #: a session's temporary view
    view: str


SNOWFLAKE_DIFF = Spelling(
    SNOWFLAKE,
    agg="LISTAGG(seg, {sep}) WITHIN GROUP (ORDER BY seg)",
    sep="CHR(31)",
    temp="CREATE OR REPLACE TEMPORARY TABLE {name} AS ",
    view="CREATE OR REPLACE TEMPORARY VIEW {name} AS ",
)
BIGQUERY_DIFF = Spelling(
    BIGQUERY,
    agg="STRING_AGG(seg, {sep} ORDER BY seg)",
    sep="CODE_POINTS_TO_STRING([31])",
    temp="CREATE OR REPLACE TEMP TABLE {name} AS ",
    view="CREATE OR REPLACE TEMP TABLE {name} AS ",
)


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The rules over one warehouse table: (segment id, excluded?, rule) each."""

    table: str
    id_column: str
    columns: dict[str, str]
    rules: Sequence[tuple[str, bool, Rule]]


@dataclass(frozen=True, slots=True)
class Statements:
    """The diff's statements in one warehouse's SQL, formatted as they run."""

    spelling: Spelling

    def _q(self, sql: str, params: Sequence[Any] = ()) -> Query:
        return Query(format_sql(sql, self.spelling.dialect), tuple(params))

    def _ident(self, dotted: str) -> str:
        return self.spelling.dialect.ident(dotted)

    def wanted(self, sources: Sequence[RuleSource], local: bool) -> Query:
        """``wanted(cid, want)``: every customer with a desired segment (``local``: the
        ``(cid, seg, x)`` rows computed here are in :data:`LOCAL`)."""
        d, t = self.spelling.dialect, self.spelling.dialect.text_type
        parts: list[str] = []
        params: list[Any] = []
        for source in sources:
            members = members_query(
                d,
                self._ident(source.table),
                source.id_column,
                source.columns,
                [SegmentRule(str(k), rule) for k, (_, _, rule) in enumerate(source.rules)],
            )
            keys = " UNION ALL ".join(
                f"SELECT CAST(? AS {t}) AS k, CAST(? AS {t}) AS seg, CAST(? AS INTEGER) AS x"
                for _ in source.rules
            )
            parts.append(
                f"SELECT m.customer_id AS cid, r.seg, r.x FROM ({members.sql}) AS m "
                f"JOIN ({keys}) AS r ON m.segment_id = r.k"
            )
            params += members.params
            for k, (seg, exclude, _) in enumerate(source.rules):
                params += [str(k), seg, int(exclude)]
        if local:
            parts.append(f"SELECT cid, seg, x FROM {LOCAL}")
        if not parts:
            parts.append(
                f"SELECT CAST(NULL AS {t}) AS cid, CAST(NULL AS {t}) AS seg, 0 AS x FROM "
                f"(SELECT 1 AS one) AS e WHERE 1 = 0"
            )
        union = " UNION ALL ".join(f"({p})" for p in parts)
        agg = self.spelling.agg.format(sep=self.spelling.sep)
        sql = (
            f"{self.spelling.temp.format(name=WANTED)}SELECT cid, {agg} AS want FROM "
            f"(SELECT cid, seg FROM ({union}) AS c GROUP BY cid, seg HAVING MAX(x) = 0) AS p "
            "GROUP BY cid"
        )
        return self._q(sql, params)

    def last(self, snapshot: str, overlay: bool) -> Query:
        """``last(customer_id, known, segments)``: the snapshot table overlaid by
        :data:`OVERLAY` (the customers changed since it was written, when there are any)."""
        table = self._ident(snapshot)
        select = f"SELECT customer_id, known, segments FROM {table}"
        if overlay:
            select = (
                f"{select} AS f WHERE NOT EXISTS (SELECT 1 FROM {OVERLAY} AS o "
                "WHERE o.customer_id = f.customer_id) UNION ALL "
                f"SELECT customer_id, known, segments FROM {OVERLAY} "
                "WHERE known OR segments <> ''"
            )
        return self._q(self.spelling.temp.format(name=LAST) + select)

    def lists(self) -> Query:
        """The distinct segment lists of the snapshot (their managed part is found here)."""
        return self._q(f"SELECT DISTINCT segments FROM {LAST}")

    def _join(self) -> str:
        return (
            f"{WANTED} AS w FULL OUTER JOIN {LAST} AS l ON w.cid = l.customer_id "
            f"LEFT JOIN {LISTS} AS s ON s.segments = l.segments"
        )

    @staticmethod
    def _changes() -> str:
        return (
            "CASE WHEN w.cid IS NOT NULL AND NOT COALESCE(l.known, FALSE) THEN 1 "
            "WHEN COALESCE(w.want, '') = COALESCE(s.mine, '') THEN 0 ELSE 1 END"
        )

    def counts(self) -> Query:
        """The rows the join paired from each side and the changes it found, beside plain
        scans of the two sides (and the customers the snapshot knows), and the rows it holds."""
        return self._q(
            f"SELECT COUNT(w.cid), COUNT(l.customer_id), COALESCE(SUM({self._changes()}), 0), "
            f"(SELECT COUNT(*) FROM {WANTED}), (SELECT COUNT(*) FROM {LAST}), "
            f"(SELECT COALESCE(SUM(CASE WHEN known THEN 1 ELSE 0 END), 0) FROM {LAST}), "
            f"COUNT(*) FROM {self._join()}"
        )

    def pairs(self) -> Query:
        """The join's distinct (last-applied segments, desired segments) pairs and how many
        customers hold each: the per-segment sizes are counted from them (a few hundred rows
        come back, never the audience)."""
        return self._q(
            f"SELECT l.segments, w.want, COUNT(*) FROM {self._join()} GROUP BY l.segments, w.want"
        )

    def changed(self) -> Query:
        """``(cid, want)`` of every customer that changes or must be created."""
        return self._q(
            "SELECT COALESCE(w.cid, l.customer_id) AS cid, COALESCE(w.want, '') AS want "
            f"FROM {self._join()} WHERE {self._changes()} = 1"
        )

    def snapshot_table(self, table: str) -> Query:
        """The table a snapshot file is copied into."""
        t = self.spelling.dialect.text_type
        return self._q(
            f"CREATE TABLE IF NOT EXISTS {self._ident(table)} "
            f"(customer_id {t}, known BOOLEAN, segments {t})"
        )
