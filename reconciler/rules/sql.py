"""The members query every engine runs, built once from the rule tree and spelled per dialect.

Members of every segment of one source: one scan computing every segment's predicate
(``include AND NOT exclude``, each a never-null predicate from
:func:`~reconciler.rules.compile_rule`) as a boolean column, crossed with a tiny table of
segment ids, yielding ``(customer_id, segment_id)`` as text.

Every value (segment ids included) is a ``?`` parameter: string-literal escaping differs between
dialects (Snowflake, BigQuery and Spark read backslashes in literals), parameters do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .language import DUCKDB, SPARK, Dialect, Rule, compile_rule

__all__ = [
    "BIGQUERY",
    "DIALECTS",
    "DUCKDB_SQL",
    "SNOWFLAKE",
    "SPARK_SQL",
    "Query",
    "SegmentRule",
    "SqlDialect",
    "members_query",
]


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """The rule part of one segment's membership: ``include`` minus ``exclude``."""

    segment_id: str
    include: Rule
    exclude: Rule | None = None


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """A rule :class:`Dialect` plus the few statement-level spellings a members query needs."""

    rules: Dialect
    text_type: str
    #: the name sqlglot knows this dialect by (formatting and syntax checks)
    sqlglot: str

    @property
    def name(self) -> str:
        return self.rules.name

    def ident(self, dotted: str) -> str:
        """A possibly qualified name (``db.schema.table``), each part quoted."""
        return ".".join(self.rules.quote(part) for part in dotted.split("."))


#: Snowflake: REGEXP_LIKE / RLIKE match the WHOLE value; REGEXP_INSTR finds anywhere.
_SNOWFLAKE_RULES = Dialect(
    name="snowflake", matches="REGEXP_INSTR({col}, {val}) > 0", flavor="posix"
)
#: BigQuery: REGEXP_CONTAINS finds anywhere (RE2).
_BIGQUERY_RULES = Dialect(
    name="bigquery", matches="REGEXP_CONTAINS({col}, {val})", flavor="re2", quote_char="`"
)

DUCKDB_SQL = SqlDialect(DUCKDB, "VARCHAR", "duckdb")
SPARK_SQL = SqlDialect(SPARK, "STRING", "spark")
SNOWFLAKE = SqlDialect(_SNOWFLAKE_RULES, "VARCHAR", "snowflake")
BIGQUERY = SqlDialect(_BIGQUERY_RULES, "STRING", "bigquery")

DIALECTS: Mapping[str, SqlDialect] = {
    d.name: d for d in (DUCKDB_SQL, SPARK_SQL, SNOWFLAKE, BIGQUERY)
}


def members_query(
    dialect: SqlDialect,
    relation: str,
    id_column: str,
    columns: Mapping[str, str],
    segments: Sequence[SegmentRule],
) -> Query:
    """``(customer_id, segment_id)`` for every segment's members in ``relation`` (a FROM item).

    ONE scan of the source: every segment's predicate is a boolean column ``s<i>`` of that scan,
    joined to a tiny table of segment numbers and ids, kept where ``s<i>`` holds.
    """
    t = dialect.text_type
    if not segments:
        return Query(
            f"SELECT CAST(NULL AS {t}) AS customer_id, CAST(NULL AS {t}) AS segment_id WHERE 1 = 0"
        )
    ident = dialect.rules.quote(id_column)
    flags: list[str] = []
    params: list[Any] = []
    for i, seg in enumerate(segments):
        where, args = compile_rule(seg.include, columns, dialect.rules)
        if seg.exclude is not None:
            excl, more = compile_rule(seg.exclude, columns, dialect.rules)
            where = f"({where} AND NOT {excl})"
            args = [*args, *more]
        flags.append(f"{where} AS s{i}")
        params += args
    seg_rows = " UNION ALL ".join(
        f"SELECT {i} AS i, CAST(? AS {t}) AS segment_id" for i in range(len(segments))
    )
    params += [seg.segment_id for seg in segments]
    pick = " ".join(f"WHEN {i} THEN f.s{i}" for i in range(len(segments)))
    sql = (
        f"SELECT f.customer_id, g.segment_id FROM "
        f"(SELECT CAST({ident} AS {t}) AS customer_id, {', '.join(flags)} FROM {relation} "
        f"WHERE {ident} IS NOT NULL) AS f "
        f"CROSS JOIN ({seg_rows}) AS g "
        f"WHERE CASE g.i {pick} ELSE FALSE END"
    )
    return Query(sql, tuple(params))
