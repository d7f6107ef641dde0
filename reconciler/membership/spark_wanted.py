"""A Spark target's desired members as Spark SQL: one row of include and exclude bit masks
per contribution, grouped by customer once, as on DuckDB (:func:`reconciler.config.resolve`).

The contributions that do not live in Spark (inline ids, member files, DuckDB sources) are
computed in DuckDB as ``(customer, segment, excluded)`` rows and sent to Spark: they are local
and small next to a Spark table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from ..config import Config, SegmentConfig, SourceRule
from ..config._contributions import duckdb_relation, selections
from ..config._located import first_line, problem
from ..config._members import invalid_member
from ..config._sources import source_ref
from ..engines import memory
from ..engines.readers import BAD_ID, MAX_ID, file_ids_sql, temp_table
from ..exceptions import ConfigError
from ..plan.fingerprint import SEP
from ..rules import DUCKDB_SQL, SPARK, SegmentRule, compile_rule, members_query

if TYPE_CHECKING:
    import pyarrow as pa

    from ..engines import SparkEngine

__all__ = ["INVALID", "Session", "check_ids", "wanted_sql"]


#: a rule of one segment: (segment index, excluded?, rule)
_Rule = tuple[int, bool, SourceRule]


def _local_pairs(
    config: Config, segments: list[SegmentConfig], local_rules: Mapping[str, list[_Rule]]
) -> pa.Table | None:
    """``(cid, k, x)`` of the contributions computed here (``k`` the segment's index, ``x``
    excluded?): inline ids, member files and DuckDB sources (None when there are none)."""
    con = memory.connect()
    try:
        parts: list[str] = []
        params: list[Any] = []
        cids: list[str] = []
        index: list[int] = []
        excl: list[bool] = []
        for i, seg in enumerate(segments):
            for sel, exclude in selections(seg):
                cids += sel.ids
                index += [i] * len(sel.ids)
                excl += [exclude] * len(sel.ids)
                for f in sel.files:
                    parts.append(
                        f"SELECT cid, {i}::INTEGER AS k, {exclude} AS x "
                        f"FROM ({file_ids_sql(f.path, f.column)})"
                    )
        if cids:
            temp_table(
                con,
                "_ids",
                {"cid": ("VARCHAR", cids), "k": ("INTEGER", index), "x": ("BOOLEAN", excl)},
            )
            parts.append("SELECT cid, k, x FROM _ids")
        for n, (name, rules) in enumerate(local_rules.items()):
            source = config.customer_sources[name]
            keys = f"_keys_{n}"
            _keys_table(con, keys, rules)
            q = members_query(
                DUCKDB_SQL,
                duckdb_relation(source),
                source.id_column,
                source.columns,
                [SegmentRule(str(k), rule.rule) for k, (_, _, rule) in enumerate(rules)],
            )
            parts.append(
                f"SELECT m.customer_id AS cid, k.i AS k, k.x FROM ({q.sql}) AS m "
                f"JOIN {keys} AS k ON m.segment_id = k.k"
            )
            params += q.params
        if not parts:
            return None
        return con.sql(" UNION ALL ".join(parts), params=params).to_arrow_table()
    except duckdb.Error as exc:
        raise ConfigError(
            [
                problem(
                    config,
                    ("customer_sources",),
                    f"cannot compute members: {first_line(exc)}",
                )
            ]
        ) from exc
    finally:
        con.close()


def _keys_table(con: Any, name: str, rules: list[_Rule]) -> None:
    """Rule number → (segment index, excluded?)."""
    temp_table(
        con,
        name,
        {
            "k": ("VARCHAR", [str(k) for k in range(len(rules))]),
            "i": ("INTEGER", [i for i, _, _ in rules]),
            "x": ("BOOLEAN", [exclude for _, exclude, _ in rules]),
        },
    )


class Session:
    """The temporary views of one diff, dropped together."""

    def __init__(self, engine: SparkEngine) -> None:
        self.engine = engine
        self.tag = uuid.uuid4().hex[:8]
        self.views: list[str] = []
        self.cached: list[str] = []

    def name(self, kind: str) -> str:
        view = f"_{kind}_{self.tag}"
        self.views.append(view)
        return view

    def frame(self, kind: str, table: pa.Table) -> str:
        """A view of ``table``, sent to Spark as Arrow batches: the JVM reads them itself,
        where a list of Python rows would start Python workers to unpickle it."""
        view = self.name(kind)
        self.engine.session.createDataFrame(table).createOrReplaceTempView(view)
        return view

    def cache(self, kind: str, sql: str, params: Sequence[Any] = ()) -> str:
        view = self.name(kind)
        self.engine.sql(f"CACHE TABLE {view} AS {sql}", params)
        self.cached.append(view)
        return view

    def close(self) -> None:
        for view in self.cached:
            self.engine.sql(f"UNCACHE TABLE IF EXISTS {view}")
        for view in self.views:
            self.engine.session.catalog.dropTempView(view)


#: segments per mask word (Spark's BIGINT; bit 63 is the sign bit, which bit operations keep)
_WORD = 64
_ZERO = "CAST(0 AS BIGINT)"


def _bit(index: int) -> str:
    return f"shiftleft(CAST(1 AS BIGINT), {index % _WORD})"


def wanted_sql(
    config: Config, session: Session, segments: list[SegmentConfig]
) -> tuple[str, list[Any]]:
    """``(cid, want)`` of every customer with a desired segment, as Spark SQL.

    As on DuckDB (:func:`reconciler.config.resolve`), each contribution is a row of include
    and exclude bit masks, one 64-bit word per 64 segments: a rule source is scanned once,
    each of its rules a bit of that scan, and the rows are grouped by customer ONCE
    (``bit_or(i) & ~bit_or(e)``). No row per (customer, segment) is ever made or shuffled.
    """
    engine = session.engine
    words = max(1, (len(segments) + _WORD - 1) // _WORD)
    keys = [(kind, w) for kind in ("i", "e") for w in range(words)]
    on_spark: dict[str, list[_Rule]] = {}
    local: dict[str, list[_Rule]] = {}
    for index, seg in enumerate(segments):
        for sel, exclude in selections(seg):
            if sel.rule is not None:
                source = config.customer_sources[sel.rule.source]
                side = on_spark if source.engine == "spark" else local
                side.setdefault(source.name, []).append((index, exclude, sel.rule))
    parts: list[str] = []
    params: list[Any] = []
    pairs = _local_pairs(config, segments, local)
    if pairs is not None and pairs.num_rows:
        view = session.frame("local", pairs)
        cols = ", ".join(
            f"CASE WHEN {'' if kind == 'e' else 'NOT '}x AND k DIV {_WORD} = {w} "
            f"THEN shiftleft(CAST(1 AS BIGINT), k % {_WORD}) ELSE {_ZERO} END AS {kind}{w}"
            for kind, w in keys
        )
        parts.append(f"SELECT cid, {cols} FROM {view}")
    for name, rules in on_spark.items():
        source = config.customer_sources[name]
        terms: dict[tuple[str, int], list[tuple[str, list[Any]]]] = {}
        for index, exclude, rule in rules:
            predicate, args = compile_rule(rule.rule, source.columns, SPARK)
            terms.setdefault(("e" if exclude else "i", index // _WORD), []).append(
                (f"CASE WHEN {predicate} THEN {_bit(index)} ELSE {_ZERO} END", args)
            )
        exprs: list[str] = []
        for kind, w in keys:  # the parameters in the order their markers appear
            found = terms.get((kind, w), [])
            exprs.append("(" + (" | ".join(t for t, _ in found) or _ZERO) + f") AS {kind}{w}")
            params += [a for _, args in found for a in args]
        ident = SPARK.quote(source.id_column)
        nonzero = " OR ".join(f"{kind}{w} <> 0" for kind, w in keys)
        parts.append(
            f"SELECT * FROM (SELECT CAST({ident} AS STRING) AS cid, {', '.join(exprs)} "
            f"FROM {engine.relation(source_ref(source))} WHERE {ident} IS NOT NULL) AS r "
            f"WHERE {nonzero}"
        )
    if not parts:
        return "SELECT CAST(NULL AS STRING) AS cid, CAST(NULL AS STRING) AS want WHERE 1 = 0", []
    union = " UNION ALL ".join(f"({p})" for p in parts)
    masks = ", ".join(f"bit_or(i{w}) & ~bit_or(e{w}) AS m{w}" for w in range(words))
    # the segment ids in order, as DuckDB's path joins them (concat_ws skips the NULLs)
    order = sorted(range(len(segments)), key=lambda i: segments[i].id)
    want = ", ".join(f"CASE WHEN m{i // _WORD} & {_bit(i)} <> 0 THEN ? END" for i in order)
    any_set = " OR ".join(f"m{w} <> 0" for w in range(words))
    return (
        f"SELECT cid, concat_ws(char(31), {want}) AS want FROM "
        f"(SELECT cid, {masks} FROM ({union}) AS c GROUP BY cid) AS g WHERE {any_set}",
        [*(segments[i].id for i in order), *params],
    )


#: a member id DuckDB's path refuses too (one ``?``: the pattern of forbidden characters)
INVALID = f"cid IS NULL OR cid = '' OR length(cid) > {MAX_ID} OR cid RLIKE ?"


def check_ids(
    config: Config, engine: SparkEngine, wanted: str, segments: list[SegmentConfig]
) -> None:
    """The same refusal as DuckDB's for member ids that are empty, too long or hold spaces or
    control characters (Java's regex reads the pattern as RE2 does)."""
    bad = engine.sql(
        f"SELECT cid, want FROM {wanted} WHERE {INVALID} ORDER BY cid NULLS FIRST LIMIT 20",
        [BAD_ID],
    ).collect()
    by_id = {s.id: s for s in segments}
    raise ConfigError(
        [invalid_member(config, by_id[str(want).split(SEP)[0]], cid) for cid, want in bad]
    )
