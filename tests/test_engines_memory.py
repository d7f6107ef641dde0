"""The process's in-memory DuckDB database: one, bounded, and a connection of its own to each
caller."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest.mock import patch

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


_HOLDS_ITS_DATABASE = (
    "import sys\n"
    "from reconciler.engines import memory\n"
    "con = memory.connect()\n"
    "print(con.execute(\"SELECT current_setting('temp_directory')\").fetchall()[0][0], "
    "flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.mark.skipif(os.name != "posix", reason="file locks")
def test_the_spill_folder_of_a_killed_process_is_removed_and_a_live_ones_kept(
    tmp_path: Path,
) -> None:
    stranger = tmp_path / f"{memory.PREFIX}not-ours"  # no lock file: left alone
    stranger.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDS_ITS_DATABASE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert child.stdout is not None
        answered, _, _ = select.select([child.stdout], [], [], 60)  # only catches a hang
        assert answered
        folder = Path(child.stdout.readline().strip())
        assert folder.parent == tmp_path
        assert folder.is_dir()
        memory.sweep(str(tmp_path))  # its process lives: kept
        assert folder.is_dir()
    finally:
        child.kill()  # SIGKILL: no exit handler runs, the folder stays behind
        child.wait(60)
        if child.stdout is not None:
            child.stdout.close()
        if child.stdin is not None:
            child.stdin.close()
    assert folder.is_dir()
    memory.sweep(str(tmp_path))
    assert not folder.exists()
    assert stranger.is_dir()


@pytest.mark.skipif(os.name != "posix", reason="file locks")
def test_a_database_opened_removes_what_killed_processes_left(tmp_path: Path) -> None:
    """The sweep runs where a spill folder is made: a folder left unlocked goes."""
    left = tmp_path / f"{memory.PREFIX}left"
    left.mkdir()
    (left / "held").write_text("")
    (left / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1024)
    with patch.object(tempfile, "tempdir", str(tmp_path)):
        folder = memory._spill_folder()
    try:
        assert not left.exists()
        assert Path(folder).parent == tmp_path
        assert (Path(folder) / "held").is_file()
    finally:
        os.close(memory._locks.pop())
        shutil.rmtree(folder)
