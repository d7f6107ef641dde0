"""The process's in-memory DuckDB database: one, bounded, and a connection of its own to each
caller."""

from __future__ import annotations

import os
import select
import signal
import sys

import pytest

from reconciler.engines import memory


def test_each_connection_has_its_own_temporary_tables_on_the_one_database() -> None:
    first, second = memory.connect(), memory.connect()
    try:
        first.execute("CREATE TEMP TABLE members AS SELECT 1 AS n")
        second.execute("CREATE TEMP TABLE members AS SELECT 2 AS n")
        assert first.execute("SELECT n FROM members").fetchall() == [(1,)]
        assert second.execute("SELECT n FROM members").fetchall() == [(2,)]
        # one database: a connection sees the same settings, bounded with a spill folder
        ((limit, spill),) = first.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchall()
        assert limit.replace(" ", "") in {"953.6MiB", "1.0GB", "1GB"}, limit
        assert os.path.basename(spill).startswith("reconcile-duckdb-"), spill
    finally:
        first.close()
    # closed, its tables are gone; the other connection and the database go on
    third = memory.connect()
    try:
        assert third.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'members'"
        ).fetchall() == [(0,)]
        assert second.execute("SELECT n FROM members").fetchall() == [(2,)]
    finally:
        second.close()
        third.close()


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_opens_a_database_of_its_own() -> None:
    parent = memory.connect()
    parent.execute("CREATE TEMP TABLE mine AS SELECT 1 AS n")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a working connection, on a database that is not the parent's
        try:
            con = memory.connect()
            ok = con.execute("SELECT 41 + 1").fetchall() == [(42,)]
            own = memory._held is not None and memory._held[0] == os.getpid()
            os.write(write, b"ok" if ok and own else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answered, _, _ = select.select([read], [], [], 60)  # only catches a hang
    if not answered:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert answered
    assert os.read(read, 2) == b"ok"
    os.close(read)
    assert parent.execute("SELECT n FROM mine").fetchall() == [(1,)]
    parent.close()
