"""The state store: record as acknowledged, load back, journal, locks."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from reconciler.exceptions import LockedError
from reconciler.model import Segment
from reconciler.plan.changes import AccessChange, Action, CustomerChange, LinkChange, SegmentChange
from reconciler.statestore import StateStore


def test_records_changes_and_loads_them_back(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.record(
        "t",
        [
            SegmentChange(Action.CREATE, "a", None, Segment("a", "A", "d")),
            AccessChange(Action.CREATE, "a", frozenset(), frozenset({"t1", "t2"})),
            CustomerChange(Action.CREATE, "c1"),
            LinkChange("c1", frozenset(), frozenset({"a", "x"})),
        ],
    )
    state = store.load("t")
    assert state.segments == {"a": Segment("a", "A", "d")}
    assert state.access == {"a": {"t1", "t2"}}
    assert state.customers == {"c1"}
    assert state.links == {"c1": {"a", "x"}}
    assert store.load("other").segments == {}


def test_deleting_a_segment_drops_its_access_and_links(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.record(
        "t",
        [
            SegmentChange(Action.CREATE, "a_1", None, Segment("a_1", "A")),
            SegmentChange(Action.CREATE, "ab1", None, Segment("ab1", "B")),
            AccessChange(Action.CREATE, "a_1", frozenset(), frozenset({"t1"})),
            LinkChange("c1", frozenset(), frozenset({"a_1", "ab1"})),
            LinkChange("c2", frozenset(), frozenset({"a_1"})),
        ],
    )
    store.record("t", [SegmentChange(Action.DELETE, "a_1", Segment("a_1", "A"), None)])
    state = store.load("t")
    assert set(state.segments) == {"ab1"}
    assert state.access == {}
    assert state.links == {"c1": {"ab1"}}


def test_journal_reports_interrupted_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    run = store.start_run("t", "digest")
    store.record_batch(run, "links", 10, 9, 1)
    (record,) = store.interrupted_runs("t")
    assert (record.batches, record.items_ok, record.items_failed) == (1, 9, 1)
    store.close_interrupted("t")
    assert store.interrupted_runs("t") == []


def _hold_lock(path: str, ready: Any, done: Any) -> None:
    store = StateStore(path)
    with store.lock("t"):
        ready.set()
        done.wait(10)


def test_lock_refuses_a_second_holder_and_is_released_when_the_holder_dies(
    tmp_path: Path,
) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path / "s.db"), ready, done))
    proc.start()
    assert ready.wait(10)
    store = StateStore(tmp_path / "s.db")
    refused = pytest.raises(LockedError, match="another apply is running on target 't'")
    with refused, store.lock("t"):
        pass
    proc.kill()
    proc.join()
    with store.lock("t", wait=2):
        pass


def test_the_snapshot_folds_changes_in_and_equals_a_full_rebuild(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    assert store.snapshot("t") is None
    store.record(
        "t",
        [CustomerChange(Action.CREATE, f"c{i}") for i in range(6)]
        + [
            LinkChange(f"c{i}", frozenset(), frozenset({"a", "b"} if i % 2 else {"a"}))
            for i in range(5)
        ]
        + [LinkChange("ghost", frozenset(), frozenset({"b"}))],
    )
    store.checkpoint("t")
    first = store.snapshot("t")
    assert first is not None
    assert first.overlay == {}
    assert (first.customers, first.links) == (6, 7 + 1)
    # changes after the checkpoint are visible as an overlay until the next one
    store.record(
        "t",
        [
            LinkChange("c1", frozenset({"a", "b"}), frozenset()),
            CustomerChange(Action.DELETE, "c5"),
            CustomerChange(Action.CREATE, "c9"),
            LinkChange("c9", frozenset(), frozenset({"z", "a"})),
        ],
    )
    seen = store.snapshot("t")
    assert seen is not None
    assert seen.overlay == {"c1": (True, ""), "c5": (False, ""), "c9": (True, "a\x1fz")}
    store.checkpoint("t")
    folded = store.snapshot("t")
    assert folded is not None
    assert folded.overlay == {}
    # the file replaced stays for a plan that may still be reading it, until the next one
    assert first.path.exists()
    store.record("t", [CustomerChange(Action.CREATE, "c10")])
    store.checkpoint("t")
    assert first.path.exists() is False
    assert folded.path.exists()
    store.record("t", [CustomerChange(Action.DELETE, "c10")])
    store.checkpoint("t")
    assert folded.path.exists() is False
    folded = store.snapshot("t")
    assert folded is not None
    # the same store rebuilt from scratch gives the same file sums and sizes
    other = StateStore(tmp_path / "other.db")
    other.replace("t", store.load("t"))
    rebuilt = other.snapshot("t")
    assert rebuilt is not None
    assert (folded.customers, folded.links, folded.customers_sum, folded.links_sum) == (
        rebuilt.customers,
        rebuilt.links,
        rebuilt.customers_sum,
        rebuilt.links_sum,
    )
    import pyarrow.parquet as pq

    def rows(path: Path) -> list[tuple[str, bool, str]]:
        t = pq.read_table(path).to_pylist()
        return sorted((r["customer_id"], r["known"], r["segments"]) for r in t)

    assert rows(folded.path) == rows(rebuilt.path)
    assert ("c1", True, "") in rows(folded.path)
    assert all(r[0] != "c5" for r in rows(folded.path))


def test_a_checkpoint_that_dies_before_its_commit_leaves_the_old_snapshot(
    tmp_path: Path, monkeypatch: Any
) -> None:
    store = StateStore(tmp_path / "s.db")
    store.record("t", [CustomerChange(Action.CREATE, "c1")])
    store.checkpoint("t")
    store.record("t", [CustomerChange(Action.CREATE, "c2")])

    def die(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_tx", die)
    with pytest.raises(KeyboardInterrupt):
        store.checkpoint("t")
    monkeypatch.undo()
    snap = store.snapshot("t")
    assert snap is not None
    assert snap.customers == 1
    assert snap.overlay == {"c2": (True, "")}  # still marked: nothing is lost
    store.checkpoint("t")
    after = store.snapshot("t")
    assert after is not None
    assert (after.customers, after.overlay) == (2, {})
    # the orphan is removed; the file replaced stays until the next checkpoint
    files = {p.name for p in (tmp_path / "s.snapshots").glob("*.parquet")}
    assert files == {after.path.name, snap.path.name}


def test_replace_keeps_the_file_it_replaces_for_one_checkpoint(tmp_path: Path) -> None:
    """A refresh (or import) rebuilds the snapshot from scratch; a plan reading the old file
    keeps it until the next checkpoint."""
    store = StateStore(tmp_path / "s.db")
    store.record("t", [CustomerChange(Action.CREATE, "c1")])
    store.checkpoint("t")
    old = store.snapshot("t")
    assert old is not None
    store.replace("t", store.load("t"))
    new = store.snapshot("t")
    assert new is not None
    assert new.path != old.path
    assert old.path.exists()
    store.record("t", [CustomerChange(Action.CREATE, "c2")])
    store.checkpoint("t")
    assert not old.path.exists()
    assert new.path.exists()


def test_replace_keeps_prevent_destroy(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.record("t", [SegmentChange(Action.CREATE, "a", None, Segment("a", "A"))])
    store.set_protection("t", ["a"])
    store.replace("t", store.load("t"))
    assert store.protected("t") == {"a"}


@pytest.mark.parametrize(
    ("rows", "groups"),
    [(10, 1), (16 * 1024 * 3, 3), (100_000, 7), (1_000_000, 8), (2_000_000, 16)],
)
def test_a_snapshot_file_is_cut_into_row_groups_every_thread_can_take(
    rows: int, groups: int
) -> None:
    """Eight row groups (of 16Ki to 128Ki rows): DuckDB reads a small file on every thread."""
    from reconciler.statestore.snapshot import row_group_size

    size = row_group_size(rows)
    assert 16 * 1024 <= size <= 128 * 1024
    assert -(-rows // size) == groups


def test_a_snapshot_file_holds_the_row_groups_its_size_asks_for(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from reconciler.statestore import snapshot as snapshots

    store = StateStore(tmp_path / "s.db")
    rows = snapshots.MIN_ROW_GROUP * 2 + 1
    store.record("t", [CustomerChange(Action.CREATE, f"c{i:06d}") for i in range(rows)])
    store.checkpoint("t")
    found = store.snapshot("t")
    assert found is not None
    assert pq.ParquetFile(found.path).metadata.num_row_groups == 3
