"""What to plan a large target from: its membership diffed against the last-applied snapshot.

The desired members (one scan of the customer sources) and the last-applied snapshot (a Parquet
file the state store keeps, see :class:`~reconciler.statestore.Snapshot`) are joined by an
engine (:class:`~reconciler.membership.diff.MembershipDiff`: DuckDB, or Spark where the members
live there) on the customer id; only the customers whose managed segments differ come back to
Python, with a random sample of the others to catch changes made on the platform. Those alone
are read live and diffed as small :class:`State` values. Everything else is known unchanged, so
the plan is the one a full read would give, at a cost that grows with the change rather than
with the audience. The fingerprint and sizes of the whole remote come from the sums the
snapshot carries, corrected for the customers read live, so they too equal a full read's.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from types import MappingProxyType

import duckdb

from ..config import Config
from ..exceptions import PlanError, SnapshotError
from ..model import EMPTY, State, StateBuilder
from ..plan import Overview, RemoteState, fingerprint_sum, format_fingerprint
from ..plan._sizes import Tally
from ..plan.fingerprint import SEP, row_sums
from ..providers.base import Provider
from ..statestore import Snapshot
from .diff import ABSENT, DiffRows, MembershipDiff, Row
from .duckdb import DuckDBDiff
from .snapshot import LastApplied, unreadable
from .snowflake import SnowflakeDiff, rule_engines, uses_snowflake
from .spark import SparkDiff, spark_snapshot, uses_spark

__all__ = ["membership_diff", "membership_inputs"]


def _split(joined: str) -> list[str]:
    return joined.split(SEP) if joined else []


def _sums(rows: Iterable[tuple[str, Row]]) -> tuple[int, int, int]:
    """(customers, links, hash sum) of some customers' rows."""
    customers, links, c_sum, l_sum = row_sums((cid, k, segs) for cid, (k, segs) in rows)
    return customers, links, c_sum + l_sum


def membership_diff(
    config: Config, name: str, snapshot: Snapshot, managed: Iterable[str]
) -> MembershipDiff:
    """The engine that diffs target ``name``: Snowflake when its rules run there, Spark when
    a rule of it runs there and the Spark master can read the snapshot, else DuckDB."""
    if uses_snowflake(config, name):
        return SnowflakeDiff(config, name, snapshot, sorted(managed))
    if not uses_spark(config, name):
        return DuckDBDiff(config, name, snapshot=snapshot)
    if "snowflake" in rule_engines(config, name):
        return DuckDBDiff(
            config,
            name,
            snapshot=snapshot,
            notes=[
                f"the members of target {name} were streamed back from Spark and Snowflake "
                "to be diffed here: a diff runs in one engine"
            ],
        )
    location = spark_snapshot(config, snapshot.path)
    if location is None:
        return DuckDBDiff(
            config,
            name,
            snapshot=snapshot,
            notes=[
                f"the members of target {name} were streamed back from Spark to be diffed "
                "here: set spark.snapshot to a folder the Spark master can read to diff there"
            ],
        )
    return SparkDiff(config, name, location, snapshot.overlay, sorted(managed))


async def membership_inputs(
    config: Config,
    name: str,
    provider: Provider,
    snapshot: Snapshot,
    *,
    managed: Iterable[str],
    sample: int = 1000,
    seed: int | None = None,
    offline: RemoteState | None = None,
    include: Sequence[str] = (),
) -> tuple[State, RemoteState, Overview] | None:
    """What to plan target ``name`` from: the desired and remote states of the customers that
    can change (and the sample), and the overview of the whole remote. ``None`` when reading
    every customer costs no more requests (the caller then reads everything).

    ``managed``: the segment ids last applied; ``seed`` makes the sample repeatable.
    ``offline`` (Refresh.NONE): nothing is read live; the remote is what the state store
    holds, this being its segments and access lists and where each phase comes from.
    ``include``: customers read live besides (an apply's verification: the ones it wrote).
    """
    if offline is not None:
        sample = 0
    managed = list(managed)
    diff = membership_diff(config, name, snapshot, managed)
    frame = LastApplied(snapshot)
    try:
        # the desired members made ready (a table here, or the changes Spark found)
        skeleton = diff.desired(frame.con)
        frame.frame()
        managed_ids = sorted(set(skeleton.segments) | set(managed))
        salt = seed if seed is not None else random.getrandbits(62)
        rows = diff.rows(frame.con, managed_ids, sample, salt, snapshot.customers, include)
        small = [*rows.needed, *rows.sampled, *rows.included]
        batches = [] if offline else provider.targeted_batches(small, rows.known)
        if batches is None:
            return None
        hidden = frame.hidden()
    except duckdb.Error as exc:
        why = unreadable(snapshot.path)
        if why:
            raise SnapshotError(
                f"the membership snapshot {snapshot.path} cannot be read ({why})"
            ) from exc
        raise PlanError(f"cannot plan from the snapshot: {str(exc).splitlines()[0]}") from exc
    finally:
        frame.close()
    last = rows.last
    touched = list(dict.fromkeys([*small, *snapshot.overlay]))
    last.update((cid, row) for cid, row in snapshot.overlay.items() if cid not in last)
    base: dict[str, Row] = {cid: last[cid] for cid in small}
    base.update(dict.fromkeys(snapshot.overlay, ABSENT))
    base.update((cid, (bool(k), segs or "")) for cid, k, segs in hidden)

    if offline is None:
        remote = await provider.read_targeted(batches)
        live = _live(remote, small)
    else:
        remote, live = _kept(offline, last, small), {}
    final = {cid: live.get(cid, last[cid]) for cid in touched}
    desired, wanted = _desired(skeleton, rows, small)
    remote = _warn(remote, diff.notes, rows, live)
    # a customer whose row is what the snapshot file holds adds nothing to the correction
    moved = [cid for cid in touched if final[cid] != base[cid]]
    before = _sums((cid, base[cid]) for cid in moved)
    after = _sums((cid, final[cid]) for cid in moved)
    overview = _overview(remote, snapshot, before, after, rows.wanted - wanted)
    tally = _tally(rows, managed_ids, live)
    return desired, remote, dataclasses.replace(overview, tally=tally)


def _tally(rows: DiffRows, managed: Sequence[str], live: dict[str, Row]) -> Tally:
    """The whole target's membership pairs as the engine counted them, corrected for the
    customers read live whose row is not the snapshot's (the plan diffs against those)."""
    tally = Tally.of_rows(rows.pairs, managed)
    for cid, row in live.items():
        old = rows.last[cid]
        if row[1] != old[1]:
            tally.move(rows.want.get(cid, ""), old[1], row[1])
    return tally


def _live(remote: RemoteState, small: Sequence[str]) -> dict[str, Row]:
    """The rows of the customers read live."""
    return {
        cid: (cid in remote.state.customers, SEP.join(sorted(remote.state.links.get(cid, EMPTY))))
        for cid in small
    }


def _kept(offline: RemoteState, last: dict[str, Row], small: Sequence[str]) -> RemoteState:
    """The remote as the state store holds it, for the customers that can change."""
    builder = StateBuilder()
    builder.add_customers(cid for cid in small if last[cid][0])
    builder.set_links_many(((cid, last[cid][1]) for cid in small), _split)
    kept = builder.build()
    return dataclasses.replace(
        offline,
        state=dataclasses.replace(offline.state, customers=kept.customers, links=kept.links),
    )


def _desired(skeleton: State, rows: DiffRows, small: Sequence[str]) -> tuple[State, int]:
    """The desired State of the customers that can change, and how many of them want a segment."""
    want = rows.want
    wanted = [cid for cid in small if cid in want]
    builder = StateBuilder().add_customers(wanted)
    members = builder.set_links_many(((cid, want[cid]) for cid in wanted), _split).build()
    desired = dataclasses.replace(skeleton, customers=members.customers, links=members.links)
    return desired, len(wanted)


def _warn(
    remote: RemoteState, notes: Sequence[str], rows: DiffRows, live: dict[str, Row]
) -> RemoteState:
    """``remote`` with the engine's notes and the drift the sample found."""
    warnings = [*remote.warnings, *notes]
    drifted = sum(1 for cid in rows.sampled if live[cid] != rows.last[cid])
    if drifted:
        warnings.append(
            f"{drifted} of {len(rows.sampled)} sampled customers differ from what was last "
            "applied: the platform changed behind the reconciler. `reconcile drift` (or "
            "plan --refresh=full) reads every customer"
        )
    if len(warnings) == len(remote.warnings):
        return remote
    return dataclasses.replace(remote, warnings=tuple(warnings))


def _overview(
    remote: RemoteState,
    snapshot: Snapshot,
    before: tuple[int, int, int],
    after: tuple[int, int, int],
    unchanged: int,
) -> Overview:
    """The fingerprint and sizes of the whole remote: the snapshot's sums, less the rows of the
    customers that moved (``before``), plus what they hold now (``after``)."""
    head = State(segments=remote.state.segments, access=remote.state.access)
    total = (
        fingerprint_sum(head) + snapshot.customers_sum + snapshot.links_sum - before[2] + after[2]
    )
    return Overview(
        fingerprint=format_fingerprint(total),
        existing=MappingProxyType(
            {
                "segments": len(remote.state.segments),
                "customers": snapshot.customers - before[0] + after[0],
                "links": snapshot.links - before[1] + after[1],
            }
        ),
        unchanged_links=unchanged,
    )
