"""The state store: record as acknowledged, load back, journal, locks."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from reconciler.changes import AccessChange, Action, CustomerChange, LinkChange, SegmentChange
from reconciler.exceptions import LockedError
from reconciler.model import Segment
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
