"""The membership diff of a target whose members come from Snowflake, run in Snowflake: the
:class:`~reconciler.membership.diff.MembershipDiff` of :class:`SnowflakeDiff`.

The last-applied snapshot is kept as a table the reconciler owns, in the schema the config
names (``snowflake.snapshot_schema``): each checkpoint of the state store (written only with
what the platforms acknowledged) is copied there once, under a name of its own, and the
customers changed since are sent with each plan as a temporary table that wins over its rows
(the overlay rule of the local snapshot). The desired members are computed there by the rule
compiler's SQL, joined with the snapshot, and only the customers whose managed segments change
come back, as Arrow batches, each with the segments it should have. The statements are
:mod:`.warehouse_sql`'s (the golden files show them, for BigQuery too); the cross-checks are
DuckDB's and Spark's: the rows the join paired from each side against plain scans of the two
tables, the rows streamed back against the changes it counted.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..config._contributions import selections
from ..config._located import first_line, target_segments
from ..config._members import check_files, invalid_member
from ..config._resolve import skeleton
from ..config._sources import snowflake_engine
from ..engines.readers import MAX_ID
from ..exceptions import ConfigError, PlanError
from ..model import State
from ..plan.fingerprint import SEP
from ..statestore import Snapshot
from .diff import DiffRows, MembershipDiff, checked_pairs
from .spark import SparkChanges, _pushed
from .spark_wanted import _local_pairs
from .warehouse_sql import LISTS, LOCAL, OVERLAY, SNOWFLAKE_DIFF, RuleSource, Statements

if TYPE_CHECKING:
    from ..config._model import SnowflakeSettings
    from ..engines import SnowflakeEngine

__all__ = ["SnowflakeDiff", "rule_engines", "snapshot_table", "snowflake_diff", "uses_snowflake"]

#: what the diff in Snowflake found: the changes (cid, want), the customers known and wanted,
#: and the (last-applied segments, desired segments) pairs with their counts
_Found = tuple[list[tuple[str, str]], int, int, list[tuple[str | None, str | None, int]]]

#: the snapshot tables' names start so, followed by the target's key and the checkpoint's
PREFIX = "RECONCILE_SNAPSHOT_"
_TEXT = {"customer_id": "VARCHAR", "known": "BOOLEAN", "segments": "VARCHAR"}


def rule_engines(config: Config, target: str) -> set[str]:
    """The engines the rules of ``target``'s segments run on."""
    return {
        config.customer_sources[sel.rule.source].engine
        for seg in target_segments(config, target)
        for sel, _ in selections(seg)
        if sel.rule is not None
    }


def uses_snowflake(config: Config, target: str) -> bool:
    """Whether the rules of ``target`` run on Snowflake (and on no Spark source: a target
    whose rules run on both is diffed here, its members streamed back from each)."""
    engines = rule_engines(config, target)
    return "snowflake" in engines and "spark" not in engines


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", text).upper()


def snapshot_table(settings: SnowflakeSettings, local: Path) -> str:
    """The table of ``snapshot_schema`` that holds the snapshot file ``local``, one per
    checkpoint: ``<target key>.<pid>-<ns>.parquet`` becomes ``PREFIX<KEY>__<PID>_<NS>``."""
    key, _, checkpoint = local.name.removesuffix(".parquet").partition(".")
    return f"{settings.snapshot_schema}.{PREFIX}{_safe(key)}__{_safe(checkpoint)}"


def _mirror(engine: SnowflakeEngine, statements: Statements, table: str, local: Path) -> None:
    """Copy the snapshot file ``local`` into ``table`` unless it is there: loaded aside and
    checked, then renamed (a reader sees the whole table or none). The previous checkpoint's
    table stays (a plan may still read it); older ones of the target are dropped."""
    import pyarrow.parquet as pq

    schema, name = table.rsplit(".", 1)
    key = name.rsplit("__", 1)[0] + "__"  # the target's tables: its key, then a checkpoint
    mine = re.compile(re.escape(key) + r"(\d+)_(\d+)")
    ident = engine.dialect.ident
    engine.fetch(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    pattern = key + "%"  # its _ match any character: the names are matched here
    found: dict[str, tuple[int, int]] = {}
    for row in engine.fetch(f"SHOW TABLES LIKE '{pattern}' IN SCHEMA {ident(schema)}"):
        match = mine.fullmatch(str(row[1]).upper())
        if match is not None:
            found[match.group(0)] = (int(match.group(2)), int(match.group(1)))
    if name not in found:
        loading = f"{schema}.{PREFIX}LOADING_{uuid.uuid4().hex.upper()}"
        q = statements.snapshot_table(loading)
        engine.fetch(q.sql, q.params)
        try:
            engine.put_parquet(local, loading)  # plain names: a quoted table stage is not read
            ((rows,),) = engine.fetch(f"SELECT COUNT(*) FROM {ident(loading)}")
            expected = pq.ParquetFile(local).metadata.num_rows
            if int(rows) != expected:
                raise PlanError(
                    f"engine snowflake: the snapshot copied into {table} holds {rows} rows, "
                    f"its file {expected}"
                )
            engine.fetch(f"ALTER TABLE {ident(loading)} RENAME TO {ident(table)}")
        except PlanError:
            engine.fetch(f"DROP TABLE IF EXISTS {ident(loading)}")
            if not _listed(engine, schema, name):  # else a plan beside this one copied it first
                raise
    older = sorted((t for t in found if t != name), key=found.__getitem__)
    for stale in older[:-1]:
        engine.fetch(f"DROP TABLE IF EXISTS {ident(schema + '.' + stale)}")


def _listed(engine: SnowflakeEngine, schema: str, name: str) -> bool:
    rows = engine.fetch(f"SHOW TABLES LIKE '{name}' IN SCHEMA {engine.dialect.ident(schema)}")
    return any(str(row[1]).upper() == name for row in rows)


def _invalid(cid: str | None) -> bool:
    """A member id the DuckDB path refuses too: empty, too long, or holding whitespace or a
    control character."""
    if not cid or len(cid) > MAX_ID:
        return True
    return any(unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cc") for ch in cid)


def _rule_sources(
    config: Config, segments: list[Any]
) -> tuple[list[RuleSource], dict[str, list[tuple[int, bool, Any]]]]:
    """The rules run on Snowflake (per table) and the others (per DuckDB source)."""
    remote: dict[str, list[tuple[str, bool, Any]]] = {}
    local: dict[str, list[tuple[int, bool, Any]]] = {}
    for index, seg in enumerate(segments):
        for sel, exclude in selections(seg):
            if sel.rule is None:
                continue
            source = config.customer_sources[sel.rule.source]
            if source.engine == "snowflake":
                remote.setdefault(source.name, []).append((seg.id, exclude, sel.rule.rule))
            else:
                local.setdefault(source.name, []).append((index, exclude, sel.rule))
    sources = []
    for name, rules in remote.items():
        source = config.customer_sources[name]
        assert source.table is not None
        sources.append(RuleSource(source.table, source.id_column, dict(source.columns), rules))
    return sources, local


def snowflake_diff(
    config: Config,
    target: str,
    snapshot: Snapshot,
    managed: Sequence[str],
) -> SparkChanges:
    """The customers of ``target`` whose managed segments change, found in Snowflake
    (``managed``: the segment ids last applied)."""
    segments = target_segments(config, target)
    check_files(config, segments)
    skel = skeleton(segments, [s.id for s in segments], list(range(len(segments))))
    mine = set(skel.segments) | set(managed)
    sources, local_rules = _rule_sources(config, segments)
    pairs = _local_pairs(config, segments, local_rules)
    settings = config.snowflake
    assert settings is not None
    statements = Statements(SNOWFLAKE_DIFF)
    try:
        engine = snowflake_engine(settings)
        try:
            local = pairs is not None and pairs.num_rows > 0
            if local and pairs is not None:
                rows = zip(
                    pairs.column("cid").to_pylist(),
                    (segments[k].id for k in pairs.column("k").to_pylist()),
                    (int(x) for x in pairs.column("x").to_pylist()),
                    strict=True,
                )
                engine.load(LOCAL, {"cid": "VARCHAR", "seg": "VARCHAR", "x": "INTEGER"}, list(rows))
            _run(engine, statements.wanted(sources, local))
            table = snapshot_table(settings, snapshot.path)
            _mirror(engine, statements, table, snapshot.path)
            _last(engine, statements, table, snapshot.overlay, mine)
            found = _found(engine, statements)
        finally:
            engine.close()
    except PlanError as exc:
        raise PlanError(f"target {target}: {first_line(exc)}") from exc
    return _checked(config, segments, skel, found)


def _run(engine: SnowflakeEngine, query: Any) -> list[tuple[Any, ...]]:
    return engine.fetch(query.sql, query.params)


def _last(
    engine: SnowflakeEngine,
    statements: Statements,
    table: str,
    overlay: Mapping[str, tuple[bool, str]],
    managed: set[str],
) -> None:
    """``last`` (the snapshot overlaid) and ``lists`` (its segment lists' managed part)."""
    if overlay:
        engine.load(OVERLAY, _TEXT, [(cid, k, s) for cid, (k, s) in overlay.items()])
    _run(engine, statements.last(table, bool(overlay)))
    lists = [str(r[0] or "") for r in _run(engine, statements.lists())]
    engine.load(
        LISTS,
        {"segments": "VARCHAR", "mine": "VARCHAR"},
        [
            (joined, SEP.join(sorted(s for s in joined.split(SEP) if s in managed)))
            for joined in lists
        ],
    )


def _found(engine: SnowflakeEngine, statements: Statements) -> _Found:
    """The changed customers, cross-checked; the customers known and wanted; the pairs the
    per-segment sizes are counted from (cross-checked against the join's rows)."""
    import pyarrow as pa

    counts = _run(engine, statements.counts())[0]
    w_join, l_join, counted, w_scan, l_scan, known, joined = (int(v) for v in counts)
    if (w_join, l_join) != (w_scan, l_scan):
        raise PlanError(
            "the membership diff on Snowflake does not add up, refusing to plan: the join "
            f"paired {w_join} desired and {l_join} last-applied customers, but the tables "
            f"hold {w_scan} and {l_scan}"
        )
    q = statements.changed()
    schema = pa.schema([("cid", pa.string()), ("want", pa.string())])
    changed: list[tuple[str, str]] = []
    for batch in engine.arrow(q.sql, q.params, schema):
        changed += zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
    if len(changed) != counted:
        raise PlanError(
            "the membership diff on Snowflake does not add up, refusing to plan: it counted "
            f"{counted} changed customers but streamed back {len(changed)}"
        )
    pairs = [(s, w, int(n)) for s, w, n in _run(engine, statements.pairs())]
    return changed, known, w_scan, checked_pairs(pairs, joined, "Snowflake")


def _checked(config: Config, segments: list[Any], skel: State, found: _Found) -> SparkChanges:
    """The changes, once their member ids are valid (as the DuckDB path refuses them)."""
    changed, known, wanted, pairs = found
    by_id = {s.id: s for s in segments}
    bad = sorted((cid for cid, want in changed if want and _invalid(cid)), key=str)[:20]
    if bad:
        want = dict(changed)
        raise ConfigError([invalid_member(config, by_id[want[c].split(SEP)[0]], c) for c in bad])
    changed.sort()
    return SparkChanges(skel, changed, known, wanted, pairs)


class SnowflakeDiff(MembershipDiff):
    """The changes found in Snowflake (:func:`snowflake_diff`); their last-applied rows and
    the sample from the snapshot in DuckDB, as for Spark."""

    def __init__(
        self, config: Config, target: str, snapshot: Snapshot, managed: Sequence[str]
    ) -> None:
        self.config = config
        self.target = target
        self.snapshot = snapshot
        self.managed = sorted(managed)
        self._found: SparkChanges | None = None

    def desired(self, con: Any) -> State:
        self._found = snowflake_diff(self.config, self.target, self.snapshot, self.managed)
        return self._found.skeleton

    def rows(
        self,
        con: Any,
        managed: Sequence[str],
        sample: int,
        salt: int,
        known: int,
        include: Sequence[str] = (),
    ) -> DiffRows:
        assert self._found is not None, "desired() first"
        return _pushed(con, self._found, list(managed), sample, salt, known, include)
