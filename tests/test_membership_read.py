"""Refresh.AUTO on Epsilon: read live only the customers that changed (and a sample)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _scenario import one_segment_config

from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.model import Segment, StateBuilder
from reconciler.plan import Refresh, Source, changes_digest
from reconciler.plan.changes import LinkChange, Phase
from reconciler.runtime import Overrides
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
N = 30_000


def cid(i: int) -> str:
    return f"k{i:06d}"


def setup(folder: Path, sandbox: Any, members: list[str]) -> Reconciler:
    one_segment_config(folder, members, RETAILER)
    store = StateStore(folder / "state.db")
    return Reconciler(
        load(folder / "audiences.yaml"), store, overrides=Overrides.for_sandbox(sandbox)
    )


def seed(sandbox: Any, rec: Reconciler) -> None:
    """Yesterday: every customer in the segment, on the platform and in the state store."""
    ids = [cid(i) for i in range(N)]
    sandbox.seed(
        {
            "epsilon": {
                "segments": [{"segmentId": "big", "name": "Big", "description": "Many shoppers."}],
                "customers": [{"id": c, "segmentIds": ["big"]} for c in ids],
            }
        }
    )
    b = StateBuilder().add_segment(Segment("big", "Big", "Many shoppers.")).set_access("big", [])
    b.add_customers(ids)
    for c in ids:
        b.set_links(c, ["big"])
    rec.store.replace("eps", b.build())


def reads(sandbox: Any, since: int) -> int:
    return sum(1 for r in sandbox.requests(since=since) if r["method"] == "GET")


def test_auto_reads_only_the_changed_customers_and_plans_the_same(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    today = [cid(i) for i in range(10, N)] + [cid(i) for i in range(N, N + 10)]
    rec = setup(tmp_path, fresh_sandbox, today)
    seed(fresh_sandbox, rec)

    mark = fresh_sandbox.requests()[-1]["id"] if fresh_sandbox.requests() else 0
    auto = asyncio.run(rec.plan(Refresh.AUTO))
    auto_reads = reads(fresh_sandbox, mark)
    mark = fresh_sandbox.requests()[-1]["id"]
    full = asyncio.run(rec.plan(Refresh.FULL))
    full_reads = reads(fresh_sandbox, mark)

    assert changes_digest(auto) == changes_digest(full)
    (tp,) = auto.targets
    assert tp.counts.links_add == 10
    assert tp.counts.links_remove == 10
    assert tp.sources[Phase.LINKS] == Source.TARGETED.value
    assert full.targets[0].sources[Phase.LINKS] == Source.LIVE.value
    assert full_reads == N // 1000  # pages of 1,000, up to the total the first one reports
    assert auto_reads < full_reads / 2
    assert tp.warnings == ()


def test_auto_samples_for_drift_made_on_the_platform(fresh_sandbox: Any, tmp_path: Path) -> None:
    rec = setup(tmp_path, fresh_sandbox, [cid(i) for i in range(N)])
    seed(fresh_sandbox, rec)
    # a third of the customers lose the segment on the platform, behind the reconciler
    fresh_sandbox.seed(
        {
            "epsilon": {
                "customers": [
                    {"id": cid(i), "segmentIds": [] if i % 3 == 0 else ["big"]} for i in range(N)
                ]
            }
        }
    )
    (tp,) = asyncio.run(rec.plan(Refresh.AUTO)).targets
    assert len(tp.warnings) == 1
    assert "sampled customers differ from what was last applied" in tp.warnings[0]
    assert "reconcile drift" in tp.warnings[0]
    # the full read sees all of it
    (full,) = asyncio.run(rec.plan(Refresh.FULL)).targets
    assert full.counts.links_add == N // 3


def _record_behind(rec: Reconciler, sandbox: Any, cid_: str, segs: list[str]) -> None:
    """An apply that wrote to the platform, recorded it, and died before its checkpoint."""
    from reconciler.plan.changes import LinkChange

    sandbox.seed({"epsilon": {"customers": [{"id": cid_, "segmentIds": segs}]}})
    before = rec.store.load("eps").links.get(cid_, frozenset())
    rec.store.record("eps", [LinkChange(cid_, before, frozenset(segs))])


def test_auto_plans_exactly_what_a_full_read_plans(fresh_sandbox: Any, tmp_path: Path) -> None:
    """Same changes, same fingerprint, same sizes and unchanged count, with the diff in
    DuckDB: new and departed members, a segment the config does not manage (kept), customers
    with no segment, and changes recorded after the last snapshot (the overlay)."""
    today = [cid(i) for i in range(50, N)] + [cid(i) for i in range(N, N + 20)]
    rec = setup(tmp_path, fresh_sandbox, today)
    seed(fresh_sandbox, rec)
    # the platform also holds a segment this config does not manage, for some customers
    theirs = [{"id": cid(i), "segmentIds": ["big", "theirs"]} for i in range(0, 600, 3)]
    fresh_sandbox.seed({"epsilon": {"customers": theirs}})
    state = rec.store.load("eps")
    b = StateBuilder().add_segment(Segment("big", "Big", "Many shoppers.")).set_access("big", [])
    b.add_customers([*state.customers, "lonely"])
    for c, segs in state.links.items():
        b.set_links(c, segs | ({"theirs"} if int(c[1:]) < 600 and int(c[1:]) % 3 == 0 else set()))
    rec.store.replace("eps", b.build())
    fresh_sandbox.seed({"epsilon": {"customers": [{"id": "lonely", "segmentIds": []}]}})
    _record_behind(rec, fresh_sandbox, cid(7), ["theirs"])  # left 'big' on a crashed run
    _record_behind(rec, fresh_sandbox, cid(N + 3), ["big"])  # joined on a crashed run
    snapshot = rec.store.snapshot("eps")
    assert snapshot is not None
    assert set(snapshot.overlay) == {cid(7), cid(N + 3)}

    rec.sample, rec.sample_seed = 500, 7
    auto = asyncio.run(rec.plan(Refresh.AUTO))
    full = asyncio.run(rec.plan(Refresh.FULL))
    (a,), (f,) = auto.targets, full.targets
    assert a.sources[Phase.LINKS] == Source.TARGETED.value
    assert changes_digest(auto) == changes_digest(full)
    assert a.remote_fingerprint == f.remote_fingerprint
    assert dict(a.existing) == dict(f.existing)
    assert a.unchanged_links == f.unchanged_links
    assert a.counts.links_remove == 50 - 1  # cid(7) already left
    assert a.counts.links_add == 20 - 1  # cid(N + 3) already joined
    # the unmanaged segment stays on every customer that had it
    (kept,) = [c for c in a.changes if c.key == cid(3)]
    assert isinstance(kept, LinkChange)
    assert sorted(kept.after) == ["theirs"]


def test_auto_after_apply_uses_the_new_snapshot(fresh_sandbox: Any, tmp_path: Path) -> None:
    today = [cid(i) for i in range(10, N)]
    rec = setup(tmp_path, fresh_sandbox, today)
    seed(fresh_sandbox, rec)
    plan = asyncio.run(rec.plan(Refresh.AUTO))
    asyncio.run(rec.apply(plan, verify=False))
    snap = rec.store.snapshot("eps")
    assert snap is not None
    assert snap.overlay == {}
    again = asyncio.run(rec.plan(Refresh.AUTO))
    assert not again.has_changes
    assert again.targets[0].sources[Phase.LINKS] == Source.TARGETED.value
    assert (
        again.targets[0].remote_fingerprint == asyncio.run(rec.plan()).targets[0].remote_fingerprint
    )


def test_a_diff_that_does_not_add_up_refuses_to_plan(
    fresh_sandbox: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """An engine that silently drops a row of the join is caught by the count cross-check."""
    import pytest

    from reconciler.exceptions import PlanError
    from reconciler.membership import duckdb as duckdb_diff

    rec = setup(tmp_path, fresh_sandbox, [cid(i) for i in range(10, N)])
    seed(fresh_sandbox, rec)
    # the join loses one last-applied row, as a spilling join may (DuckDB issue #25702)
    lossy = duckdb_diff.JOIN.replace(
        "last AS l", f"(SELECT * FROM last WHERE customer_id <> '{cid(12)}') AS l"
    )
    monkeypatch.setattr(duckdb_diff, "JOIN", lossy)
    with pytest.raises(PlanError, match="does not add up"):
        asyncio.run(rec.plan(Refresh.AUTO))
