"""The membership diff of a target whose members come from Spark, run in Spark: the
:class:`~reconciler.membership.diff.MembershipDiff` of :class:`SparkDiff`.

Streaming a hundred million member rows out of Spark to diff them here is the design this
module replaces. The last-applied snapshot (the state store's Parquet file, or its copy under
``spark.snapshot`` where the cluster can read it) is joined in Spark with the desired members,
and only the customers whose managed segments change (or who must be created) come back, each
with the segments it should have. The joins are the same as DuckDB's
(:mod:`reconciler.membership.duckdb`), and so is the cross-check by counts: the rows the join paired
from each side must equal plain scans of the two tables, and the rows streamed back must equal
the changes it counted, or the plan is refused.

The desired members' SQL is :mod:`.spark_wanted`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..config._contributions import selections
from ..config._located import first_line, target_segments
from ..config._members import check_files
from ..config._resolve import skeleton
from ..config._sources import spark_engine
from ..engines.readers import BAD_ID, temp_table
from ..exceptions import PlanError
from ..model import State
from .diff import (
    ABSENT,
    DiffRows,
    MembershipDiff,
    Row,
    checked_pairs,
    include_table,
    pick,
    sample_limit,
)
from .spark_wanted import INVALID, Session, check_ids, wanted_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from ..engines import SparkEngine

__all__ = ["SparkChanges", "SparkDiff", "spark_diff", "spark_snapshot", "uses_spark"]


@dataclass(frozen=True, slots=True)
class SparkChanges:
    """What Spark found for one target."""

    #: the target's segments and access lists (the small part of its desired State)
    skeleton: State
    #: (customer id, its wanted segments sorted and joined by ``\\x1f``, '' for none), sorted
    changed: list[tuple[str, str]]
    #: customers the snapshot knows to exist
    known: int
    #: customers with at least one desired segment
    wanted: int
    #: the join's distinct (last-applied segments, desired segments) pairs and their counts
    pairs: list[tuple[str | None, str | None, int]] = field(default_factory=list)


def uses_spark(config: Config, target: str) -> bool:
    """Whether a rule of one of ``target``'s segments runs on Spark."""
    return any(
        sel.rule is not None and config.customer_sources[sel.rule.source].engine == "spark"
        for seg in target_segments(config, target)
        for sel, _ in selections(seg)
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
            f"cannot copy the snapshot to spark.snapshot ({location}): {first_line(exc)}"
        ) from exc
    return dest if not uri else f"{location.rstrip('/')}/{local.name}"


#: the managed part of a last-applied row's segments (sorted, joined): Spark's spelling of
#: :data:`_MINE_HERE` (the DuckDB side of this diff); ``{managed}``: an array of managed ids
_MINE = (
    "coalesce(array_join(array_sort(array_intersect(split(l.segments, char(31)), {managed})), "
    "char(31)), '')"
)
_CHANGES = (
    "CASE WHEN w.cid IS NOT NULL AND NOT coalesce(l.known, false) THEN 1 "
    "WHEN coalesce(w.want, '') = coalesce(l.segments, '') THEN 0 "
    "WHEN coalesce(w.want, '') <> " + _MINE + " THEN 1 ELSE 0 END"
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
) -> SparkChanges:
    """The customers of ``target`` whose managed segments change, found by Spark.

    ``snapshot``: where Spark reads the last-applied file (see :func:`spark_snapshot`);
    ``overlay``: the customers changed since it was written (they win over its rows);
    ``managed``: the segment ids last applied (the target's own count too).
    """
    segments = target_segments(config, target)
    check_files(config, segments)
    skel = skeleton(segments, [s.id for s in segments], list(range(len(segments))))
    managed = sorted(set(skel.segments) | set(managed))
    assert config.spark is not None
    engine = spark_engine(config.spark)
    session = Session(engine)
    try:
        sql, params = wanted_sql(config, session, segments)
        wanted = session.cache("wanted", sql, params)
        over = session.frame("overlay", _overlay_table(overlay))
        last = session.name("last")
        engine.sql(
            "SELECT customer_id, known, segments FROM parquet.`"
            + snapshot.replace("`", "``")
            + f"` AS f WHERE NOT EXISTS (SELECT 1 FROM {over} AS o "
            "WHERE o.customer_id = f.customer_id) "
            f"UNION ALL SELECT customer_id, known, segments FROM {over} "
            "WHERE known OR segments <> ''"
        ).createOrReplaceTempView(last)
        changes = _CHANGES.format(managed=_managed_array(managed))
        found = _found(engine, _one_pass(wanted, last, changes), [*managed, BAD_ID])
        w_scan, l_scan, known, invalid = found.scans
        if invalid:
            check_ids(config, engine, wanted, segments)
        if (found.w_join, found.l_join) != (w_scan, l_scan):
            raise PlanError(
                "the membership diff on Spark does not add up, refusing to plan: the join "
                f"paired {found.w_join} desired and {found.l_join} last-applied customers, but "
                f"the tables hold {w_scan} and {l_scan}"
            )
        if len(found.changed) != found.counted:
            raise PlanError(
                f"the membership diff on Spark does not add up, refusing to plan: it counted "
                f"{found.counted} changed customers but streamed back {len(found.changed)}"
            )
        pairs = checked_pairs(found.pairs, found.joined, "Spark")
        changed = found.changed
    except PlanError as exc:
        raise PlanError(f"target {target}: {first_line(exc)}") from exc
    finally:
        session.close()
    changed.sort()
    return SparkChanges(skel, changed, known, w_scan, pairs)


def _overlay_table(overlay: Mapping[str, tuple[bool, str]]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "customer_id": pa.array(list(overlay), pa.string()),
            "known": pa.array([known for known, _ in overlay.values()], pa.bool_()),
            "segments": pa.array([segs for _, segs in overlay.values()], pa.string()),
        }
    )


def _one_pass(wanted: str, last: str, changes: str) -> str:
    """ONE statement for the whole diff: the join grouped by (last-applied segments, desired
    segments) with the rows each group paired from each side and its changes; the changed
    customers with what they should have; and plain scans of both tables. The two uses of
    the join share its shuffles (Spark reuses an exchange it meets twice), and one action
    replaces a pass of the join for each."""
    join = f"{wanted} AS w FULL OUTER JOIN {last} AS l ON w.cid = l.customer_id"
    return (
        f"WITH j AS (SELECT w.cid AS wc, w.want AS ww, l.customer_id AS lc, "
        f"l.segments AS ls, {changes} AS ch FROM {join}) "
        "SELECT 'p' AS kind, ls AS a, ww AS b, count(*) AS n, count(wc) AS w, "
        "count(lc) AS l, sum(ch) AS c FROM j GROUP BY ls, ww "
        "UNION ALL SELECT 'c', coalesce(wc, lc), coalesce(ww, ''), 0, 0, 0, 0 FROM j "
        "WHERE ch = 1 "
        f"UNION ALL SELECT 's', NULL, NULL, (SELECT count(*) FROM {wanted}), "
        f"(SELECT count(*) FROM {last}), (SELECT count_if(known) FROM {last}), "
        f"(SELECT count(*) FROM {wanted} WHERE {INVALID})"
    )


@dataclass(slots=True)
class _Found:
    """What the one pass sent back."""

    pairs: list[tuple[str | None, str | None, int]]
    changed: list[tuple[str, str]]
    #: the desired, last-applied, known and invalid rows, by plain scans
    scans: tuple[int, int, int, int]
    w_join: int = 0
    l_join: int = 0
    counted: int = 0
    joined: int = 0


def _found(engine: SparkEngine, sql: str, params: Sequence[Any]) -> _Found:
    """:func:`_one_pass`'s rows sorted out, collected as Arrow (several times faster than
    Spark's row iterators)."""
    try:
        table = engine.sql(sql, params).toArrow()
    except PlanError:
        raise
    except Exception as exc:  # py4j / grpc errors carry no common base
        raise PlanError(f"engine spark: {first_line(exc)}") from exc
    found = _Found([], [], (0, 0, 0, 0))
    columns = [table.column(name).to_pylist() for name in ("kind", "a", "b", "n", "w", "l", "c")]
    for kind, a, b, n, w, l_, c in zip(*columns, strict=True):
        if kind == "c":
            found.changed.append((a, b))
        elif kind == "p":
            found.pairs.append((a, b, int(n)))
            found.joined += int(n)
            found.w_join += int(w)
            found.l_join += int(l_)
            found.counted += int(c or 0)
        else:
            found.scans = (int(n), int(w), int(l_), int(c))
    return found


#: the managed part of a snapshot row's segments (sorted, joined) in DuckDB, given ``$managed``
_MINE_HERE = (
    "coalesce(array_to_string(list_sort(list_intersect(string_split(l.segments, chr(31)), "
    "$managed)), chr(31)), '')"
)


def _pushed(
    con: Any,
    pushed: SparkChanges,
    managed: list[str],
    sample: int,
    salt: int,
    known: int,
    include: Sequence[str] = (),
) -> DiffRows:
    """The rows of :class:`DiffRows` when Spark found the changes: their last-applied rows,
    the sample and the customers of ``include`` come from the snapshot here (one scan)."""
    needed = [cid for cid, _ in pushed.changed]
    temp_table(con, "needed", {"cid": ("VARCHAR", needed)})
    named = include_table(con, include).format("l.customer_id")
    found = con.execute(
        f"SELECT l.customer_id, l.known, l.segments, {_MINE_HERE}, n.cid IS NOT NULL, "
        "hash(l.customer_id, $salt) FROM last AS l LEFT JOIN needed AS n "
        "ON n.cid = l.customer_id WHERE n.cid IS NOT NULL OR "
        f"(l.known AND hash(l.customer_id, $salt) < $limit) OR {named}",
        {"managed": managed, "salt": salt, "limit": sample_limit(sample, known)},
    ).fetchall()
    want = {cid: w for cid, w in pushed.changed if w}
    last: dict[str, Row] = dict.fromkeys(needed, ABSENT)
    candidates: list[tuple[int, str]] = []
    included: list[str] = []
    asked = frozenset(include)
    for cid, k, segs, mine, is_needed, h in found:
        last[cid] = (bool(k), segs or "")
        if not is_needed:
            if cid in asked:
                included.append(cid)
            else:
                candidates.append((h, cid))
            if mine:  # a customer that does not change wants what it has of the managed
                want[cid] = mine
    sampled = pick(candidates, sample)
    rows = DiffRows(needed, sampled, want, last, pushed.known, pushed.wanted, sorted(included))
    rows.pairs = pushed.pairs
    return rows


class SparkDiff(MembershipDiff):
    """The changes found in Spark (:func:`spark_diff`, against the snapshot at ``location``);
    their last-applied rows and the sample from the snapshot in DuckDB."""

    def __init__(
        self,
        config: Config,
        target: str,
        location: str,
        overlay: Mapping[str, tuple[bool, str]],
        managed: Sequence[str],
    ) -> None:
        self.config = config
        self.target = target
        self.location = location
        self.overlay = overlay
        self.managed = sorted(managed)
        self._found: SparkChanges | None = None

    def desired(self, con: Any) -> State:
        self._found = spark_diff(
            self.config, self.target, self.location, self.overlay, self.managed
        )
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
