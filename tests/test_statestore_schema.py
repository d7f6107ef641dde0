"""The state store's schema version: a store written by an earlier release is migrated forward
in one transaction when opened, and a store written by a later one is refused untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.exceptions import StateStoreError
from reconciler.model import Segment
from reconciler.plan.changes import Action, SegmentChange
from reconciler.statestore import SCHEMA_VERSION, StateStore, _db

# the schema of the first release, exactly as it shipped (no version recorded: user_version 0)
V1_SCHEMA = """
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


def _v1_store(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.executescript(
        "INSERT INTO segments VALUES ('t', 'vip', 'VIP', 'Best customers', 1);"
        "INSERT INTO access VALUES ('t', 'vip', 'team-a\x1fteam-b');"
        "INSERT INTO customers VALUES ('t', 'c1'), ('t', 'c2');"
        "INSERT INTO links VALUES ('t', 'c1', 'vip'), ('t', 'c2', 'vip');"
        "INSERT INTO runs VALUES (1, 't', 'd', 100.0, 101.0, 'ok', '{\"applied\": 5}');"
        "INSERT INTO batches VALUES (1, 1, 'links', 2, 2, 0, 100.5);"
    )
    db.commit()
    db.close()


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_store_of_the_first_release_is_migrated_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _v1_store(path)
    assert _version(path) == 0
    store = StateStore(path)
    assert store.schema_version == SCHEMA_VERSION > 1
    state = store.load("t")
    assert state.segments == {"vip": Segment("vip", "VIP", "Best customers")}
    assert state.access == {"vip": {"team-a", "team-b"}}
    assert state.links == {"c1": {"vip"}, "c2": {"vip"}}
    assert store.protected("t") == {"vip"}
    (run,) = store.runs("t")
    assert (run.status, run.batches, run.summary) == ("ok", 1, {"applied": 5})
    # the migrated store takes this release's writes (the column the migration added)
    record = store.segment_record("t", "vip")
    assert record is not None
    assert record.updated is None
    store.record("t", [SegmentChange(Action.UPDATE, "vip", None, Segment("vip", "V", "d"))])
    record = store.segment_record("t", "vip")
    assert record is not None
    assert record.updated is not None
    assert record.members == 2
    store.close()
    assert _version(path) == SCHEMA_VERSION
    StateStore(path).close()  # opened again: already current, nothing to do


def test_a_new_store_is_created_at_the_current_version(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    assert store.schema_version == SCHEMA_VERSION
    columns = {r[1] for r in store._db.execute("PRAGMA table_info(segments)")}
    assert "updated" in columns


def test_a_store_of_a_later_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(
        StateStoreError,
        match=rf"schema version {SCHEMA_VERSION + 1}, newer .*"
        "upgrade audience-reconciler",
    ):
        StateStore(path)
    assert path.read_bytes() == before


def test_a_migration_that_fails_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    _v1_store(path)
    failing = (("ALTER TABLE segments ADD COLUMN later REAL",), ("ALTER TABLE nowhere ADD x",))
    monkeypatch.setattr(_db, "MIGRATIONS", _db.MIGRATIONS + failing)
    monkeypatch.setattr(_db, "SCHEMA_VERSION", _db.SCHEMA_VERSION + len(failing))
    with pytest.raises(StateStoreError, match=r"from schema version 1 to .*left as it was"):
        StateStore(path)
    db = sqlite3.connect(path)
    columns = {r[1] for r in db.execute("PRAGMA table_info(segments)")}
    db.close()
    assert "later" not in columns
    assert "updated" not in columns
    assert _version(path) == 0


def test_a_table_added_to_the_base_schema_needs_no_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    added = _db._SCHEMA + "CREATE TABLE IF NOT EXISTS later (x TEXT);\n"
    monkeypatch.setattr(_db, "_SCHEMA", added)
    store = StateStore(path)
    assert store._db.execute("SELECT COUNT(*) FROM later").fetchone() == (0,)
    assert store.schema_version == SCHEMA_VERSION
