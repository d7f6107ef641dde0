"""The state store: what this reconciler last applied to each target, a run journal, and locks.

Some platforms cannot read back what was written to them (Epsilon has no read of segments or of
access lists), so the reconciler remembers what it applied, item by item as each write is
acknowledged — never at the end of a run, so a crash loses nothing. It is a SQLite file, by
default ``.reconcile/state.db`` next to the config.

The journal records every batch an apply sends and its outcome; an apply interrupted halfway is
resumed by re-reading the remote and re-planning, and the journal says what the earlier run did.
Membership (customers and links: the bulk, millions of rows) is also kept as a columnar
*snapshot*: a Parquet file per target that DuckDB diffs against the desired members without
loading either into Python. SQLite stays the record: every acknowledged change also marks its
customer *dirty*, and :meth:`StateStore.checkpoint` (at the end of an apply, after an import)
folds the dirty customers into a new file, written aside and swapped in by one transaction. A
reader overlays whatever is still dirty (an apply that crashed before its checkpoint), so the
snapshot plus the overlay always equals what SQLite holds. The file also carries order-independent
hash sums of its rows, so a plan's fingerprint of the remote needs no pass over them.

The lock is an ``flock`` on a file per target: the kernel releases it when the process dies, so a
killed apply never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._logging import logger
from .exceptions import LockedError, StateStoreError
from .model import Segment, State, StateBuilder
from .plan.changes import AccessChange, Action, Change, CustomerChange, LinkChange, SegmentChange
from .plan.fingerprint import row_sums

__all__ = ["RunRecord", "Snapshot", "StateStore"]

log = logger("statestore")

_SEP = "\x1f"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    target TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
    prevent_destroy INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (target, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access (
    target TEXT NOT NULL, segment TEXT NOT NULL, teams TEXT NOT NULL,
    PRIMARY KEY (target, segment)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers (
    target TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (target, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (
    target TEXT NOT NULL, customer TEXT NOT NULL, segments TEXT NOT NULL,
    PRIMARY KEY (target, customer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counters(name, n) VALUES ('dirty', 0);
CREATE TABLE IF NOT EXISTS dirty (
    target TEXT NOT NULL, customer TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (target, customer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    target TEXT PRIMARY KEY, file TEXT NOT NULL, customers INTEGER NOT NULL,
    links INTEGER NOT NULL, customers_sum TEXT NOT NULL, links_sum TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, plan_digest TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, status TEXT NOT NULL, summary TEXT);
CREATE TABLE IF NOT EXISTS batches (
    run_id INTEGER NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL, size INTEGER NOT NULL,
    ok INTEGER NOT NULL, failed INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
"""


def _split(segments: str) -> list[str]:
    return segments.split(_SEP)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A target's membership as last applied: the Parquet ``path`` overlaid by ``overlay``.

    ``overlay``: customer id → (known, segments joined by ``\x1f``, '' for none), for the
    customers changed since the file was written; it wins over the file's rows.
    ``customers``/``links`` and the two sums describe the file alone.
    """

    path: Path
    customers: int
    links: int
    customers_sum: int
    links_sum: int
    overlay: dict[str, tuple[bool, str]]


#: rows per row group of a snapshot file
ROW_GROUP = 128 * 1024


def _file_key(target: str) -> str:
    """A file-name-safe key of a target name, distinct for distinct names."""
    tag = hashlib.blake2b(target.encode(), digest_size=4).hexdigest()
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in target)[:40] + "-" + tag


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    target: str
    plan_digest: str
    started: float
    finished: float | None
    status: str
    batches: int
    items_ok: int
    items_failed: int


class StateStore:
    """Last-applied state per target, the run journal and per-target locks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open the state store {self.path}: {exc}") from exc
        self._seq: dict[int, int] = {}
        self._dirty_seq: int | None = None

    def close(self) -> None:
        self._db.close()

    # -- last-applied state ---------------------------------------------------------------
    def load(self, target: str, *, membership: bool = True) -> State:
        """The state this reconciler last applied to ``target``.

        ``membership=False`` loads the segments and access lists alone (customers and links
        left empty), for a provider that reads membership live.
        """
        b = StateBuilder()
        q = self._db.execute
        for seg_id, name, desc in q(
            "SELECT id, name, description FROM segments WHERE target=?", (target,)
        ):
            b.add_segment(Segment(seg_id, name, desc))
        for seg_id, teams in q("SELECT segment, teams FROM access WHERE target=?", (target,)):
            b.set_access(seg_id, teams.split(_SEP) if teams else ())
        if membership:
            rows = q("SELECT id FROM customers WHERE target=?", (target,))
            b.add_customers(r[0] for r in rows)
            b.set_links_many(
                q("SELECT customer, segments FROM links WHERE target=?", (target,)), _split
            )
        return b.build()

    def protected(self, target: str) -> frozenset[str]:
        """Segments last applied with ``prevent_destroy: true``."""
        rows = self._db.execute(
            "SELECT id FROM segments WHERE target=? AND prevent_destroy=1", (target,)
        )
        return frozenset(r[0] for r in rows)

    def managed_segments(self, target: str) -> frozenset[str]:
        rows = self._db.execute("SELECT id FROM segments WHERE target=?", (target,))
        return frozenset(r[0] for r in rows)

    def set_protection(self, target: str, protected: Iterable[str]) -> None:
        ids = list(protected)
        with self._tx():
            self._db.execute("UPDATE segments SET prevent_destroy=0 WHERE target=?", (target,))
            self._db.executemany(
                "UPDATE segments SET prevent_destroy=1 WHERE target=? AND id=?",
                [(target, i) for i in ids],
            )

    def record(self, target: str, changes: Sequence[Change]) -> None:
        """Remember acknowledged changes (called per batch, as soon as the target confirms)."""
        with self._tx():
            self._dirty_seq = None
            for change in changes:
                self._record_one(target, change)
        log.debug("%s: %d acknowledged change(s) recorded", target, len(changes))

    def _record_one(self, target: str, change: Change) -> None:
        x = self._db.execute
        match change:
            case SegmentChange(action=Action.CREATE | Action.UPDATE, after=Segment() as seg):
                x(
                    "INSERT INTO segments(target, id, name, description) VALUES (?,?,?,?) "
                    "ON CONFLICT(target, id) DO UPDATE SET name=excluded.name, "
                    "description=excluded.description",
                    (target, seg.id, seg.name, seg.description),
                )
            case SegmentChange(action=Action.DELETE | Action.FORGET, key=seg_id):
                x("DELETE FROM segments WHERE target=? AND id=?", (target, seg_id))
                x("DELETE FROM access WHERE target=? AND segment=?", (target, seg_id))
                self._drop_segment_links(target, seg_id)
            case AccessChange(key=seg_id, after=teams):
                x(
                    "INSERT OR REPLACE INTO access(target, segment, teams) VALUES (?,?,?)",
                    (target, seg_id, _SEP.join(sorted(teams))),
                )
            case CustomerChange(action=Action.CREATE, key=cid):
                x("INSERT OR IGNORE INTO customers(target, id) VALUES (?,?)", (target, cid))
                self._dirty(target, cid)
            case CustomerChange(key=cid):
                x("DELETE FROM customers WHERE target=? AND id=?", (target, cid))
                self._dirty(target, cid)
            case LinkChange(key=cid, after=segs):
                self._dirty(target, cid)
                if segs:
                    x(
                        "INSERT OR REPLACE INTO links(target, customer, segments) VALUES (?,?,?)",
                        (target, cid, _SEP.join(sorted(segs))),
                    )
                else:
                    x("DELETE FROM links WHERE target=? AND customer=?", (target, cid))
            case _:  # pragma: no cover - exhaustive above
                raise StateStoreError(f"cannot record {change!r}")

    def _dirty(self, target: str, customer: str) -> None:
        """Mark ``customer`` changed since the snapshot (inside the recording transaction)."""
        if self._dirty_seq is None:
            row = self._db.execute(
                "UPDATE counters SET n = n + 1 WHERE name = 'dirty' RETURNING n"
            ).fetchone()
            self._dirty_seq = int(row[0])
        self._db.execute(
            "INSERT OR REPLACE INTO dirty(target, customer, seq) VALUES (?,?,?)",
            (target, customer, self._dirty_seq),
        )

    def _drop_segment_links(self, target: str, seg_id: str) -> None:
        rows = self._db.execute(
            "SELECT customer, segments FROM links WHERE target=? AND (segments=? OR "
            "segments LIKE ? OR segments LIKE ? OR segments LIKE ?)",
            (target, seg_id, f"{seg_id}{_SEP}%", f"%{_SEP}{seg_id}", f"%{_SEP}{seg_id}{_SEP}%"),
        ).fetchall()
        for customer, segs in rows:
            rest = [s for s in segs.split(_SEP) if s != seg_id]
            self._record_one(target, LinkChange(customer, frozenset(), frozenset(rest)))

    def replace(self, target: str, state: State) -> None:
        """Overwrite the last-applied state of ``target`` (import, or a full refresh)."""
        with self._tx():
            was = self._db.execute(
                "SELECT file FROM snapshots WHERE target=?", (target,)
            ).fetchone()
            kept = self._db.execute(
                "SELECT id FROM segments WHERE target=? AND prevent_destroy=1", (target,)
            ).fetchall()
            for table in ("segments", "access", "customers", "links", "dirty", "snapshots"):
                self._db.execute(f"DELETE FROM {table} WHERE target=?", (target,))
            self._db.executemany(
                "INSERT INTO segments(target, id, name, description) VALUES (?,?,?,?)",
                [(target, s.id, s.name, s.description) for s in state.segments.values()],
            )
            # prevent_destroy is the config's promise, not a fact of the remote: it survives
            self._db.executemany(
                "UPDATE segments SET prevent_destroy=1 WHERE target=? AND id=?",
                [(target, r[0]) for r in kept],
            )
            self._db.executemany(
                "INSERT INTO access(target, segment, teams) VALUES (?,?,?)",
                [(target, k, _SEP.join(sorted(v))) for k, v in state.access.items()],
            )
            self._db.executemany(
                "INSERT INTO customers(target, id) VALUES (?,?)",
                [(target, c) for c in state.customers],
            )
            self._db.executemany(
                "INSERT INTO links(target, customer, segments) VALUES (?,?,?)",
                [(target, c, _SEP.join(sorted(s))) for c, s in state.links.items()],
            )
        self.checkpoint(target, keep=was[0] if was else None)

    # -- membership snapshot --------------------------------------------------------------
    def _snapshot_dir(self) -> Path:
        """``state.db`` keeps its snapshots in ``state.snapshots/`` beside it."""
        return self.path.with_name(self.path.stem + ".snapshots")

    def snapshot(self, target: str) -> Snapshot | None:
        """The columnar membership of ``target`` (``None`` before its first checkpoint)."""
        with self._read():
            meta = self._snapshot_meta(target)
            dirty = self._dirty_rows(target) if meta is not None else []
        if meta is None:
            return None
        return dataclasses.replace(
            meta, overlay={cid: (bool(k), segs) for cid, _, k, segs in dirty}
        )

    def _snapshot_meta(self, target: str) -> Snapshot | None:
        """The snapshot file and its sums (no overlay), if the file is there."""
        meta = self._db.execute(
            "SELECT file, customers, links, customers_sum, links_sum FROM snapshots WHERE target=?",
            (target,),
        ).fetchone()
        if meta is None:
            return None
        path = self._snapshot_dir() / meta[0]
        if not path.exists():
            return None
        return Snapshot(path, meta[1], meta[2], int(meta[3], 16), int(meta[4], 16), {})

    def _dirty_rows(self, target: str) -> list[tuple[str, int, int, str]]:
        """(customer, seq, known, joined segments) of every dirty customer, as SQLite holds it."""
        return self._db.execute(
            "SELECT d.customer, d.seq, c.id IS NOT NULL, coalesce(l.segments, '') FROM dirty d "
            "LEFT JOIN customers c ON c.target = d.target AND c.id = d.customer "
            "LEFT JOIN links l ON l.target = d.target AND l.customer = d.customer "
            "WHERE d.target=?",
            (target,),
        ).fetchall()

    def repair_snapshot(self, target: str) -> bool:
        """Rewrite the snapshot of ``target`` from the database when its file cannot be read
        in full (or is gone); ``True`` when it did."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._read():
            row = self._db.execute(
                "SELECT file FROM snapshots WHERE target=?", (target,)
            ).fetchone()
        if row is None:
            return False
        try:
            pq.read_table(self._snapshot_dir() / row[0])
        except (OSError, pa.ArrowException):
            self.checkpoint(target, rebuild=True)
            return True
        return False

    def checkpoint(self, target: str, *, keep: str | None = None, rebuild: bool = False) -> None:
        """Fold the customers changed since the last snapshot into a new snapshot file.

        Crash-safe at every point: the new file is written under a fresh name, then one
        transaction points the target at it and clears the dirty marks it folded (marks made
        since stay). A crash before that commit leaves the old file and the marks, and an
        orphan new file that the next checkpoint removes.

        The file replaced stays until the next checkpoint: a plan that started reading it
        (plans take no lock) finishes on it. ``keep``: such a file that the caller already
        unlinked from the target (:meth:`replace` does, to rebuild from scratch).

        ``rebuild``, or a current file that cannot be read: the new file is written from the
        database alone (the record), and the old one is dropped.
        """
        import pyarrow as pa  # only here: apply and import time, never on a plan's path
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        # one row per customer known or linked
        schema = pa.schema(
            [("customer_id", pa.string()), ("known", pa.bool_()), ("segments", pa.string())]
        )

        def to_table(rows: list[tuple[str, bool, str]]) -> pa.Table:
            return pa.table(
                {
                    "customer_id": pa.array([r[0] for r in rows], pa.string()),
                    "known": pa.array([bool(r[1]) for r in rows], pa.bool_()),
                    "segments": pa.array([r[2] for r in rows], pa.string()),
                },
                schema=schema,
            )

        def readable(path: Path) -> pa.Table | None:
            try:
                return pq.read_table(path, schema=schema)
            except (OSError, pa.ArrowException):
                return None  # the database holds the record the file was written from

        folder = self._snapshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        old: pa.Table | None = None
        with self._read():  # the file, the marks and the record, as of one moment
            current = self._snapshot_meta(target)
            dirty = self._dirty_rows(target)
            if current is not None and not rebuild:
                old = readable(current.path)
            if old is None:
                rows = self._db.execute(
                    "SELECT c.id, 1, coalesce(l.segments, '') FROM customers c LEFT JOIN links l "
                    "ON l.target = c.target AND l.customer = c.id WHERE c.target=? "
                    "UNION ALL SELECT l.customer, 0, l.segments FROM links l WHERE l.target=? "
                    "AND NOT EXISTS (SELECT 1 FROM customers c "
                    "WHERE c.target = l.target AND c.id = l.customer)",
                    (target, target),
                ).fetchall()
        last_seq = max((seq for _, seq, _, _ in dirty), default=0)
        if old is None or current is None:
            customers, links, c_sum, l_sum = row_sums(rows)
            table = to_table(rows)
        else:
            if not dirty:
                return
            changed = pc.is_in(old.column("customer_id"), value_set=pa.array([d[0] for d in dirty]))
            before = [
                (r["customer_id"], bool(r["known"]), r["segments"])
                for r in old.filter(changed).to_pylist()
            ]
            after = [(cid, bool(k), segs) for cid, _, k, segs in dirty if k or segs]
            b, a = row_sums(before), row_sums(after)
            customers = current.customers - b[0] + a[0]
            links = current.links - b[1] + a[1]
            c_sum = current.customers_sum - b[2] + a[2]
            l_sum = current.links_sum - b[3] + a[3]
            table = pa.concat_tables([old.filter(pc.invert(changed)), to_table(after)])
        safe = _file_key(target)
        name = f"{safe}.{os.getpid()}-{time.time_ns()}.parquet"
        tmp = folder / (name + ".tmp")
        try:
            # row groups of 128Ki rows: DuckDB and Spark scan a file one row group per thread
            pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
            os.replace(tmp, folder / name)
        except (OSError, pa.ArrowException) as exc:
            tmp.unlink(missing_ok=True)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StateStoreError(
                f"target {target!r}: cannot write the membership snapshot {folder / name}: "
                f"{reason}; every change is recorded in {self.path}, which plans read until "
                "the next apply writes the snapshot"
            ) from exc
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots(target, file, customers, links, customers_sum, "
                "links_sum) VALUES (?,?,?,?,?,?)",
                (target, name, customers, links, f"{c_sum:x}", f"{l_sum:x}"),
            )
            self._db.execute("DELETE FROM dirty WHERE target=? AND seq <= ?", (target, last_seq))
        log.debug(
            "%s: membership snapshot %s written: %d customer(s), %d link(s)",
            target,
            name,
            customers,
            links,
        )
        kept = {name, keep, current.path.name if old is not None and current else None}
        for stale in folder.glob(f"{safe}.*.parquet"):
            if stale.name not in kept:
                stale.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """A consistent read (one SQLite snapshot) across several queries."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction: committed whole, or rolled back whole. A failure of SQLite
        (a full disk, an I/O error) is a StateStoreError naming the database."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            raise (
                StateStoreError(f"state store {self.path} is busy: {exc}")
                if busy
                else self._failed(exc)
            ) from exc
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._failed(exc) from exc
            raise

    def _failed(self, exc: sqlite3.Error) -> StateStoreError:
        return StateStoreError(
            f"cannot write to the state store {self.path}: {exc} (nothing of that write was kept)"
        )

    def _journal(self, sql: str, params: Sequence[object]) -> sqlite3.Cursor:
        """One statement of the run journal (committed on its own)."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    # -- journal --------------------------------------------------------------------------
    def start_run(self, target: str, plan_digest: str) -> int:
        cur = self._journal(
            "INSERT INTO runs(target, plan_digest, started, status) VALUES (?,?,?, 'running')",
            (target, plan_digest, time.time()),
        )
        run_id = int(cur.lastrowid or 0)
        self._seq[run_id] = 0
        return run_id

    def record_batch(self, run_id: int, step: str, size: int, ok: int, failed: int) -> None:
        self._seq[run_id] = seq = self._seq.get(run_id, 0) + 1
        self._journal(
            "INSERT INTO batches(run_id, seq, step, size, ok, failed, at) VALUES (?,?,?,?,?,?,?)",
            (run_id, seq, step, size, ok, failed, time.time()),
        )

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        self._journal(
            "UPDATE runs SET finished=?, status=?, summary=? WHERE id=?",
            (time.time(), status, json.dumps(summary, sort_keys=True), run_id),
        )

    def interrupted_runs(self, target: str) -> list[RunRecord]:
        """Runs on ``target`` that started and never finished (the process died)."""
        return [r for r in self.runs(target) if r.finished is None]

    def runs(self, target: str) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT r.id, r.target, r.plan_digest, r.started, r.finished, r.status, "
            "COUNT(b.seq), COALESCE(SUM(b.ok), 0), COALESCE(SUM(b.failed), 0) "
            "FROM runs r LEFT JOIN batches b ON b.run_id = r.id WHERE r.target=? "
            "GROUP BY r.id ORDER BY r.id",
            (target,),
        )
        return [RunRecord(*row) for row in rows]

    def close_interrupted(self, target: str) -> None:
        self._journal(
            "UPDATE runs SET status='interrupted', finished=? WHERE target=? AND finished IS NULL",
            (time.time(), target),
        )

    # -- locks ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, target: str, *, wait: float = 0.0, purpose: str = "apply") -> Iterator[None]:
        """Hold the apply lock of ``target``; wait up to ``wait`` seconds, then refuse.

        ``purpose`` (``apply``, ``refresh``) is recorded with the process id, so one that
        finds the lock taken says who holds it."""
        lock_dir = self.path.parent / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in target)
        fd = os.open(lock_dir / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        pid, _, what = (
                            os.pread(fd, 64, 0).decode(errors="replace").strip().partition(" ")
                        )
                        who = f" (process {pid})" if pid else ""
                        raise LockedError(
                            f"another {what or 'apply'} is running on target {target!r}{who}; "
                            "wait for it to finish"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {purpose}".encode(), 0)
            log.debug("%s: %s lock taken", target, purpose)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("the state store needs a POSIX system (fcntl)")
