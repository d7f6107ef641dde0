"""Compare what a sandbox holds with the desired state a config resolves to."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _command import invoke

from reconciler._http import RetryPolicy
from reconciler.config import load, resolve
from reconciler.model import State
from reconciler.runtime import Overrides

#: Retries made fast: tiny backoff, Retry-After capped low, a short client timeout. A
#: ``timeout`` fault must use a delay above ``FAST_RETRY.timeout``.
FAST_RETRY = RetryPolicy(
    attempts=10, max_elapsed=60.0, base=0.005, cap=0.05, retry_after_cap=0.02, timeout=0.3
)
FAULT_DELAY = 0.5


def fast_overrides(sandbox: Any) -> Overrides:
    """Point both platforms at ``sandbox``, without the client-side 3 requests/second pacing of
    Talon.One's Management API (the session sandbox does not rate-limit either)."""
    base = Overrides.for_sandbox(sandbox)
    settings = {k: dict(v) for k, v in base.settings.items()}
    settings.setdefault("talonone", {})["management_rps"] = 10_000
    return Overrides(settings, base.credentials, base.sandbox)


def desired_of(config_path: Path) -> dict[str, State]:
    return resolve(load(config_path))


@dataclass
class Remote:
    """One platform's state in the sandbox, as sets; ``duplicates`` lists repeated entries."""

    segments: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, desc)
    access: dict[str, frozenset[str]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    links: dict[str, frozenset[str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


def _dups(kind: str, items: list[str]) -> list[str]:
    return [f"{kind}: {x}" for x in sorted({x for x in items if items.count(x) > 1})]


def epsilon_remote(state: Mapping[str, Any]) -> Remote:
    eps = state["epsilon"]
    out = Remote()
    out.duplicates += _dups("segment", [s["segmentId"] for s in eps["segments"]])
    out.duplicates += _dups("customer", [c["id"] for c in eps["customers"]])
    for s in eps["segments"]:
        out.segments[s["segmentId"]] = (s["name"], s["description"])
        out.access[s["segmentId"]] = frozenset(s["accessTeamIds"])
        out.duplicates += _dups(f"access of {s['segmentId']}", s["accessTeamIds"])
    for c in eps["customers"]:
        out.customers.add(c["id"])
        out.duplicates += _dups(f"links of {c['id']}", c["segmentIds"])
        if c["segmentIds"]:
            out.links[c["id"]] = frozenset(c["segmentIds"])
    return out


def talonone_remote(state: Mapping[str, Any]) -> Remote:
    t1 = state["talonone"]
    out = Remote()
    out.duplicates += _dups("audience", [a["integrationId"] for a in t1["audiences"]])
    per_customer: dict[str, set[str]] = {}
    for a in t1["audiences"]:
        out.segments[a["integrationId"]] = (a["name"], "")
        out.duplicates += _dups(f"members of {a['integrationId']}", a["members"])
        for member in a["members"]:
            per_customer.setdefault(member, set()).add(a["integrationId"])
    out.links = {c: frozenset(s) for c, s in per_customer.items()}
    out.customers = {p["integrationId"] for p in t1["profiles"]}
    return out


def assert_epsilon_matches(
    state: Mapping[str, Any],
    desired: State,
    *,
    renamed: Iterable[str] = (),
    dropped: Iterable[str] = (),
    customers: set[str] | None = None,
) -> None:
    """The Epsilon side equals ``desired`` exactly, within what the API can do: a segment in
    ``renamed`` keeps its old name (the API cannot rename), one in ``dropped`` stays on the
    platform with no access and no members (the API cannot delete), and customers are never
    deleted (``customers``: every customer ever desired; default: ``desired.customers``)."""
    remote = epsilon_remote(state)
    assert remote.duplicates == []
    assert set(remote.segments) == set(desired.segments) | set(dropped)
    for seg_id, seg in desired.segments.items():
        name, description = remote.segments[seg_id]
        assert description == seg.description, seg_id
        if seg_id not in renamed:
            assert name == seg.name, seg_id
        assert remote.access[seg_id] == desired.access.get(seg_id, frozenset()), seg_id
    for seg_id in dropped:
        assert remote.access[seg_id] == frozenset(), seg_id
    assert remote.customers == (customers if customers is not None else set(desired.customers))
    assert_links_equal(remote.links, desired.links)


def assert_talonone_matches(state: Mapping[str, Any], desired: State) -> None:
    remote = talonone_remote(state)
    assert remote.duplicates == []
    assert {k: v[0] for k, v in remote.segments.items()} == {
        k: s.name for k, s in desired.segments.items()
    }
    assert_links_equal(remote.links, desired.links)


def assert_links_equal(
    remote: Mapping[str, frozenset[str]], desired: Mapping[str, frozenset[str]]
) -> None:
    want = {c: frozenset(s) for c, s in desired.items() if s}
    lost = {c: sorted(want[c] - remote.get(c, frozenset())) for c in want}
    stray = {c: sorted(remote[c] - want.get(c, frozenset())) for c in remote}
    assert {c: v for c, v in lost.items() if v} == {}, "memberships lost"
    assert {c: v for c, v in stray.items() if v} == {}, "stray memberships"


def cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m reconciler ARGS`` in a child process (stdout and stderr captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
    )


def run_process(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """:func:`cli` run to its end (``timeout``: a hung client fails the test, not the run)."""
    code, out, err, _ = run_measured(*args, env=env, timeout=timeout)
    return code, out, err


def run_measured(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> tuple[int, str, str, int]:
    """:func:`cli` run to its end (``timeout``: a hung client is killed, failing the test, not
    the run): its exit code, output, and its own peak resident memory in bytes, from its own
    resource usage (``RUSAGE_CHILDREN`` is the peak of every child the worker has reaped)."""
    proc = cli(*args, env=env)
    streams: dict[int, bytes] = {}

    def drain(index: int, stream: Any) -> None:
        streams[index] = stream.read()

    readers = [
        threading.Thread(target=drain, args=(i, s))
        for i, s in enumerate((proc.stdout, proc.stderr))
    ]
    for reader in readers:
        reader.start()
    guard = threading.Timer(timeout, proc.kill)  # a hung client fails the test, not the run
    guard.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        guard.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    out, err = (streams[i].decode(errors="replace") for i in (0, 1))
    return proc.returncode, out, err, usage.ru_maxrss * 1024


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """``reconcile ARGS`` run to its end in this process (see :func:`_command.invoke`):
    ``(exit code, stdout, stderr)``; :func:`cli` is the child process a signal or a kill is
    sent to."""
    return invoke(*args, env={"COLUMNS": "200", **(env or {})})
