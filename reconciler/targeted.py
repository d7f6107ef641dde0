"""``plan --refresh=auto`` on a large target: the membership diff runs in DuckDB.

The desired members (one scan of the customer sources) and the last-applied snapshot (a Parquet
file the state store keeps, see :class:`~reconciler.statestore.Snapshot`) are joined in DuckDB
on the customer id; only the customers whose managed segments differ come back to Python,
with a random sample of the others to catch changes made on the platform. Those alone are read
live and diffed as small :class:`State` values. Everything else is known unchanged, so the
plan is the one a full read would give, at a cost that grows with the change rather than with
the audience. The fingerprint and sizes of the whole remote come from the sums the snapshot
carries, corrected for the customers read live, so they too equal a full read's.

The join is cross-checked by counts: the rows it paired from each side must equal plain scans of
the two tables, and a plan is refused when they disagree (a silent engine must not decide what
is sent to a platform).
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import duckdb

from .config import Config, Wanted, desired_table
from .config._pushdown import SparkDiff, spark_diff, spark_snapshot, uses_spark
from .config._sources import sql_string, temp_table
from .exceptions import PlanError, SnapshotError
from .model import EMPTY, State, StateBuilder
from .plan import Overview, RemoteState, fingerprint_sum, format_fingerprint
from .plan.fingerprint import SEP, row_sums
from .providers.base import Provider
from .statestore import Snapshot

__all__ = ["targeted_inputs"]

#: DuckDB's memory for one target's diff (it spills to a temporary folder beyond it)
MEMORY_LIMIT = "1GB"

#: the salted hashes the sample is drawn by: DuckDB's ``hash`` is 64 bits
_HASHES = 1 << 64

#: a customer's row: (exists, its segment ids joined by SEP, '' for none)
Row = tuple[bool, str]
_ABSENT: Row = (False, "")


def _split(joined: str) -> list[str]:
    return joined.split(SEP) if joined else []


def _overlay_table(con: Any, overlay: Mapping[str, Row]) -> None:
    temp_table(
        con,
        "_overlay",
        {
            "customer_id": ("VARCHAR", list(overlay)),
            "known": ("BOOLEAN", [k for k, _ in overlay.values()]),
            "segments": ("VARCHAR", [s for _, s in overlay.values()]),
        },
    )


def _sums(rows: Iterable[tuple[str, Row]]) -> tuple[int, int, int]:
    """(customers, links, hash sum) of some customers' rows."""
    customers, links, c_sum, l_sum = row_sums((cid, k, segs) for cid, (k, segs) in rows)
    return customers, links, c_sum + l_sum


#: the managed part of a snapshot row's segments (sorted, joined), given ``$managed``
_MINE = (
    "coalesce(array_to_string(list_sort(list_intersect(string_split(l.segments, chr(31)), "
    "$managed)), chr(31)), '')"
)


def _changes(words: int) -> str:
    """1 for a customer whose managed segments change or who must be created, else 0: its
    desired mask against the mask of its last-applied segments (``s``, from the small table
    of every distinct segment list the snapshot holds); ``s.other``: that list also holds a
    managed segment no longer desired."""
    same = " AND ".join(f"coalesce(w.m{i}, 0) = coalesce(s.m{i}, 0)" for i in range(words))
    return (
        "CASE WHEN w.cid IS NOT NULL AND NOT coalesce(l.known, false) THEN 1 "
        f"WHEN {same} AND NOT coalesce(s.other, false) THEN 0 ELSE 1 END"
    )


#: the customers that can change are found in ONE pass of this join, which also counts the rows
#: it paired from each side (to compare with plain scans of the two tables)
JOIN = (
    "wanted AS w FULL OUTER JOIN last AS l ON w.cid = l.customer_id "
    "LEFT JOIN _lists AS s ON s.segments = l.segments"
)


def _frame(con: Any, snapshot: Snapshot) -> None:
    """The view ``last(customer_id, known, segments)``: the snapshot file overlaid by the
    customers changed since it was written (the file alone when none has: a third faster to
    join than through an empty overlay)."""
    file = f"read_parquet({sql_string(str(snapshot.path))})"
    if not snapshot.overlay:
        con.execute(f"CREATE TEMP VIEW last AS SELECT * FROM {file}")
        return
    _overlay_table(con, snapshot.overlay)
    con.execute(
        "CREATE TEMP VIEW last AS "
        f"SELECT * FROM {file} AS f WHERE NOT EXISTS "
        "(SELECT 1 FROM _overlay AS o WHERE o.customer_id = f.customer_id) "
        "UNION ALL SELECT * FROM _overlay WHERE known OR segments <> ''"
    )


#: the rows that come back: a customer that changes, or a candidate for the sample (a known
#: customer that does not change, whose salted hash falls under ``$limit``)
_BACK = "ch = 1 OR (known AND hash(customer_id, $salt) < $limit)"


@dataclasses.dataclass(slots=True)
class _Rows:
    """What the diff sends back to Python: the customers that change (sorted) and the sample,
    with what each wants (``want``, absent for nothing) and its last-applied row (``last``);
    the number of customers known to exist, and the number with a desired segment."""

    needed: list[str]
    sampled: list[str]
    want: dict[str, str]
    last: dict[str, Row]
    known: int
    wanted: int


def _limit(sample: int, known: int) -> int:
    """The hash bound under which a known customer is a sample candidate: about twice the
    sample (and at least 64 more), so that the ``sample`` lowest hashes are nearly always
    there; every customer when that is most of them."""
    if sample <= 0:
        return 0
    share = (2 * sample + 64) / max(1, known)
    return _HASHES - 1 if share >= 1 else int(share * _HASHES)


def _pick(candidates: list[tuple[int, str]], sample: int) -> list[str]:
    """The ``sample`` candidates of lowest salted hash: a uniform sample, repeatable by salt."""
    return [cid for _, cid in sorted(candidates)[:sample]]


def _lists(con: Any, wanted: Wanted, managed: list[str]) -> None:
    """The table ``_lists(segments, m0.., other)``: each distinct segment list of the
    snapshot, with its mask in ``wanted``'s bits (see :meth:`Wanted.masks`). Segment lists
    repeat: a million customers hold a few hundred distinct ones."""
    lists = [r[0] for r in con.execute("SELECT DISTINCT segments FROM last").fetchall()]
    masks = wanted.masks((joined or "" for joined in lists), managed)
    words = {f"m{i}": ("UBIGINT", [m[i] for m, _ in masks]) for i in range(wanted.words)}
    temp_table(
        con,
        "_lists",
        {"segments": ("VARCHAR", lists), **words, "other": ("BOOLEAN", [o for _, o in masks])},
    )


def _diff(
    con: Any, wanted: Wanted, managed: list[str], sample: int, salt: int, known: int
) -> _Rows:
    """The membership diff in ONE pass of the join: the rows of the customers whose managed
    segments change or who must be created, and of the sample candidates, come back as they
    are found, with the counts of the rows the join paired from each side.

    Refuses to plan when the join paired fewer (or more) rows from a side than a plain scan of
    that side counts: a join that silently drops rows (DuckDB issue #25702 reports one, when
    it spills to disk) would otherwise hide changes.

    When ``wanted`` may hold a customer twice, the join tells: a last-applied row paired
    twice, or a new customer found twice. The rows are then grouped and the join run again."""
    _lists(con, wanted, managed)
    words = range(wanted.words)
    masks = ", ".join(f"w.m{i}" for i in words)
    fields = ", ".join(f"'m{i}': m{i}" for i in words)
    query = (
        f"SELECT coalesce(list({{'c': coalesce(cid, customer_id), {fields}, 'k': known, "
        "'s': segments, 'ch': ch, 'h': hash(customer_id, $salt)}) "
        f"FILTER (WHERE {_BACK}), []), count(cid), count(customer_id) "
        f"FROM (SELECT w.cid, {masks}, l.customer_id, l.known, l.segments, "
        f"{_changes(wanted.words)} AS ch FROM {JOIN})"
    )
    # count(...) FILTER, not count_if: DuckDB's count_if is a sum, NULL over an empty snapshot
    (l_scan, known_now) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE known) FROM last"
    ).fetchall()[0]
    while True:
        (found, w_join, l_join) = con.execute(
            query, {"salt": salt, "limit": _limit(sample, known)}
        ).fetchall()[0]
        needed = sorted(row["c"] for row in found if row["ch"])
        if wanted.unique or (l_join <= l_scan and len(set(needed)) == len(needed)):
            break
        wanted = wanted.group(con)
    (w_scan,) = con.execute("SELECT count(*) FROM wanted").fetchall()[0]
    if (w_join, l_join) != (w_scan, l_scan):
        raise PlanError(
            "the membership diff does not add up, refusing to plan: the join paired "
            f"{w_join} desired and {l_join} last-applied customers, but the tables hold "
            f"{w_scan} and {l_scan}"
        )
    candidates: list[tuple[int, str]] = []
    want: dict[str, str] = {}
    last: dict[str, Row] = {}
    joined: dict[tuple[int, ...], str] = {}
    for row in found:
        cid = row["c"]
        if not row["ch"]:
            candidates.append((row["h"], cid))
        if row["m0"] is not None:
            mask = tuple(row[f"m{i}"] for i in words)
            text = joined.get(mask)
            if text is None:
                text = joined[mask] = wanted.joined(mask)
            want[cid] = text
        last[cid] = (bool(row["k"]), row["s"] or "") if row["k"] is not None else _ABSENT
    return _Rows(needed, _pick(candidates, sample), want, last, int(known_now), int(w_scan))


def _unreadable(path: Any) -> str:
    """Why the snapshot file cannot be read in full ('' when it can): asked only once a
    diff failed, so a plan never pays for it."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            "SELECT count(*), min(customer_id), bool_and(known), min(segments) "
            f"FROM read_parquet({sql_string(str(path))})"
        ).fetchall()
    except duckdb.Error as exc:  # DuckDB names the file: the message around it does already
        return str(exc).splitlines()[0].replace(f" '{path}'", "")
    finally:
        con.close()
    return ""


def _pushed(
    con: Any, pushed: SparkDiff, managed: list[str], sample: int, salt: int, known: int
) -> _Rows:
    """The rows of :class:`_Rows` when Spark found the changes: their last-applied rows and
    the sample come from the snapshot here (one scan of it)."""
    needed = [cid for cid, _ in pushed.changed]
    temp_table(con, "needed", {"cid": ("VARCHAR", needed)})
    found = con.execute(
        f"SELECT l.customer_id, l.known, l.segments, {_MINE}, n.cid IS NOT NULL, "
        "hash(l.customer_id, $salt) FROM last AS l LEFT JOIN needed AS n "
        "ON n.cid = l.customer_id WHERE n.cid IS NOT NULL OR "
        "(l.known AND hash(l.customer_id, $salt) < $limit)",
        {"managed": managed, "salt": salt, "limit": _limit(sample, known)},
    ).fetchall()
    want = {cid: w for cid, w in pushed.changed if w}
    last: dict[str, Row] = dict.fromkeys(needed, _ABSENT)
    candidates: list[tuple[int, str]] = []
    for cid, k, segs, mine, is_needed, h in found:
        last[cid] = (bool(k), segs or "")
        if not is_needed:
            candidates.append((h, cid))
            if mine:  # a customer that does not change wants what it has of the managed
                want[cid] = mine
    return _Rows(needed, _pick(candidates, sample), want, last, pushed.known, pushed.wanted)


async def targeted_inputs(
    config: Config,
    name: str,
    provider: Provider,
    snapshot: Snapshot,
    *,
    managed: Iterable[str],
    sample: int = 1000,
    seed: int | None = None,
    offline: RemoteState | None = None,
) -> tuple[State, RemoteState, Overview] | None:
    """What to plan target ``name`` from: the desired and remote states of the customers that
    can change (and the sample), and the overview of the whole remote. ``None`` when reading
    every customer costs no more requests (the caller then reads everything).

    ``managed``: the segment ids last applied; ``seed`` makes the sample repeatable.
    ``offline`` (Refresh.NONE): nothing is read live; the remote is what the state store
    holds, this being its segments and access lists and where each phase comes from.
    """
    if offline is not None:
        sample = 0
    pushed: SparkDiff | None = None
    notes: list[str] = []
    if uses_spark(config, name):
        location = spark_snapshot(config, snapshot.path)
        if location is None:
            notes.append(
                f"the members of target {name} were streamed back from Spark to be diffed "
                "here: set spark.snapshot to a folder the Spark master can read to diff there"
            )
        else:
            pushed = spark_diff(config, name, location, snapshot.overlay, sorted(managed))
    spill = tempfile.TemporaryDirectory(prefix="reconcile-plan-")
    # bounded: beyond the limit DuckDB spills to disk, so memory does not grow with the table
    con = duckdb.connect(
        ":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill.name}
    )
    try:
        # the desired members as a table here, or the changes Spark found
        source: Wanted | SparkDiff = desired_table(config, name, con) if pushed is None else pushed
        skeleton = source.skeleton
        _frame(con, snapshot)
        managed_ids = sorted(set(skeleton.segments) | set(managed))
        salt = seed if seed is not None else random.getrandbits(62)
        if isinstance(source, Wanted):
            rows = _diff(con, source, managed_ids, sample, salt, snapshot.customers)
        else:
            rows = _pushed(con, source, managed_ids, sample, salt, snapshot.customers)
        small = [*rows.needed, *rows.sampled]
        batches = [] if offline else provider.targeted_batches(small, rows.known)
        if batches is None:
            return None
        # the snapshot file's own rows of the customers the overlay hides (for the sums)
        hidden = (
            con.execute(
                "SELECT f.customer_id, f.known, f.segments FROM "
                f"read_parquet({sql_string(str(snapshot.path))}) AS f "
                "SEMI JOIN _overlay AS o ON o.customer_id = f.customer_id"
            ).fetchall()
            if snapshot.overlay
            else []
        )
    except duckdb.Error as exc:
        unreadable = _unreadable(snapshot.path)
        if unreadable:
            raise SnapshotError(
                f"the membership snapshot {snapshot.path} cannot be read ({unreadable})"
            ) from exc
        raise PlanError(f"cannot plan from the snapshot: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
        spill.cleanup()
    want, last = rows.want, rows.last
    touched = list(dict.fromkeys([*small, *snapshot.overlay]))
    last.update((cid, row) for cid, row in snapshot.overlay.items() if cid not in last)
    base: dict[str, Row] = {cid: last[cid] for cid in small}
    base.update(dict.fromkeys(snapshot.overlay, _ABSENT))
    base.update((cid, (bool(k), segs or "")) for cid, k, segs in hidden)

    if offline is None:
        remote = await provider.read_targeted(batches)
        live: dict[str, Row] = {
            cid: (
                cid in remote.state.customers,
                SEP.join(sorted(remote.state.links.get(cid, EMPTY))),
            )
            for cid in small
        }
    else:
        builder = StateBuilder()
        builder.add_customers(cid for cid in small if last[cid][0])
        builder.set_links_many(((cid, last[cid][1]) for cid in small), _split)
        kept = builder.build()
        remote = dataclasses.replace(
            offline,
            state=dataclasses.replace(offline.state, customers=kept.customers, links=kept.links),
        )
        live = {}
    final = {cid: live.get(cid, last[cid]) for cid in touched}

    wanted = [cid for cid in small if cid in want]
    builder = StateBuilder().add_customers(wanted)
    members = builder.set_links_many(((cid, want[cid]) for cid in wanted), _split).build()
    desired = dataclasses.replace(skeleton, customers=members.customers, links=members.links)

    if notes:
        remote = dataclasses.replace(remote, warnings=(*remote.warnings, *notes))
    drifted = sum(1 for cid in rows.sampled if live[cid] != last[cid])
    if drifted:
        remote = dataclasses.replace(
            remote,
            warnings=(
                *remote.warnings,
                f"{drifted} of {len(rows.sampled)} sampled customers differ from what was last "
                "applied: the platform changed behind the reconciler. `reconcile drift` (or "
                "plan --refresh=full) reads every customer",
            ),
        )

    # a customer whose row is what the snapshot file holds adds nothing to the correction
    moved = [cid for cid in touched if final[cid] != base[cid]]
    before = _sums((cid, base[cid]) for cid in moved)
    after = _sums((cid, final[cid]) for cid in moved)
    head = State(segments=remote.state.segments, access=remote.state.access)
    total = (
        fingerprint_sum(head) + snapshot.customers_sum + snapshot.links_sum - before[2] + after[2]
    )
    overview = Overview(
        fingerprint=format_fingerprint(total),
        existing=MappingProxyType(
            {
                "segments": len(remote.state.segments),
                "customers": snapshot.customers - before[0] + after[0],
                "links": snapshot.links - before[1] + after[1],
            }
        ),
        unchanged_links=rows.wanted - len(wanted),
    )
    return desired, remote, overview
