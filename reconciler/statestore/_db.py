"""The state store's SQLite database: its schema, one write transaction, one consistent read."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..exceptions import StateStoreError

SEP = "\x1f"

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
CREATE TABLE IF NOT EXISTS definitions (
    target TEXT NOT NULL, segment TEXT NOT NULL, yaml TEXT NOT NULL,
    PRIMARY KEY (target, segment)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, plan_digest TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, status TEXT NOT NULL, summary TEXT);
CREATE TABLE IF NOT EXISTS batches (
    run_id INTEGER NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL, size INTEGER NOT NULL,
    ok INTEGER NOT NULL, failed INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
"""


def split(segments: str) -> list[str]:
    return segments.split(SEP)


#: how long a statement waits for another process's write lock before failing as busy
BUSY_SECONDS = 30.0


class Database:
    """The SQLite file under every part of the state store."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the busy handler from the first statement on: setting WAL and the schema wait
            # for another process's write (an apply recording) instead of failing at once
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open the state store {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

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
