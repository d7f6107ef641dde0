"""The state store's SQLite database: its schema and its version, one write transaction, one
consistent read.

The schema has a version (SQLite's ``PRAGMA user_version``), and a store is brought up to this
release's version when it is opened, in one transaction:

- :data:`_SCHEMA` holds every table as first released, and the tables added since, each
  ``CREATE ... IF NOT EXISTS``: a new table needs no migration step, an older store simply gets
  it;
- :data:`MIGRATIONS` changes existing tables, step by step: ``MIGRATIONS[i]`` takes a store
  from version ``i + 1`` to ``i + 2``. Every store runs them, a new one included, so there is
  one path to the current shape and every step is exercised by every test;
- a store written before versions were recorded reads ``user_version`` 0: it is version 1;
- a store newer than this release (a later version wrote it) is refused, never modified.
"""

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
CREATE TABLE IF NOT EXISTS sizes (
    target TEXT NOT NULL, segment TEXT NOT NULL, run_id INTEGER NOT NULL, at REAL NOT NULL,
    members INTEGER NOT NULL, PRIMARY KEY (target, segment, run_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_target ON runs(target, started);
"""

#: the changes to existing tables, in order: ``MIGRATIONS[i]`` takes version i + 1 to i + 2
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1 -> 2: when each segment was last recorded (``reconcile state show``)
    ("ALTER TABLE segments ADD COLUMN updated REAL",),
)

#: the schema version this release writes (and the newest it opens)
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one (``executescript`` would commit the
    transaction the schema is set up in)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


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
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open the state store {self.path}: {exc}") from exc

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Bring the store to :data:`SCHEMA_VERSION` in one transaction (nothing of it is kept
        when a step fails); refuse a store a newer release wrote."""
        if self.schema_version == SCHEMA_VERSION:  # the common case: new tables, if any
            self._db.executescript(_SCHEMA)
            return
        self._db.execute("BEGIN IMMEDIATE")  # another process may be migrating it too
        found = 1
        try:
            found = max(self.schema_version, 1)
            if found > SCHEMA_VERSION:
                raise StateStoreError(
                    f"the state store {self.path} has schema version {found}, newer than this "
                    f"audience-reconciler reads (up to {SCHEMA_VERSION}): a later release wrote "
                    "it; upgrade audience-reconciler (the store was left as it is)"
                )
            for statement in _statements(_SCHEMA):
                self._db.execute(statement)
            for step in MIGRATIONS[found - 1 :]:
                for statement in step:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise StateStoreError(
                    f"cannot bring the state store {self.path} from schema version {found} to "
                    f"{SCHEMA_VERSION}: {exc} (it was left as it was)"
                ) from exc
            raise

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
