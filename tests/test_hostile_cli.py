"""The command line at run time, against hostile conditions: signals mid-apply, machine formats
that must own stdout, one sandbox location, printed fix commands that run as printed, odd option
values, and remote (or config) strings carrying terminal escapes, Rich markup and Markdown.

The signal tests drive ``reconcile`` as a child process (the signal goes to it, and the exit
status is the one the OS sees); every other run is ``reconcile`` in this process, as its entry
point runs it.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from itertools import count
from pathlib import Path

import httpx
import pytest
from _command import invoke
from _scenario import TARGETS, write_config, writes
from hostile.remote import cli, run_cli

from reconciler.sandbox import Sandbox

HOSTILE = "\x1b[31mred\x1b[0m [bold]x[/bold] :fire: `tick` <b>tag</b>"


def _common(sandbox: Sandbox, tmp_path: Path) -> list[str]:
    return ["--sandbox-url", sandbox.url, "--state", str(tmp_path / "state.db")]


def _talon_config(folder: Path, name: str = "VIP", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audiences.yaml"
    path.write_text(
        "version: 1\ntargets:"
        + TARGETS["talonone"]
        + "segments:\n"
        + f"  - id: vip\n    name: {json.dumps(name)}\n    members:\n      ids: [c1, c2]\n"
        + extra
    )
    return path


def _no_raw_controls(text: str) -> None:
    assert "\x1b" not in text, repr(text)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)


def _strings(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return set()


# -- 1. signals mid-apply ------------------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_apply_records_what_was_acknowledged_and_says_what_is_left(
    fresh_sandbox: Sandbox, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    # every write takes 150 ms, so the signal lands with batches in flight and more to send
    fresh_sandbox.set_faults("rate=1,kinds=latency,delay=0.15,route=POST /epsilon/*")
    cfg = write_config(tmp_path, ["epsilon"])
    common = _common(fresh_sandbox, tmp_path)
    proc = cli("apply", str(cfg), *common, "--auto-approve")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if len(writes(fresh_sandbox)) >= 8:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the apply finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "Interrupted" in stderr, stderr
    found = re.search(r"eps: ([\d,]+) change\(s\) applied, ([\d,]+) not sent", stderr)
    assert found, stderr
    applied, left = (int(g.replace(",", "")) for g in found.groups())
    assert applied > 0
    assert left > 0
    finish = re.search(r"`(reconcile apply [^`]*)`", stderr)
    assert finish, stderr
    fresh_sandbox.set_faults("")

    # the state store holds what the platform holds: the snapshot check is green
    code_, out_, err_ = run_cli("drift", str(cfg), *common, "--full")
    assert code_ == 2, err_  # changes are pending, of course
    assert "eps: the state store matches the platform" in out_, out_
    # and the plan is only the rest
    code_, out_, err_ = run_cli("plan", str(cfg), *common, "--format", "json", "--refresh=full")
    assert code_ == 0, err_
    pending = json.loads(out_)["targets"][0]["changes"]
    assert len(pending) == left, (len(pending), left)
    # the printed command finishes the job, as printed
    done, out_, err_ = run_cli(*shlex.split(finish.group(1))[1:])
    assert done == 0, err_
    assert "verify: the remote matches the config" in out_


def _started(proc: subprocess.Popen[bytes], sandbox: Sandbox, n: int) -> None:
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if len(writes(sandbox)) >= n:
            return
        time.sleep(0.01)


#: seconds each write waits in the sandbox when a second signal must abandon batches in flight
_SLOW = 1.5


_PROBES = count()


def _probe(sandbox: Sandbox) -> int:
    """The id the sandbox gives a GET of this test's own, to a path no platform serves (404):
    every request sent to the sandbox before it has a lower id, every one after a higher."""
    path = f"/probe-{next(_PROBES)}"
    assert httpx.get(sandbox.url + path, timeout=60).status_code == 404
    ids = [r["id"] for r in sandbox.requests() if r["path"] == path]
    assert len(ids) == 1, ids
    return int(ids[0])


def _settled(sandbox: Sandbox, first: int) -> None:
    """Wait until every request sent to the sandbox since the probe ``first`` is in its request
    log (a request is logged once it is answered, or its client has gone)."""
    last = _probe(sandbox)
    deadline = time.monotonic() + 60
    while {r["id"] for r in sandbox.requests(since=first)} < set(range(first + 1, last + 1)):
        assert time.monotonic() < deadline, "the sandbox still holds requests"
        time.sleep(0.05)


def test_a_second_signal_abandons_the_batches_in_flight_and_apply_again_finishes(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    # slow writes: the second SIGINT lands while batches wait for their answers
    first = _probe(fresh_sandbox)
    fresh_sandbox.set_faults(f"rate=1,kinds=latency,delay={_SLOW},route=POST /epsilon/*")
    cfg = write_config(tmp_path, ["epsilon"])
    common = _common(fresh_sandbox, tmp_path)
    proc = cli("apply", str(cfg), *common, "--auto-approve")
    # the log shows answered requests: once the segments (3) and a first customer are answered,
    # the next customers have just been sent, and wait for their answers
    _started(proc, fresh_sandbox, 4)
    assert proc.poll() is None, "the apply finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    seen = []
    for raw in proc.stderr:  # the first signal is taken: now the second one
        seen.append(raw.decode())
        if raw.startswith(b"SIGINT:"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stderr = "".join(seen) + err.decode()
    assert proc.returncode == 130, stderr
    assert "SIGINT again: abandoning the batches in flight" in stderr
    assert "Interrupted (SIGINT)" in stderr
    assert "Traceback" not in stderr
    # the abandoned requests are still held by the sandbox: they land, unanswered, before the
    # next run (and before the next test's reset)
    fresh_sandbox.set_faults("")  # the requests held keep their delay
    _settled(fresh_sandbox, first)
    # what the abandoned batches did unacknowledged is found and finished by the next run
    code, out, err_ = run_cli("apply", str(cfg), *common, "--auto-approve")
    assert code == 0, err_
    assert "verify: the remote matches the config" in out
    code, out, err_ = run_cli("drift", str(cfg), *common, "--full")
    assert code == 0, out + err_
    assert "eps: the state store matches the platform" in out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_any_write_exits_with_its_code_and_releases_the_lock(
    fresh_sandbox: Sandbox, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    common = _common(fresh_sandbox, tmp_path)
    first = _probe(fresh_sandbox)
    fresh_sandbox.set_faults("rate=1,kinds=latency,delay=2,route=GET *")  # a slow plan
    proc = cli("apply", str(cfg), *common, "--auto-approve")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if fresh_sandbox.requests(since=first):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the apply finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()
    assert f"Interrupted ({sig.name})" in err.decode()
    assert "Traceback" not in err.decode()
    # the reads the signal cut short are still held by the sandbox (2 s each): they land
    # before the next step (and before the next test's reset)
    fresh_sandbox.set_faults("")  # the reads held keep their delay
    _settled(fresh_sandbox, first)
    assert not writes(fresh_sandbox)
    done, _, err_ = run_cli("apply", str(cfg), *common, "--auto-approve")  # no lock left
    assert done == 0, err_


# -- 2. machine formats own stdout ---------------------------------------------------------
def test_every_json_format_prints_one_json_document_on_stdout(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    common = _common(fresh_sandbox, tmp_path)
    saved = tmp_path / "plan.json"
    runs = [
        ("plan", str(cfg), *common, "--out", str(saved)),
        ("show", str(saved)),
        ("apply", str(cfg), *common, "--auto-approve"),
        ("apply", str(cfg), *common, "--auto-approve"),  # nothing to apply
        ("drift", str(cfg), *common, "--full"),
        ("validate", str(cfg)),
        ("explain", "c0001", str(cfg)),
    ]
    for i, args in enumerate(runs):
        if i == 2:
            write_config(tmp_path, ["epsilon"], edited=True)
        code, out, err = run_cli(*args, "--format", "json")
        assert code in (0, 2), (args, err)
        assert "Traceback" not in err
        json.loads(out)  # exactly one document: anything after it fails to parse
    # the apply's outcome is in its document
    write_config(tmp_path, ["epsilon"])
    code, out, err = run_cli("apply", str(cfg), *common, "--auto-approve", "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["results"][0]["target"] == "eps"
    assert body["results"][0]["applied"] > 0
    assert body["results"][0]["remaining"] == 0


# -- 3. one sandbox location, fix commands that run as printed -----------------------------
def test_sandbox_commands_and_the_sandbox_flag_use_the_same_database(tmp_path: Path) -> None:
    cfg = _talon_config(tmp_path / "proj")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "talonone:\n  audiences:\n    - {integrationId: seeded, name: Seeded, members: [c9]}\n"
    )
    # seeded from another folder, naming the config: the database next to it
    done = cli_done(["sandbox", "seed", str(seed), "--config", str(cfg)], cwd=elsewhere)
    assert done[0] == 0, done[2]
    code, out, err = cli_done(["plan", str(cfg), "--sandbox", "--format", "json"], cwd=elsewhere)
    assert code == 0, err
    assert "seeded" in json.loads(out)["targets"][0]["unmanaged"]
    # and from the config's folder, by default: the same database
    code, out, err = cli_done(["plan", "--sandbox", "--format", "json"], cwd=cfg.parent)
    assert "seeded" in json.loads(out)["targets"][0]["unmanaged"], err
    done = cli_done(["sandbox", "reset"], cwd=cfg.parent)
    assert done[0] == 0, done[2]
    code, out, err = cli_done(["plan", str(cfg), "--sandbox", "--format", "json"], cwd=elsewhere)
    assert "seeded" not in json.loads(out)["targets"][0]["unmanaged"], err
    help_text = cli_done(["sandbox", "seed", "--help"], cwd=elsewhere)[1]
    assert ".reconcile/sandbox/remote.db" in help_text


def cli_done(args: list[str], cwd: Path) -> tuple[int, str, str]:
    return invoke(*args, env={"COLUMNS": "200"}, cwd=cwd)


def test_the_printed_refresh_command_runs_as_printed(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    cfg = _talon_config(tmp_path / "a b")  # a space in the path: the command is quoted
    common = _common(fresh_sandbox, tmp_path)
    code, _, err = run_cli("apply", str(cfg), *common, "--auto-approve", "--target", "talon")
    assert code == 0, err
    # the platform moves behind the store's back
    fresh_sandbox.seed(
        {"talonone": {"audiences": [{"integrationId": "vip", "name": "VIP", "members": ["c1"]}]}}
    )
    code, out, err = run_cli("drift", str(cfg), *common, "--full", "--target", "talon")
    assert code == 2, err
    fix = re.search(r"fix: `(reconcile refresh [^`]*)`", out)
    assert fix, out
    assert "--sandbox-url" in fix.group(1)
    assert "--state" in fix.group(1)
    code, _, err = run_cli(*shlex.split(fix.group(1))[1:])
    assert code == 0, err
    code, out, err = run_cli("drift", str(cfg), *common, "--full", "--target", "talon")
    assert "talon: the state store matches the platform" in out, out + err


# -- 4. option values ----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf"])
def test_lock_wait_refuses_non_finite_and_negative_values(tmp_path: Path, value: str) -> None:
    cfg = _talon_config(tmp_path)
    for command in ("apply", "refresh"):
        extra = "--auto-approve" if command == "apply" else "--target=talon"
        code, _, err = run_cli(command, str(cfg), "--sandbox", f"--lock-wait={value}", extra)
        assert code == 1
        assert "--lock-wait takes a finite number of seconds" in err, err
        assert "Traceback" not in err


def test_a_target_named_twice_is_applied_once(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _talon_config(tmp_path)
    common = _common(fresh_sandbox, tmp_path)
    code, out, err = run_cli(
        "apply", str(cfg), *common, "--auto-approve", "--target", "talon", "--target", "talon"
    )
    assert code == 0, err
    assert out.count("talon: ok") == 1, out


# -- 5. remote and config strings printed literally ---------------------------------------
def test_hostile_names_are_printed_literally(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    extra = f"  - id: cfg\n    name: {json.dumps(HOSTILE)}\n    members:\n      ids: [c3]\n"
    cfg = _talon_config(tmp_path, extra=extra)
    common = _common(fresh_sandbox, tmp_path)
    code, out, err = run_cli("apply", str(cfg), *common, "--auto-approve")
    assert code == 0, err
    _no_raw_controls(out + err)  # the name from the config, in the plan shown before applying
    assert 'name="\\x1b[31mred\\x1b[0m [bold]x[/bold] :fire: `tick` <b>tag</b>"' in out, out
    # renamed on the platform, and an audience the config does not know, both hostile
    fresh_sandbox.seed(
        {
            "talonone": {
                "audiences": [
                    {"integrationId": "vip", "name": HOSTILE},
                    {"integrationId": f"x{HOSTILE}", "name": HOSTILE},
                ]
            }
        }
    )
    cfg = _talon_config(tmp_path, name="VIP", extra=extra.replace("ids: [c3]", "ids: [c4]"))
    code, out, err = run_cli("plan", str(cfg), *common)
    assert code == 0, err
    _no_raw_controls(out + err)
    assert "\\x1b[31mred\\x1b[0m [bold]x[/bold] :fire:" in out, out  # the remote name
    assert "x\\x1b[31mred" in out  # the unmanaged id
    assert "🔥" not in out
    code, md, err = run_cli("plan", str(cfg), *common, "--format", "markdown")
    assert code == 0, err
    _no_raw_controls(md)
    # inside the fenced diff blocks text is literal; outside them no tag, no stray code span
    prose = re.sub(r"```diff\n.*?```\n", "", md, flags=re.S)
    assert "<b>" not in prose
    assert "```" not in prose
    assert "tick" in md
    code, js, err = run_cli("plan", str(cfg), *common, "--format", "json")
    assert code == 0, err
    assert HOSTILE in _strings(json.loads(js))  # JSON stays exact
    code, out, err = run_cli("drift", str(cfg), *common)
    assert code == 2, err
    _no_raw_controls(out + err)
    assert "🔥" not in out
    code, out, err = run_cli("apply", str(cfg), *common, "--auto-approve")
    assert code == 0, err
    _no_raw_controls(out + err)
    assert "🔥" not in out + err
