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
import tempfile
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import duckdb

from ._hashing import SEP, row_sums
from .config import Config, desired_table
from .config._pushdown import SparkDiff, spark_diff, spark_snapshot, uses_spark
from .config._sources import sql_string, temp_table
from .exceptions import PlanError
from .model import EMPTY, State, StateBuilder
from .plan import Overview, fingerprint_sum, format_fingerprint
from .providers.base import Provider, RemoteState
from .statestore import Snapshot

__all__ = ["targeted_inputs"]

#: DuckDB's memory for one target's diff (it spills to a temporary folder beyond it)
MEMORY_LIMIT = "1GB"

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

#: 1 for a customer whose managed segments change or who must be created, else 0; a CASE, so
#: the intersection with the managed segments is computed only where the rows differ at all
_CHANGES = (
    "CASE WHEN w.cid IS NOT NULL AND NOT coalesce(l.known, false) THEN 1 "
    "WHEN coalesce(w.want, '') = coalesce(l.segments, '') THEN 0 "
    f"WHEN coalesce(w.want, '') <> {_MINE} THEN 1 ELSE 0 END"
)
#: the customers that can change are found in ONE pass of this join, which also counts the rows
#: it paired from each side (to compare with plain scans of the two tables)
JOIN = "wanted AS w FULL OUTER JOIN last AS l ON w.cid = l.customer_id"


def _frame(con: Any, snapshot: Snapshot) -> None:
    """The view ``last(customer_id, known, segments)``: the snapshot file overlaid by the
    customers changed since it was written."""
    _overlay_table(con, snapshot.overlay)
    con.execute(
        "CREATE TEMP VIEW last AS "
        f"SELECT * FROM read_parquet({sql_string(str(snapshot.path))}) AS f WHERE NOT EXISTS "
        "(SELECT 1 FROM _overlay AS o WHERE o.customer_id = f.customer_id) "
        "UNION ALL SELECT * FROM _overlay WHERE known OR segments <> ''"
    )


def _needed(con: Any, managed: list[str]) -> tuple[list[str], int, int]:
    """The customers whose managed segments change or who must be created (sorted), the
    number of customers known to exist, and the number with a desired segment.

    Refuses to plan when the join paired fewer (or more) rows from a side than a plain scan of
    that side counts: a join that silently drops rows (DuckDB issue #25702 reports one, when
    it spills to disk) would otherwise hide changes."""
    (ids, w_join, l_join) = con.execute(
        "SELECT coalesce(list(coalesce(w.cid, l.customer_id)) "
        f"FILTER (WHERE {_CHANGES} = 1), []), count(w.cid), count(l.customer_id) FROM {JOIN}",
        {"managed": managed},
    ).fetchall()[0]
    (w_scan, l_scan, known) = con.execute(
        "SELECT (SELECT count(*) FROM wanted), l.n, l.k "
        "FROM (SELECT count(*) AS n, count_if(known) AS k FROM last) AS l"
    ).fetchall()[0]
    if (w_join, l_join) != (w_scan, l_scan):
        raise PlanError(
            "the membership diff does not add up, refusing to plan: the join paired "
            f"{w_join} desired and {l_join} last-applied customers, but the tables hold "
            f"{w_scan} and {l_scan}"
        )
    needed = sorted(ids)
    temp_table(con, "needed", {"cid": ("VARCHAR", needed)})
    return needed, int(known), int(w_scan)


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
        if pushed is None:
            skeleton = desired_table(config, name, con)
        else:  # Spark found the changes: only their rows are here
            skeleton = pushed.skeleton
            temp_table(
                con,
                "wanted",
                {
                    "cid": ("VARCHAR", [cid for cid, want in pushed.changed if want]),
                    "want": ("VARCHAR", [want for _, want in pushed.changed if want]),
                },
            )
        _frame(con, snapshot)
        managed_ids = sorted(set(skeleton.segments) | set(managed))
        if pushed is None:
            needed, known, wanted_total = _needed(con, managed_ids)
        else:
            needed = [cid for cid, _ in pushed.changed]
            known, wanted_total = pushed.known, pushed.wanted
            temp_table(con, "needed", {"cid": ("VARCHAR", needed)})
        sampled: list[str] = []
        if sample > 0:
            repeat = f" REPEATABLE ({int(seed)})" if seed is not None else ""
            query = (
                "SELECT customer_id FROM (SELECT customer_id FROM last AS l WHERE known AND "
                "NOT EXISTS (SELECT 1 FROM needed AS n WHERE n.cid = l.customer_id)) "
                f"USING SAMPLE reservoir({int(sample)} ROWS){repeat}"
            )
            sampled = [r[0] for r in con.execute(query).fetchall()]
            if pushed is not None:
                # a customer that does not change wants what it has of the managed segments
                temp_table(con, "_sampled", {"cid": ("VARCHAR", sampled)})
                con.execute(
                    f"INSERT INTO wanted SELECT * FROM (SELECT l.customer_id, {_MINE} AS want "
                    "FROM last AS l JOIN _sampled AS s ON s.cid = l.customer_id) "
                    "WHERE want <> ''",
                    {"managed": managed_ids},
                )
        batches = [] if offline else provider.targeted_batches([*needed, *sampled], known)
        if batches is None:
            return None
        # everything Python needs about these few customers: wanted, last, snapshot file
        small = [*needed, *sampled]
        touched = list(dict.fromkeys([*small, *snapshot.overlay]))
        temp_table(con, "_x", {"cid": ("VARCHAR", touched)})
        rows = con.execute(
            "SELECT x.cid, w.want, l.known, l.segments, f.known, f.segments FROM _x AS x "
            "LEFT JOIN wanted AS w ON w.cid = x.cid "
            "LEFT JOIN last AS l ON l.customer_id = x.cid "
            f"LEFT JOIN read_parquet({sql_string(str(snapshot.path))}) AS f "
            "ON f.customer_id = x.cid",
        ).fetchall()
    except duckdb.Error as exc:
        raise PlanError(f"cannot plan from the snapshot: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
        spill.cleanup()
    want: dict[str, str] = {}
    last: dict[str, Row] = {}
    base: dict[str, Row] = {}
    for cid, w, lk, ls, fk, fs in rows:
        if w:
            want[cid] = w
        last[cid] = (bool(lk), ls or "") if lk is not None else _ABSENT
        base[cid] = (bool(fk), fs or "") if fk is not None else _ABSENT

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
    drifted = sum(1 for cid in sampled if live[cid] != last[cid])
    if drifted:
        remote = dataclasses.replace(
            remote,
            warnings=(
                *remote.warnings,
                f"{drifted} of {len(sampled)} sampled customers differ from what was last "
                "applied: the platform changed behind the reconciler. `reconcile drift` (or "
                "plan --refresh=full) reads every customer",
            ),
        )

    before = _sums((cid, base[cid]) for cid in touched)
    after = _sums((cid, final[cid]) for cid in touched)
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
        unchanged_links=wanted_total - len(wanted),
    )
    return desired, remote, overview
