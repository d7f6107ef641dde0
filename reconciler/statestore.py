"""The state store: what this reconciler last applied to each target, a run journal, and locks.

Some platforms cannot read back what was written to them (Epsilon has no read of segments or of
access lists), so the reconciler remembers what it applied, item by item as each write is
acknowledged — never at the end of a run, so a crash loses nothing. It is a SQLite file, by
default ``.reconcile/state.db`` next to the config.

The journal records every batch an apply sends and its outcome; an apply interrupted halfway is
resumed by re-reading the remote and re-planning, and the journal says what the earlier run did.
The lock is an ``flock`` on a file per target: the kernel releases it when the process dies, so a
killed apply never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .changes import AccessChange, Action, Change, CustomerChange, LinkChange, SegmentChange
from .exceptions import LockedError, StateStoreError
from .model import Segment, State, StateBuilder

__all__ = ["RunRecord", "StateStore"]

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
            for change in changes:
                self._record_one(target, change)

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
            case CustomerChange(key=cid):
                x("DELETE FROM customers WHERE target=? AND id=?", (target, cid))
            case LinkChange(key=cid, after=segs):
                if segs:
                    x(
                        "INSERT OR REPLACE INTO links(target, customer, segments) VALUES (?,?,?)",
                        (target, cid, _SEP.join(sorted(segs))),
                    )
                else:
                    x("DELETE FROM links WHERE target=? AND customer=?", (target, cid))
            case _:  # pragma: no cover - exhaustive above
                raise StateStoreError(f"cannot record {change!r}")

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
            for table in ("segments", "access", "customers", "links"):
                self._db.execute(f"DELETE FROM {table} WHERE target=?", (target,))
            self._db.executemany(
                "INSERT INTO segments(target, id, name, description) VALUES (?,?,?,?)",
                [(target, s.id, s.name, s.description) for s in state.segments.values()],
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

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path} is busy: {exc}") from exc
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- journal --------------------------------------------------------------------------
    def start_run(self, target: str, plan_digest: str) -> int:
        cur = self._db.execute(
            "INSERT INTO runs(target, plan_digest, started, status) VALUES (?,?,?, 'running')",
            (target, plan_digest, time.time()),
        )
        run_id = int(cur.lastrowid or 0)
        self._seq[run_id] = 0
        return run_id

    def record_batch(self, run_id: int, step: str, size: int, ok: int, failed: int) -> None:
        self._seq[run_id] = seq = self._seq.get(run_id, 0) + 1
        self._db.execute(
            "INSERT INTO batches(run_id, seq, step, size, ok, failed, at) VALUES (?,?,?,?,?,?,?)",
            (run_id, seq, step, size, ok, failed, time.time()),
        )

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        self._db.execute(
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
        self._db.execute(
            "UPDATE runs SET status='interrupted', finished=? WHERE target=? AND finished IS NULL",
            (time.time(), target),
        )

    # -- locks ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, target: str, *, wait: float = 0.0) -> Iterator[None]:
        """Hold the apply lock of ``target``; wait up to ``wait`` seconds, then refuse."""
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
                        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                        who = f" (held by process {holder})" if holder else ""
                        raise LockedError(
                            f"another apply is running on target {target!r}{who}; "
                            "wait for it to finish"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("the state store needs a POSIX system (fcntl)")
