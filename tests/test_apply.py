"""The executor, with an in-memory provider: order, batching, splitting, dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from reconciler.apply import ApplyEvent, apply_target
from reconciler.exceptions import BatchRejected
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import Capabilities, RemoteState, TargetPlan, build_target_plan
from reconciler.plan.changes import Change, Phase
from reconciler.plan.diff import Ownership
from reconciler.providers.base import (
    ItemResult,
    Provider,
    ProviderContext,
    ReadScope,
)
from reconciler.statestore import StateStore


class Recorder(Provider):
    type: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batch_size={Phase.SEGMENTS: 1, Phase.ACCESS: 1, Phase.CUSTOMERS: 4, Phase.LINKS: 1},
        concurrency=3,
    )
    bad: frozenset[str] = frozenset()

    def __init__(self, store: StateStore, tmp: Path) -> None:
        super().__init__("mem", {}, {}, ProviderContext(store, tmp))
        self.calls: list[tuple[Phase, tuple[str, ...]]] = []

    async def read(self, scope: ReadScope) -> RemoteState:
        return RemoteState(State(), {})

    async def write(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        self.calls.append((phase, tuple(c.key for c in changes)))
        await asyncio.sleep(0)
        if any(c.key in self.bad for c in changes):
            raise BatchRejected("HTTP 400: invalid id")
        return [ItemResult(c.key, True) for c in changes]


def plan_for(desired: State) -> TargetPlan:
    return build_target_plan(
        "mem", "memory", Recorder.capabilities, desired, RemoteState(State(), {}), Ownership()
    )


def desired(n: int = 10) -> State:
    b = StateBuilder().add_segment(Segment("s1", "S1")).add_segment(Segment("s2", "S2"))
    for i in range(n):
        b.add_customers([f"c{i:02d}"]).set_links(f"c{i:02d}", ["s1"])
    return b.build()


def test_phases_run_in_order_in_batches(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    provider = Recorder(store, tmp_path)
    result = asyncio.run(apply_target(provider, plan_for(desired()), store))
    phases = [p for p, _ in provider.calls]
    assert phases == sorted(phases, key=list(Phase).index)
    customer_batches = [keys for p, keys in provider.calls if p is Phase.CUSTOMERS]
    assert [len(b) for b in customer_batches] == [4, 4, 2]
    assert result.applied == 2 + 10 + 10
    assert result.failures == []
    assert store.load("mem").links == desired().links


def test_a_rejected_batch_is_split_to_isolate_the_bad_item(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    provider = Recorder(store, tmp_path)
    provider.bad = frozenset({"c05"})
    result = asyncio.run(apply_target(provider, plan_for(desired()), store))
    failed = {(f.phase, f.key) for f in result.failures}
    # c05 could not be created, so its link was not even sent
    assert failed == {("customers", "c05"), ("links", "c05")}
    assert any("skipped: customer c05 could not be created" in f.error for f in result.failures)
    assert set(store.load("mem").customers) == {f"c{i:02d}" for i in range(10)} - {"c05"}
    linked = [keys for p, keys in provider.calls if p is Phase.LINKS]
    assert ("c05",) not in linked
    assert len(linked) == 9


def test_interrupted_runs_are_reported_by_the_next_apply(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    run = store.start_run("mem", "x")
    store.record_batch(run, "links", 1, 1, 0)
    events: list[ApplyEvent] = []
    result = asyncio.run(
        apply_target(Recorder(store, tmp_path), plan_for(desired(2)), store, reporter=events.append)
    )
    assert [r.id for r in result.resumed] == [run]
    assert any(e.kind == "note" and "interrupted" in e.message for e in events)
    assert store.interrupted_runs("mem") == []
