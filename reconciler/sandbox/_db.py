"""The shared core of the simulated platforms' state: one SQLite file (WAL mode, indexed for
millions of memberships).

A :class:`Database` owns one connection. Every write runs in one ``BEGIN IMMEDIATE``
transaction, so a refused request changes nothing. Each platform's module adds its tables (their
schema and operations) as a subclass; :class:`~reconciler.sandbox._store.Store` joins them.
Timestamps are RFC 3339 in UTC with a ``Z``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["Database", "Row", "now_rfc3339"]

Row = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Database:
    """One SQLite file and its connection; subclasses declare their tables."""

    #: the tables' definitions, run when the file is opened
    SCHEMA: ClassVar[str] = ""
    #: the tables :meth:`reset` empties, in this order
    TABLES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA cache_size=-65536")
            self._conn.executescript(self.SCHEMA)
        except sqlite3.Error as exc:
            from reconciler.exceptions import SandboxError

            raise SandboxError(f"cannot open sandbox database {self.path}: {exc}") from exc
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def reset(self) -> None:
        with self.tx() as c:
            for table in self.TABLES:
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM sqlite_sequence")
