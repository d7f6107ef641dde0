"""Crash safety: an apply killed with SIGKILL at random points, then run again until it
succeeds, converges — no lost write, no stray membership, each segment created once.

The apply killed runs in a child process; the clean apply before it and the runs after it
run in this process, as the entry point runs them. Kill points are seeded: after a random
number of write requests seen in the sandbox's log, or after a random delay (which may land
before any write, or after the last). Each scenario kills twice, then lets apply finish.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _scenario import plan, write_config, writes
from hostile.remote import (
    assert_epsilon_matches,
    assert_talonone_matches,
    cli,
    desired_of,
    run_cli,
)

from reconciler.sandbox import Sandbox

RUNS = 6

#: route → (the write that creates a segment, its success status)
CREATE = {
    "epsilon": ("POST /epsilon/v1/segments", 200),
    "talonone": ("POST /talonone/cdp/audiences", 201),
}


def _kill_after_writes(proc: Any, sandbox: Sandbox, since: int, n: int) -> None:
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if len(writes(sandbox, since)) >= n:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)


def _kill_after(proc: Any, delay: float) -> None:
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:  # still running: that is the point
        proc.send_signal(signal.SIGKILL)


def _last_id(sandbox: Sandbox) -> int:
    log = sandbox.requests()
    return log[-1]["id"] if log else 0


CASES = [*(("epsilon", seed) for seed in range(RUNS - 1)), ("talonone", 4)]


@pytest.mark.parametrize(("kind", "seed"), CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_killed_apply_converges_without_duplicates(
    fresh_sandbox: Sandbox, tmp_path: Path, kind: str, seed: int
) -> None:
    rng = random.Random(seed)
    edited = seed % 3 == 2  # apply the base cleanly, then kill the edit
    by_writes = seed % 2 == 0  # else: after a random delay
    state = tmp_path / "state.db"
    common = ["--sandbox-url", fresh_sandbox.url, "--state", str(state), "--auto-approve"]
    cfg = write_config(tmp_path, [kind])
    if edited:
        code, _, err = run_cli("apply", str(cfg), *common)
        assert code == 0, err
        cfg = write_config(tmp_path, [kind], edited=True)
    since = _last_id(fresh_sandbox)
    # the writes a minimal apply sends
    total = {("epsilon", False): 318, ("epsilon", True): 48}.get((kind, edited), 4)

    proc = cli("apply", str(cfg), *common)
    if by_writes:
        _kill_after_writes(proc, fresh_sandbox, since, rng.randint(1, total - 1))
    else:  # maybe during the plan, maybe after the last write
        _kill_after(proc, rng.uniform(0.3, 2.0))
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    cut_short = killed and len(writes(fresh_sandbox, since)) < total

    for _ in range(3):  # run again until it succeeds (once is expected to be enough)
        code, out, err = run_cli("apply", str(cfg), *common)
        if code == 0:
            break
    assert code == 0, err
    if cut_short and by_writes:
        assert "interrupted" in err  # the journal of the killed run, reported
    # (a kill that landed after the last write leaves nothing to apply)
    assert "verify: the remote matches the config" in out or "Nothing to apply" in err
    assert not plan(cfg, fresh_sandbox, state).has_changes

    desired = desired_of(cfg)
    if kind == "epsilon":
        base = desired_of(write_config(tmp_path / "base", [kind]))["eps"]
        assert_epsilon_matches(
            fresh_sandbox.state(),
            desired["eps"],
            renamed={"seg-b"} if edited else (),
            dropped={"seg-c"} if edited else (),
            customers=set(base.customers) | set(desired["eps"].customers),
        )
    else:
        assert_talonone_matches(fresh_sandbox.state(), desired["talon"])

    route, ok = CREATE[kind]
    created = [r["status"] for r in fresh_sandbox.requests() if r["route"] == route]
    segments = 4 if edited else 3
    assert created.count(ok) == segments, created  # each segment created exactly once
    assert set(created) <= {ok, 409}
    # a 409 only means a killed run created a segment without recording it (creates run
    # concurrently, so one kill may leave each of them unrecorded, once)
    assert created.count(409) <= (segments if killed else 0), created
