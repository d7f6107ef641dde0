"""The process's own in-memory DuckDB database, where the tool does its local work: the config's
checks of member files and sources, the desired members, the snapshot's diff, explain.

A new DuckDB database costs ~12 ms of CPU (its buffer pool, catalog and threads); a plan used to
open four or five of them. A new connection to the one open database costs ~0.1 ms, so each
caller gets a connection of its own (:func:`connect`): its temporary tables and views, and the
Arrow readers registered on it, are the connection's own and go with it when it is closed.

The database is bounded at :data:`MEMORY_LIMIT` for the whole process and spills to a temporary
folder beyond it (removed at exit). A process forked after the database was opened opens its
own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

import duckdb

__all__ = ["MEMORY_LIMIT", "connect"]

#: the memory of the process's DuckDB work (it spills to a temporary folder beyond it)
MEMORY_LIMIT = "1GB"

_lock = threading.Lock()
#: the database, and the process that opened it
_held: tuple[int, duckdb.DuckDBPyConnection] | None = None


def connect() -> duckdb.DuckDBPyConnection:
    """A new connection to the process's in-memory DuckDB database (opened on first use);
    the caller closes it."""
    global _held
    with _lock:
        if _held is None or _held[0] != os.getpid():
            _held = (os.getpid(), _database())
        return _held[1].cursor()


def _database() -> duckdb.DuckDBPyConnection:
    spill = tempfile.mkdtemp(prefix="reconcile-duckdb-")
    db = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
    pid = os.getpid()

    def close() -> None:
        if os.getpid() == pid:  # a forked child leaves its parent's database alone
            db.close()
            shutil.rmtree(spill, ignore_errors=True)

    atexit.register(close)
    return db
