"""Refresh.AUTO on Epsilon: read live only the customers that changed (and a sample)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from reconciler.config import load
from reconciler.engine import Overrides, Reconciler
from reconciler.model import Segment, StateBuilder
from reconciler.providers.base import Refresh, Source
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
N = 30_000


def cid(i: int) -> str:
    return f"k{i:06d}"


def setup(folder: Path, sandbox: Any, members: list[str]) -> Reconciler:
    (folder / "members.txt").write_text("\n".join(members) + "\n")
    (folder / "audiences.yaml").write_text(
        f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: http://127.0.0.1:9/never-used
    retailer_team_id: {RETAILER}
    bearer_token: ${{T_TOKEN}}
    api_key: ${{T_KEY}}
segments:
  - id: big
    name: Big
    description: Many shoppers.
    members:
      files: [members.txt]
"""
    )
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

    assert auto.changes_digest() == full.changes_digest()
    (tp,) = auto.targets
    assert tp.counts.links_add == 10
    assert tp.counts.links_remove == 10
    assert tp.sources["links"] == Source.TARGETED.value
    assert full.targets[0].sources["links"] == Source.LIVE.value
    assert full_reads == N // 1000 + 1  # pages of 1,000, then the empty page that ends it
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
