"""The membership diff of a target whose members come from Spark, run in Spark.

Streaming a hundred million member rows out of Spark to diff them here is the design this
module replaces. The last-applied snapshot (the state store's Parquet file, or its copy under
``spark.snapshot`` where the cluster can read it) is joined in Spark with the desired members,
and only the customers whose managed segments change (or who must be created) come back, each
with the segments it should have. The joins are the same as DuckDB's
(:mod:`reconciler.targeted`), and so is the cross-check by counts: the rows the join paired
from each side must equal plain scans of the two tables, and the rows streamed back must equal
the changes it counted, or the plan is refused.

A target's contributions that do not live in Spark (inline ids, member files, DuckDB sources)
are computed here, in DuckDB, as ``(customer, segment, excluded)`` rows and sent to Spark:
they are local and small next to a Spark table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..exceptions import ConfigError, PlanError
from ..model import State
from ..plan.fingerprint import SEP
from ._model import Config, SegmentConfig, SourceRule
from ._resolve import (
    _BAD_ID,
    _MAX_ID,
    _check_files,
    _duckdb_relation,
    _first_line,
    _invalid_member,
    _problem,
    _select_targets,
    _selections,
    _skeleton,
)
from ._sources import file_ids_sql, source_ref, spark_engine, temp_table

if TYPE_CHECKING:
    import pyarrow as pa

    from ..engines import SparkEngine

__all__ = ["SparkDiff", "spark_diff", "spark_snapshot", "uses_spark"]

#: a rule of one segment: (segment index, excluded?, rule)
_Rule = tuple[int, bool, SourceRule]


@dataclass(frozen=True, slots=True)
class SparkDiff:
    """What Spark found for one target."""

    #: the target's segments and access lists (the small part of its desired State)
    skeleton: State
    #: (customer id, its wanted segments sorted and joined by ``\\x1f``, '' for none), sorted
    changed: list[tuple[str, str]]
    #: customers the snapshot knows to exist
    known: int
    #: customers with at least one desired segment
    wanted: int


def _target_segments(config: Config, target: str) -> list[SegmentConfig]:
    (name,) = _select_targets(config, [target])
    return [s for s in config.segments if name in s.targets]


def uses_spark(config: Config, target: str) -> bool:
    """Whether a rule of one of ``target``'s segments runs on Spark."""
    return any(
        sel.rule is not None and config.customer_sources[sel.rule.source].engine == "spark"
        for seg in _target_segments(config, target)
        for sel, _ in _selections(seg)
    )


def spark_snapshot(config: Config, local: Path) -> str | None:
    """Where Spark reads the snapshot file ``local``: its copy under ``spark.snapshot`` (made
    when missing), the file itself for a local master, or None (a remote master without
    ``spark.snapshot`` cannot see the state store's folder)."""
    settings = config.spark
    if settings is None:
        return None
    if settings.snapshot is None:
        return None if settings.remote else str(local)
    return _mirror(local, settings.snapshot)


def _mirror(local: Path, location: str) -> str:
    """Copy ``local`` to ``location`` under the same (unique per checkpoint) name, once; keep
    the previous copy of the same target (a plan may still read it) and remove older ones."""
    from pyarrow import fs

    uri = "://" in location
    try:
        if uri:
            # pyarrow spells Hadoop's s3a:// as s3://; Spark reads the URI as configured
            filesystem, base = fs.FileSystem.from_uri(location.replace("s3a://", "s3://", 1))
        else:
            filesystem, base = fs.LocalFileSystem(), str(Path(location).resolve())
        base = base.rstrip("/")
        dest = f"{base}/{local.name}"
        if filesystem.get_file_info(dest).type == fs.FileType.NotFound:
            filesystem.create_dir(base, recursive=True)
            partial = f"{base}/.{local.name}.{uuid.uuid4().hex[:8]}.partial"
            fs.copy_files(
                str(local.resolve()),
                partial,
                source_filesystem=fs.LocalFileSystem(),
                destination_filesystem=filesystem,
            )
            filesystem.move(partial, dest)  # a reader sees the whole file or none
        key = local.name.rsplit(".", 2)[0]  # the target's key, before ".<pid>-<ns>.parquet"
        others = [
            info
            for info in filesystem.get_file_info(fs.FileSelector(base))
            if info.is_file
            and info.base_name != local.name
            and info.base_name.startswith(key + ".")
            and info.base_name.endswith(".parquet")
        ]
        others.sort(key=lambda info: info.mtime_ns or 0)
        for info in others[:-1]:
            filesystem.delete_file(info.path)
    except (OSError, ValueError) as exc:  # pyarrow's filesystem errors are OSErrors
        raise PlanError(
            f"cannot copy the snapshot to spark.snapshot ({location}): {_first_line(exc)}"
        ) from exc
    return dest if not uri else f"{location.rstrip('/')}/{local.name}"


def _local_pairs(
    config: Config, segments: list[SegmentConfig], local_rules: Mapping[str, list[_Rule]]
) -> pa.Table | None:
    """``(cid, k, x)`` of the contributions computed here (``k`` the segment's index, ``x``
    excluded?): inline ids, member files and DuckDB sources (None when there are none)."""
    from ..engines import SegmentRule
    from ..engines._sql import DUCKDB_SQL, members_query

    con = duckdb.connect(":memory:")
    try:
        parts: list[str] = []
        params: list[Any] = []
        cids: list[str] = []
        index: list[int] = []
        excl: list[bool] = []
        for i, seg in enumerate(segments):
            for sel, exclude in _selections(seg):
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
                _duckdb_relation(source),
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
                _problem(
                    config,
                    ("customer_sources",),
                    f"cannot compute members: {_first_line(exc)}",
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


#: the managed part of a last-applied row's segments (sorted, joined): Spark's spelling of
#: :data:`reconciler.targeted._MINE`; ``{managed}`` is an array of the managed segment ids
_MINE = (
    "coalesce(array_join(array_sort(array_intersect(split(l.segments, char(31)), {managed})), "
    "char(31)), '')"
)
_CHANGES = (
    "CASE WHEN w.cid IS NOT NULL AND NOT coalesce(l.known, false) THEN 1 "
    "WHEN coalesce(w.want, '') = coalesce(l.segments, '') THEN 0 "
    "WHEN coalesce(w.want, '') <> " + _MINE + " THEN 1 ELSE 0 END"
)


class _Session:
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

    def frame(self, kind: str, rows: Any, schema: str | None = None) -> str:
        view = self.name(kind)
        self.engine.session.createDataFrame(rows, schema).createOrReplaceTempView(view)
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


def _wanted_sql(
    config: Config, session: _Session, segments: list[SegmentConfig]
) -> tuple[str, list[Any]]:
    """``(cid, want)`` of every customer with a desired segment, as Spark SQL.

    As on DuckDB (:mod:`reconciler.config._resolve`), each contribution is a row of include
    and exclude bit masks, one 64-bit word per 64 segments: a rule source is scanned once,
    each of its rules a bit of that scan, and the rows are grouped by customer ONCE
    (``bit_or(i) & ~bit_or(e)``). No row per (customer, segment) is ever made or shuffled.
    """
    from ._rules import SPARK, compile_rule

    engine = session.engine
    words = max(1, (len(segments) + _WORD - 1) // _WORD)
    keys = [(kind, w) for kind in ("i", "e") for w in range(words)]
    on_spark: dict[str, list[_Rule]] = {}
    local: dict[str, list[_Rule]] = {}
    for index, seg in enumerate(segments):
        for sel, exclude in _selections(seg):
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
_INVALID = f"cid IS NULL OR cid = '' OR length(cid) > {_MAX_ID} OR cid RLIKE ?"


def _check_ids(
    config: Config, engine: SparkEngine, wanted: str, segments: list[SegmentConfig]
) -> None:
    """The same refusal as DuckDB's for member ids that are empty, too long or hold spaces or
    control characters (Java's regex reads the pattern as RE2 does)."""
    bad = engine.sql(
        f"SELECT cid, want FROM {wanted} WHERE {_INVALID} ORDER BY cid NULLS FIRST LIMIT 20",
        [_BAD_ID],
    ).collect()
    by_id = {s.id: s for s in segments}
    raise ConfigError(
        [_invalid_member(config, by_id[str(want).split(SEP)[0]], cid) for cid, want in bad]
    )


def _managed_array(managed: Sequence[str]) -> str:
    if not managed:
        return "CAST(array() AS ARRAY<STRING>)"
    return "array(" + ", ".join("?" for _ in managed) + ")"


def spark_diff(
    config: Config,
    target: str,
    snapshot: str,
    overlay: Mapping[str, tuple[bool, str]],
    managed: Sequence[str],
) -> SparkDiff:
    """The customers of ``target`` whose managed segments change, found by Spark.

    ``snapshot``: where Spark reads the last-applied file (see :func:`spark_snapshot`);
    ``overlay``: the customers changed since it was written (they win over its rows);
    ``managed``: the segment ids last applied (the target's own count too).
    """
    segments = _target_segments(config, target)
    _check_files(config, segments)
    skeleton = _skeleton(segments, [s.id for s in segments], list(range(len(segments))))
    managed = sorted(set(skeleton.segments) | set(managed))
    assert config.spark is not None
    engine = spark_engine(config.spark)
    session = _Session(engine)
    try:
        sql, params = _wanted_sql(config, session, segments)
        wanted = session.cache("wanted", sql, params)
        over = session.frame(
            "overlay",
            [(cid, known, segs) for cid, (known, segs) in overlay.items()],
            "customer_id string, known boolean, segments string",
        )
        last = session.name("last")
        engine.sql(
            "SELECT customer_id, known, segments FROM parquet.`"
            + snapshot.replace("`", "``")
            + f"` AS f WHERE NOT EXISTS (SELECT 1 FROM {over} AS o "
            "WHERE o.customer_id = f.customer_id) "
            f"UNION ALL SELECT customer_id, known, segments FROM {over} "
            "WHERE known OR segments <> ''"
        ).createOrReplaceTempView(last)
        join = f"{wanted} AS w FULL OUTER JOIN {last} AS l ON w.cid = l.customer_id"
        changes = _CHANGES.format(managed=_managed_array(managed))
        row = engine.sql(
            f"SELECT count(w.cid), count(l.customer_id), coalesce(sum({changes}), 0), "
            f"(SELECT count(*) FROM {wanted}), (SELECT count(*) FROM {last}), "
            f"(SELECT count_if(known) FROM {last}), "
            f"(SELECT count(*) FROM {wanted} WHERE {_INVALID}) FROM {join}",
            [*managed, _BAD_ID],
        ).collect()[0]
        w_join, l_join, counted, w_scan, l_scan, known, invalid = (int(v) for v in row)
        if invalid:
            _check_ids(config, engine, wanted, segments)
        if (w_join, l_join) != (w_scan, l_scan):
            raise PlanError(
                "the membership diff on Spark does not add up, refusing to plan: the join "
                f"paired {w_join} desired and {l_join} last-applied customers, but the tables "
                f"hold {w_scan} and {l_scan}"
            )
        changed = _rows(
            engine,
            f"SELECT coalesce(w.cid, l.customer_id) AS cid, coalesce(w.want, '') AS want "
            f"FROM {join} WHERE {changes} = 1",
            list(managed),
        )
        if len(changed) != counted:
            raise PlanError(
                f"the membership diff on Spark does not add up, refusing to plan: it counted "
                f"{counted} changed customers but streamed back {len(changed)}"
            )
    except PlanError as exc:
        raise PlanError(f"target {target}: {_first_line(exc)}") from exc
    finally:
        session.close()
    changed.sort()
    return SparkDiff(skeleton, changed, known, w_scan)


def _rows(engine: SparkEngine, sql: str, params: Sequence[Any]) -> list[tuple[str, str]]:
    """The two text columns of ``sql``'s rows, collected as Arrow (several times faster than
    Spark's row iterators)."""
    try:
        table = engine.sql(sql, params).toArrow()
    except PlanError:
        raise
    except Exception as exc:  # py4j / grpc errors carry no common base
        raise PlanError(f"engine spark: {_first_line(exc)}") from exc
    return list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
