"""The desired customer ids of a plan against a snapshot whose file says its ids are valid: only
those the file does not hold (they come back from the join) and the overlay's are checked,
and an invalid one is reported as a plan without the snapshot reports it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import Config, _members, load, resolve
from reconciler.exceptions import ConfigError
from reconciler.manager import Reconciler
from reconciler.membership import duckdb as diff_engine
from reconciler.model import Segment, StateBuilder
from reconciler.plan import Plan, Refresh, changes_digest
from reconciler.plan.changes import LinkChange
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"


def _config(folder: Path, rows: list[tuple[str, int]]) -> Config:
    """One Epsilon target, one segment ``big``: the customers of ``customers.csv`` spending 1+."""
    lines = ["customer_id,spend", *(f'"{cid}",{spend}' for cid, spend in rows)]
    (folder / "customers.csv").write_text("\n".join(lines) + "\n")
    (folder / "audiences.yaml").write_text(
        f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: http://127.0.0.1:9/never-used
    retailer_team_id: {RETAILER}
    bearer_token: ${{T_TOKEN}}
    api_key: ${{T_KEY}}
customer_sources:
  shoppers:
    path: customers.csv
    id_column: customer_id
segments:
  - id: big
    name: Big
    description: Many shoppers.
    members:
      rule: {{attribute: spend, gte: 1}}
"""
    )
    return load(folder / "audiences.yaml")


def _store(folder: Path, ids: list[str]) -> StateStore:
    """Yesterday's apply: ``ids`` in ``big``, checkpointed into a snapshot file."""
    b = StateBuilder().add_segment(Segment("big", "Big", "Many shoppers.")).set_access("big", [])
    b.add_customers(ids)
    for cid in ids:
        b.set_links(cid, ["big"])
    store = StateStore(folder / "state.db")
    store.replace("eps", b.build())
    store.checkpoint("eps")
    return store


def _plan(config: Config, store: StateStore) -> Plan:
    return asyncio.run(Reconciler(config, store).plan(Refresh.NONE))


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The whole id checks the diff runs after its join (each one's table)."""
    monkeypatch.setenv("T_TOKEN", "t")
    monkeypatch.setenv("T_KEY", "k")
    ran: list[str] = []
    whole = _members.check_ids

    def counted(config: Config, segments: Any, con: Any, table: str = "members") -> None:
        ran.append(table)
        whole(config, segments, con, table)

    monkeypatch.setattr(diff_engine, "check_ids", counted)
    return ran


YESTERDAY = [f"c{i:04d}" for i in range(200)]


def test_valid_new_ids_are_checked_from_the_join_alone_and_plan_the_same(
    tmp_path: Path, checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, [(c, 5) for c in YESTERDAY[20:]] + [("n1", 3), ("n2", 0)])
    store = _store(tmp_path, YESTERDAY)
    snapshot = store.snapshot("eps")
    assert snapshot is not None
    assert diff_engine._ids_checked(_con(), snapshot)
    fast = _plan(config, store)
    assert checks == []  # nothing invalid came back: the whole check never ran
    monkeypatch.setattr(diff_engine, "_ids_checked", lambda con, snapshot: False)
    whole = _plan(config, store)
    assert changes_digest(fast) == changes_digest(whole)
    links = [c for c in fast.targets[0].changes if isinstance(c, LinkChange)]
    assert len(links) == 21  # 20 leave, n1 joins


def test_an_invalid_new_id_is_reported_as_without_the_snapshot(
    tmp_path: Path, checks: list[str]
) -> None:
    config = _config(tmp_path, [(c, 5) for c in YESTERDAY] + [("bad id", 2), ("x\x85y", 9)])
    store = _store(tmp_path, YESTERDAY)
    with pytest.raises(ConfigError) as planned:
        _plan(config, store)
    with pytest.raises(ConfigError) as resolved:
        resolve(config)
    assert checks == ["wanted"]
    assert [str(p) for p in planned.value.problems] == [str(p) for p in resolved.value.problems]
    assert len(planned.value.problems) == 2
    assert "customer id 'bad id'" in str(planned.value.problems[0])


def test_an_invalid_id_only_the_overlay_holds_is_checked(tmp_path: Path, checks: list[str]) -> None:
    """A customer changed since the file was written (here read from the platform as it is),
    desired unchanged: it does not come back from the join, the overlay's check finds it."""
    config = _config(tmp_path, [(c, 5) for c in YESTERDAY] + [("x y", 5)])
    store = _store(tmp_path, YESTERDAY)
    store.record("eps", [LinkChange("x y", frozenset(), frozenset({"big"}))])
    snapshot = store.snapshot("eps")
    assert snapshot is not None
    assert "x y" in snapshot.overlay
    with pytest.raises(ConfigError) as planned:
        _plan(config, store)
    assert checks == ["wanted"]
    assert "customer id 'x y'" in str(planned.value.problems[0])


def test_a_file_holding_an_invalid_id_does_not_say_its_ids_are_valid(
    tmp_path: Path, checks: list[str]
) -> None:
    """A platform's customer the reconciler would refuse: the plan checks every id first."""
    store = _store(tmp_path, [*YESTERDAY, "odd id"])
    snapshot = store.snapshot("eps")
    assert snapshot is not None
    assert not diff_engine._ids_checked(_con(), snapshot)
    config = _config(tmp_path, [(c, 5) for c in YESTERDAY])
    plan = _plan(config, store)
    assert checks == []  # checked before the join, as without a snapshot
    assert plan.targets[0].counts.links_remove == 1


def _con() -> Any:
    from reconciler.engines import memory

    return memory.connect()
