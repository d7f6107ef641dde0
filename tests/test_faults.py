"""Apply under injected faults: 20% of platform requests fail (429 with Retry-After, 500, 502,
503, a timeout past the client's, a dropped connection, or "applied but answered 500").

Whatever the faults, after apply the remote equals the desired state exactly: no lost write, no
duplicate, no stray membership; and the retries show in the result. Retries are made fast
(tiny backoff, short client timeout) so each run takes a moment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _scenario import write_config
from hostile.configs import write_dense_config
from hostile.remote import (
    FAST_RETRY,
    FAULT_DELAY,
    assert_epsilon_matches,
    assert_talonone_matches,
    desired_of,
    fast_overrides,
)

from reconciler.apply import ApplyResult
from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.sandbox import Sandbox
from reconciler.statestore import StateStore

SEEDS = [1, 7, 42, 1234, 99991]
KINDS = "429+500+502+503+timeout+drop+applied500"


def faults(seed: int, rate: float = 0.2) -> str:
    return f"seed={seed},rate={rate},kinds={KINDS},delay={FAULT_DELAY},route=*"


def apply_until_converged(
    cfg: Path, sandbox: Sandbox, state: Path, max_runs: int = 3
) -> list[list[ApplyResult]]:
    """Plan and apply as a user would: again while a run reports failures. Returns each run's
    results (the first run's should already be complete)."""
    runs: list[list[ApplyResult]] = []
    for _ in range(max_runs):
        store = StateStore(state)
        try:
            rec = Reconciler(load(cfg), store, overrides=fast_overrides(sandbox), retry=FAST_RETRY)
            plan = asyncio.run(rec.plan())
            if not plan.has_changes:
                break
            results = asyncio.run(rec.apply(plan, force=True))
        finally:
            store.close()
        runs.append(results)
        if all(r.ok for r in results):
            break
    return runs


def no_changes_left(cfg: Path, sandbox: Sandbox, state: Path) -> bool:
    store = StateStore(state)
    try:
        rec = Reconciler(load(cfg), store, overrides=fast_overrides(sandbox), retry=FAST_RETRY)
        return not asyncio.run(rec.plan()).has_changes
    finally:
        store.close()


def faulted(sandbox: Sandbox, since: int = 0) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in sandbox.requests(since=since):
        if r["fault"]:
            counts[r["fault"]] = counts.get(r["fault"], 0) + 1
    return counts


def check_first_run(runs: list[list[ApplyResult]]) -> None:
    assert runs, "apply found nothing to do"
    first = runs[0]
    assert [r.failures for r in first] == [[]], "retries should absorb 20% faults in one run"
    assert all(r.remaining == 0 for r in first)
    # a run of a few requests may draw no fault; one of hundreds always does
    if sum(r.requests for r in first) >= 50:
        assert sum(r.retries for r in first) > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_epsilon_converges_exactly_under_faults(
    fresh_sandbox: Sandbox, tmp_path: Path, seed: int
) -> None:
    state = tmp_path / "state.db"
    fresh_sandbox.set_faults(faults(seed))
    cfg = write_config(tmp_path, ["epsilon"])
    base_desired = desired_of(cfg)["eps"]
    runs = apply_until_converged(cfg, fresh_sandbox, state)
    check_first_run(runs)
    seen = faulted(fresh_sandbox)
    assert sum(seen.values()) > 0
    fresh_sandbox.set_faults(None)
    assert_epsilon_matches(fresh_sandbox.state(), base_desired)
    assert no_changes_left(cfg, fresh_sandbox, state)

    # the edit (access change, adds, removes, a new and a removed segment), still faulted
    since = fresh_sandbox.requests()[-1]["id"]
    fresh_sandbox.set_faults(faults(seed + 1))
    cfg = write_config(tmp_path, ["epsilon"], edited=True)
    edited = desired_of(cfg)["eps"]
    runs = apply_until_converged(cfg, fresh_sandbox, state)
    check_first_run(runs)
    fresh_sandbox.set_faults(None)
    assert_epsilon_matches(
        fresh_sandbox.state(),
        edited,
        renamed={"seg-b"},  # the API cannot rename: the plan warns, the name stays
        dropped={"seg-c"},  # the API cannot delete: unlinked, access cleared, left in place
        customers=set(base_desired.customers) | set(edited.customers),
    )
    assert no_changes_left(cfg, fresh_sandbox, state)
    assert sum(faulted(fresh_sandbox, since).values()) > 0

    # every segment was created exactly once: later creates of one are answered 409
    creates = [r for r in fresh_sandbox.requests() if r["route"] == "POST /epsilon/v1/segments"]
    performed = [r for r in creates if r["status"] == 200 and r["fault"] in (None, "timeout")]
    assert len(performed) <= 4  # seg-a, seg-b, seg-c, seg-d
    assert all(r["status"] in (200, 409, 500, 502, 503, 429, 0) for r in creates)


@pytest.mark.parametrize(
    ("seed", "dense"),
    [*((s, True) for s in SEEDS[:4]), (SEEDS[4], False)],
    ids=[*(f"dense-{s}" for s in SEEDS[:4]), f"scenario-{SEEDS[4]}"],
)
def test_talonone_converges_exactly_under_faults(
    fresh_sandbox: Sandbox, tmp_path: Path, seed: int, dense: bool
) -> None:
    """The scenario config (few requests), and a denser one (12 audiences of 100 out of 300
    customers: several full 1000-action requests), base then edited, faulted throughout."""

    def config(edited: bool) -> Path:
        if dense:
            return write_dense_config(tmp_path, ["talonone"], seed=seed, edited=edited)
        return write_config(tmp_path, ["talonone"], edited=edited)

    state = tmp_path / "state.db"
    for step, edited in enumerate((False, True)):
        fresh_sandbox.set_faults(faults(seed + step))
        cfg = config(edited)
        runs = apply_until_converged(cfg, fresh_sandbox, state)
        check_first_run(runs)
        fresh_sandbox.set_faults(None)
        # Talon.One can rename and delete: the remote is exactly the config
        assert_talonone_matches(fresh_sandbox.state(), desired_of(cfg)["talon"])
        assert no_changes_left(cfg, fresh_sandbox, state)
    if dense:
        assert sum(faulted(fresh_sandbox).values()) > 0


def test_inspection_routes_are_never_faulted(fresh_sandbox: Sandbox) -> None:
    """The checks above read the sandbox through /_sandbox/: faults must not touch them."""
    fresh_sandbox.set_faults("seed=3,rate=1,kinds=500+drop,route=*")
    for _ in range(20):
        assert "epsilon" in fresh_sandbox.state()
        fresh_sandbox.requests()
    assert fresh_sandbox.requests() == []  # nor logged


def test_every_fault_kind_is_exercised(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    """Across one faulted apply of both platforms, every kind of fault actually happened (so
    the convergence tests above cover each), and the apply still converged."""
    fresh_sandbox.set_faults(faults(5, rate=0.3))
    cfg = write_config(tmp_path, ["epsilon", "talonone"])
    runs = apply_until_converged(cfg, fresh_sandbox, tmp_path / "state.db")
    assert runs
    assert all(r.ok for r in runs[-1])
    seen: dict[str, Any] = faulted(fresh_sandbox)
    assert set(seen) == set(KINDS.split("+"))
    fresh_sandbox.set_faults(None)
    desired = desired_of(cfg)
    assert_epsilon_matches(fresh_sandbox.state(), desired["eps"])
    assert_talonone_matches(fresh_sandbox.state(), desired["talon"])
