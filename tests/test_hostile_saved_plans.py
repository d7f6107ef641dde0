"""A saved plan applied through the library, with no command line: the core itself refuses one
that is stale (the remote or the config moved on, or the plan was edited), and applies one whose
changes are still exactly the same. A plan the reconciler made itself is applied as it is."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from _scenario import write_config

from reconciler.config import load
from reconciler.exceptions import StalePlanError
from reconciler.manager import Reconciler
from reconciler.plan import Plan, read_plan_file, save_plan
from reconciler.statestore import StateStore


def feed_reconciler(config: Path, state: Path) -> Reconciler:
    return Reconciler(load(config), StateStore(state))


def saved_plan(tmp_path: Path, *, edited: bool = False) -> tuple[Path, Plan]:
    config = write_config(tmp_path, ["epsilon-feed"], edited=edited)
    made = asyncio.run(feed_reconciler(config, tmp_path / "state.db").plan())
    assert made.has_changes
    save_plan(made, tmp_path / "plan.json", config)
    saved = read_plan_file(tmp_path / "plan.json")
    assert saved is not None
    return config, saved


def feed_files(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "feed"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}


def test_a_stale_saved_plan_is_refused_by_the_library(tmp_path: Path) -> None:
    config, saved = saved_plan(tmp_path)
    other = feed_reconciler(config, tmp_path / "state.db")  # someone applies in between
    asyncio.run(other.apply(asyncio.run(other.plan())))
    before = feed_files(tmp_path)
    assert before

    rec = feed_reconciler(config, tmp_path / "state.db")
    with pytest.raises(StalePlanError, match="the remote state of feed changed"):
        asyncio.run(rec.apply(saved))
    assert feed_files(tmp_path) == before  # nothing was written


def test_a_saved_plan_whose_config_moved_on_is_refused(tmp_path: Path) -> None:
    config, saved = saved_plan(tmp_path)
    write_config(tmp_path, ["epsilon-feed"], edited=True)
    rec = feed_reconciler(config, tmp_path / "state.db")
    with pytest.raises(StalePlanError, match="the config changed"):
        asyncio.run(rec.apply(saved))
    assert feed_files(tmp_path) == {}


def test_a_plan_edited_since_it_was_made_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, ["epsilon-feed"])
    rec = feed_reconciler(config, tmp_path / "state.db")
    made = asyncio.run(rec.plan())
    (tp,) = made.targets
    edited = dataclasses.replace(made, targets=(dataclasses.replace(tp, changes=tp.changes[1:]),))
    with pytest.raises(StalePlanError, match="the changes differ"):
        asyncio.run(rec.apply(edited))
    assert feed_files(tmp_path) == {}


def test_a_saved_plan_still_fresh_is_applied(tmp_path: Path) -> None:
    config, saved = saved_plan(tmp_path)
    rec = feed_reconciler(config, tmp_path / "state.db")
    (result,) = asyncio.run(rec.apply(saved))
    assert result.ok
    assert result.applied == len(saved.targets[0].changes)
    assert result.remaining == 0


def test_a_plan_the_reconciler_made_is_not_planned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, ["epsilon-feed"])
    rec = feed_reconciler(config, tmp_path / "state.db")
    made = dataclasses.replace(asyncio.run(rec.plan()), config_path="elsewhere/audiences.yaml")

    async def no_replan(*args: Any, **kwargs: Any) -> Plan:
        raise AssertionError("planned again")

    monkeypatch.setattr(rec, "replan", no_replan)
    (result,) = asyncio.run(rec.apply(made, verify=False))
    assert result.ok
