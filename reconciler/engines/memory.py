"""The process's own in-memory DuckDB database, where the tool does its local work: the config's
checks of member files and sources, the desired members, the snapshot's diff, explain.

A new DuckDB database costs ~12 ms of CPU (its buffer pool, catalog and threads); a plan used to
open four or five of them. A new connection to the one open database costs ~0.1 ms, so each
caller gets a connection of its own (:func:`connect`): its temporary tables and views, and the
Arrow readers registered on it, are the connection's own and go with it when it is closed.

The database is bounded at :data:`MEMORY_LIMIT` for the whole process and spills to a temporary
folder beyond it (removed at exit). A process forked after the database was opened opens its
own. A process killed before its exit leaves its folder behind, spilled files included: the
folder holds a file locked while its process lives (the kernel releases the lock when it dies),
and the next database opened removes the folders whose lock it can take.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

import duckdb

__all__ = ["MEMORY_LIMIT", "PREFIX", "connect", "sweep"]

#: the memory of the process's DuckDB work (it spills to a temporary folder beyond it)
MEMORY_LIMIT = "1GB"

#: the spill folders' prefix, and the file a folder's process holds locked while it lives
PREFIX = "reconcile-duckdb-"
_HELD = "held"
#: the open files of this process's locks (closed when it ends)
_locks: list[int] = []

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


def _spill_folder() -> str:
    """A new spill folder, locked for this process's life (where the OS locks files)."""
    root = tempfile.gettempdir()
    sweep(root)
    folder = tempfile.mkdtemp(prefix=PREFIX, dir=root)
    if os.name != "posix":
        return folder
    import fcntl

    # locked under another name, then renamed: a sweep never finds it unlocked
    fd = os.open(os.path.join(folder, ".held"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(os.path.join(folder, ".held"), os.path.join(folder, _HELD))
    _locks.append(fd)
    return folder


def sweep(root: str) -> None:
    """Remove the spill folders in ``root`` whose process has ended without removing its own
    (their lock is free). Folders without a lock file, and those of live processes, stay."""
    if os.name != "posix":
        return
    import fcntl

    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if not name.startswith(PREFIX):
            continue
        folder = os.path.join(root, name)
        try:
            fd = os.open(os.path.join(folder, _HELD), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # not a folder of this kind, or another user's
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive
            continue
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def _database() -> duckdb.DuckDBPyConnection:
    spill = _spill_folder()
    db = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
    pid = os.getpid()

    def close() -> None:
        if os.getpid() != pid:  # a forked child leaves its parent's database alone
            return
        if os.name != "posix":  # an open file cannot be removed there: let them go first
            db.close()
        # elsewhere the process's end frees the database (closing it gives its memory back
        # piece by piece: ~10 ms after a plan of a million customers), and the spilled files
        # go with their folder
        shutil.rmtree(spill, ignore_errors=True)

    atexit.register(close)
    return db
