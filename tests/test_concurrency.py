"""Two applies started together on one target (two processes, one ``--state`` file).

With ``--lock-wait 0`` one of them refuses, clearly, with exit 1; with ``--lock-wait 90`` the
second waits for the first. Either way the remote ends exactly as the config says.
"""

from __future__ import annotations

from pathlib import Path

from _scenario import plan, writes
from hostile.configs import write_dense_config
from hostile.remote import assert_epsilon_matches, cli, desired_of

from reconciler.sandbox import Sandbox

#: Every link write answers 500 ms late, so an apply of ~80 links (16 at a time) holds its lock
#: for 2.5 s or more: the two processes surely overlap, even on a busy machine.
SLOW_LINKS = "rate=1,kinds=timeout,delay=0.5,route=POST /epsilon/v1/customers/manage-segments"
CUSTOMERS, SEGMENTS = 100, 3


def _config(folder: Path) -> Path:
    return write_dense_config(folder, ["epsilon"], seed=11, customers=CUSTOMERS, segments=SEGMENTS)


def _both(cfg: Path, sandbox: Sandbox, state: Path, lock_wait: str) -> list[tuple[int, str, str]]:
    common = ["--sandbox-url", sandbox.url, "--state", str(state), "--auto-approve"]
    procs = [cli("apply", str(cfg), *common, "--lock-wait", lock_wait) for _ in range(2)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append((proc.returncode, out.decode(), err.decode()))
    return done


def _creates(sandbox: Sandbox) -> list[int]:
    return [r["status"] for r in sandbox.requests() if r["route"] == "POST /epsilon/v1/segments"]


def test_second_apply_refuses_while_the_first_holds_the_lock(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    fresh_sandbox.set_faults(SLOW_LINKS)
    cfg = _config(tmp_path)
    state = tmp_path / "state.db"
    results = _both(cfg, fresh_sandbox, state, "0")
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    (_, _, loser_err) = next(r for r in results if r[0] == 1)
    assert "another apply is running on target 'eps'" in loser_err
    assert "Traceback" not in loser_err
    assert len(loser_err.strip().splitlines()) <= 3, loser_err  # one clear line, not a dump
    (_, winner_out, _) = next(r for r in results if r[0] == 0)
    assert "verify: the remote matches the config" in winner_out
    fresh_sandbox.set_faults(None)
    assert_epsilon_matches(fresh_sandbox.state(), desired_of(cfg)["eps"])
    assert _creates(fresh_sandbox) == [200] * SEGMENTS  # the loser wrote nothing
    assert not plan(cfg, fresh_sandbox, state).has_changes


def test_second_apply_waits_for_the_lock_and_the_remote_ends_correct(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    fresh_sandbox.set_faults(SLOW_LINKS)
    cfg = _config(tmp_path)
    state = tmp_path / "state.db"
    results = _both(cfg, fresh_sandbox, state, "90")
    assert [code for code, _, _ in results] == [0, 0], results
    for _, out, err in results:
        assert "Traceback" not in err
        assert "verify: the remote matches the config" in out or "Nothing to apply" in err
    fresh_sandbox.set_faults(None)
    assert_epsilon_matches(fresh_sandbox.state(), desired_of(cfg)["eps"])
    assert not plan(cfg, fresh_sandbox, state).has_changes


def test_an_apply_that_waited_for_the_lock_sends_only_what_is_left(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    fresh_sandbox.set_faults(SLOW_LINKS)
    cfg = _config(tmp_path)
    results = _both(cfg, fresh_sandbox, tmp_path / "state.db", "30")
    assert [code for code, _, _ in results] == [0, 0], results
    links = [r for r in writes(fresh_sandbox) if r["route"].endswith("manage-segments")]
    assert len(links) == len(desired_of(cfg)["eps"].links)  # each customer linked once
    assert _creates(fresh_sandbox) == [200] * SEGMENTS
