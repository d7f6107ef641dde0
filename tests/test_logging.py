"""Logging: one line per step, request, retry and rate-limit wait; never a secret.

A full apply against the sandbox runs at DEBUG with every record captured: the expected events
appear (a retry naming the status and the wait when the sandbox answers 429), and no line holds
any credential the targets use.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _scenario import cli, write_config
from hostile.remote import FAST_RETRY, fast_overrides

from reconciler import _logging
from reconciler._http import Http, RetryPolicy
from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.sandbox import Credentials, Sandbox
from reconciler.statestore import StateStore


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``reconciler`` tree, at DEBUG, for the test's duration."""
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    root = logging.getLogger("reconciler")
    keep, level = Keep(logging.DEBUG), root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    try:
        yield got
    finally:
        root.removeHandler(keep)
        root.setLevel(level)


def _lines(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records]


def _full_apply(cfg: Path, sandbox: Sandbox, state: Path) -> None:
    store = StateStore(state)
    try:
        rec = Reconciler(load(cfg), store, overrides=fast_overrides(sandbox), retry=FAST_RETRY)
        plan = asyncio.run(rec.plan())
        results = asyncio.run(rec.apply(plan, force=True))
    finally:
        store.close()
    assert all(r.ok for r in results)


def test_a_full_apply_logs_each_step_and_retry_and_no_secret(
    fresh_sandbox: Sandbox, tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    fresh_sandbox.set_faults("rate=1,kinds=429,limit=1,route=POST /epsilon/v1/segments")
    cfg = write_config(tmp_path, ["epsilon", "talonone"])
    _full_apply(cfg, fresh_sandbox, tmp_path / "state.db")
    lines = _lines(records)
    text = "\n".join(lines)

    assert all(r.name.startswith("reconciler.") for r in records)
    # the plan: a read and a diff per target, with counts and durations
    for target in ("eps", "talon"):
        assert re.search(rf"reconciler.manager: {target}: read \(refresh \w+\) in [\d.]+ s: ", text)
        assert re.search(rf"reconciler.manager: {target}: diff in [\d.]+ s: \d+ change", text)
        # the apply: the run and each step, start and end
        assert re.search(rf"reconciler.apply: {target}: apply run \d+ starts: \d+ change", text)
        assert re.search(rf"reconciler.apply: {target}: apply run \d+ ends ok: \d+ applied", text)
    assert re.search(r"INFO reconciler.apply: eps: step segments starts: 3 change", text)
    assert re.search(r"INFO reconciler.apply: eps: step segments ends: 3 of 3 ", text)
    # each request (DEBUG) and each batch
    assert re.search(r"DEBUG reconciler.http: target 'eps': GET /v1/\S+: HTTP 200 in \d+ ms", text)
    assert "DEBUG reconciler.apply: eps: step links" in text
    # the injected 429: its status, then the retry and its wait
    retry = [line for line in lines if "HTTP 429" in line and "retry" in line]
    assert len(retry) == 1, lines
    assert re.fullmatch(
        r"INFO reconciler.http: target 'eps': POST /v1/segments: HTTP 429, retry 1 in [\d.]+ s",
        retry[0],
    )
    # the state store
    assert "DEBUG reconciler.statestore: eps: apply lock taken" in text

    secrets = set(Credentials().as_dict().values())
    assert secrets
    assert all(len(s) >= 4 for s in secrets)
    for record in records:
        line = f"{record.getMessage()} {record.args!r}"
        for secret in secrets:
            assert secret not in line, record.name


def test_a_rate_limit_wait_is_logged(records: list[logging.LogRecord]) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        client = Http(
            "http://127.0.0.1:9",
            transport=httpx.MockTransport(lambda _r: httpx.Response(200, json={})),
            retry=RetryPolicy(sleep=sleep),
            rate_limit=1.0,
        )
        try:
            for _ in range(3):
                await client.request("GET", "/x")
        finally:
            await client.aclose()

    asyncio.run(main())
    logged = [r.getMessage() for r in records if "rate limit" in r.getMessage()]
    assert len(logged) == len(waits) == 2
    for message, wait in zip(logged, waits, strict=True):
        assert message == f"rate limit: waiting {wait:.3f} s before the next request"


def test_a_logged_request_is_redacted(records: list[logging.LogRecord]) -> None:
    secret = "s3cr3t-token-value"

    async def main() -> None:
        client = Http(
            "http://127.0.0.1:9",
            transport=httpx.MockTransport(lambda _r: httpx.Response(503)),
            retry=RetryPolicy(attempts=2, sleep=lambda _s: asyncio.sleep(0)),
            secrets=[secret],
            label="target 't'",
        )
        try:
            await client.request("GET", f"/customers/{secret}")
        finally:
            await client.aclose()

    with pytest.raises(Exception, match=r"gave up after 2 attempts"):
        asyncio.run(main())
    lines = _lines(records)
    assert any("GET /customers/***: HTTP 503, retry 1 in " in line for line in lines), lines
    assert any("WARNING reconciler.http: target 't': GET /customers/***" in x for x in lines)
    assert not [line for line in lines if secret in line]


def test_configure_sets_one_stderr_handler_by_verbosity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger("reconciler")
    assert any(isinstance(h, logging.NullHandler) for h in root.handlers)
    before = list(root.handlers)
    try:
        for verbosity, level in [(0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG)]:
            stream = io.StringIO()
            monkeypatch.setattr("sys.stderr", stream)
            _logging.configure(verbosity)
            mine = [h for h in root.handlers if h not in before]
            assert len(mine) == 1  # a second call replaces the first handler
            assert mine[0].level == level
            _logging.logger("apply").info("step done")
            _logging.logger("http").debug("a request")
            out = stream.getvalue().splitlines()
            expected = {
                logging.WARNING: [],
                logging.INFO: ["INFO reconciler.apply: step done"],
                logging.DEBUG: [
                    "INFO reconciler.apply: step done",
                    "DEBUG reconciler.http: a request",
                ],
            }[level]
            assert out == expected
        stream = io.StringIO()
        monkeypatch.setattr("sys.stderr", stream)
        _logging.configure(5, "json")
        _logging.logger("apply").warning("a batch failed")
        (line,) = stream.getvalue().splitlines()
        data = json.loads(line)
        assert (data["level"], data["logger"], data["message"]) == (
            "warning",
            "reconciler.apply",
            "a batch failed",
        )
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(logging.NOTSET)


def test_the_cli_verbose_option_logs_to_stderr(tmp_path: Path) -> None:
    write_config(tmp_path, ["epsilon"])
    quiet = cli("plan", "audiences.yaml", "--sandbox", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "reconciler." not in quiet.stderr
    loud = cli("-vv", "plan", "audiences.yaml", "--sandbox", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert quiet.stdout == loud.stdout  # logs go to stderr only
    assert re.search(r"^INFO reconciler.manager: eps: diff in [\d.]+ s: ", loud.stderr, re.M)
    assert re.search(r"^DEBUG reconciler.http: target 'eps': GET ", loud.stderr, re.M)
    for secret in Credentials().as_dict().values():
        assert secret not in loud.stderr


def _sandboxed_config(folder: Path, sandbox: Sandbox) -> tuple[Path, dict[str, str]]:
    """The scenario's config pointed at ``sandbox`` as a real platform would be (its URLs in
    the YAML, its credentials in the environment), and that environment."""
    cfg = write_config(folder, ["epsilon", "talonone"])
    text = cfg.read_text()
    never = "http://127.0.0.1:9/never-used"
    text = text.replace(f"base_url: {never}", f"base_url: {sandbox.epsilon_url}", 1)
    text = text.replace(f"base_url: {never}", f"base_url: {sandbox.talonone_url}", 1)
    text = text.replace(
        f"management_url: {never}",
        f"management_url: {sandbox.talonone_management_url}\n    management_rps: 1000",
    )
    assert never not in text
    cfg.write_text(text)
    creds = Credentials()
    env = {
        "SCENARIO_EPSILON_TOKEN": creds.epsilon_bearer_token,
        "SCENARIO_EPSILON_KEY": creds.epsilon_api_key,
        "SCENARIO_TALON_KEY": creds.talonone_api_key,
        "SCENARIO_TALON_MGMT": creds.talonone_management_key,
    }
    return cfg, env


def _json_events(stderr: str) -> list[dict[str, object]]:
    """Every log line of ``stderr`` as the object it holds (each must be one)."""
    events = []
    for line in stderr.splitlines():
        if line.startswith(("DEBUG ", "INFO ", "WARNING ", "ERROR ")):
            raise AssertionError(f"a text log line in JSON mode: {line}")
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_a_full_apply_logs_json_events_with_fields_and_no_secret(
    fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_sandbox.set_faults("rate=1,kinds=500,limit=2,route=POST /epsilon/v1/segments")
    cfg, env = _sandboxed_config(tmp_path, fresh_sandbox)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILE_LOG_FORMAT", "json")
    done = cli("-vv", "apply", cfg.name, "--auto-approve", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    events = _json_events(done.stderr)
    assert all(str(e["logger"]).startswith("reconciler.") for e in events)
    by_kind: dict[object, list[dict[str, object]]] = {}
    for e in events:
        assert {"time", "level", "logger", "message", "event"} <= set(e), e
        by_kind.setdefault(e["event"], []).append(e)
    # the two injected 500s: each retry with its status, attempt and wait
    retries = by_kind["retry"]
    assert [(r["target"], r["status"], r["path"]) for r in retries] == 2 * [
        ("eps", "500", "/v1/segments")
    ]
    assert all(r["attempt"] in (1, 2) and isinstance(r["wait"], float) for r in retries)
    # each request, each batch and each phase, start and end, for both targets
    assert {r["target"] for r in by_kind["request"]} == {"eps", "talon"}
    assert {(r["method"], r["status"]) for r in by_kind["request"]} >= {("POST", 500)}
    batch = by_kind["batch"][0]
    assert {"target", "step", "size", "status"} <= set(batch)
    sizes = [b["size"] for b in by_kind["batch"] if (b["target"], b["step"]) == ("eps", "segments")]
    assert sizes == [1, 1, 1]  # Epsilon creates one segment a request
    starts = {(e["target"], e["step"]) for e in by_kind["phase_start"]}
    ends = {(e["target"], e["step"]) for e in by_kind["phase_end"]}
    assert starts == ends
    assert ("eps", "segments") in starts
    assert {e["target"] for e in by_kind["run_end"]} == {"eps", "talon"}
    # never a credential, in any line of either stream
    for secret in env.values():
        assert secret not in done.stderr
        assert secret not in done.stdout


def test_log_format_json_option_and_log_level_variable(
    fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, env = _sandboxed_config(tmp_path, fresh_sandbox)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILE_LOG_LEVEL", "INFO")  # any case
    done = cli("--log-format", "json", "plan", cfg.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    events = _json_events(done.stderr)
    assert {e["event"] for e in events} >= {"read", "diff"}
    assert {e["level"] for e in events} <= {"info", "warning", "error"}  # no DEBUG at info
    diff = next(e for e in events if e["event"] == "diff" and e["target"] == "eps")
    assert isinstance(diff["changes"], int)
    assert diff["changes"] > 0
    bad = cli("--log-format", "xml", "plan", cfg.name, cwd=tmp_path)
    assert bad.returncode == 2
    assert "--log-format" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_an_unreachable_host_is_named_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection is tried a few times, each try logged, then one line names the
    target and the host (not eight silent attempts over a quarter of a minute)."""
    cfg = write_config(tmp_path, ["epsilon"])
    monkeypatch.setenv("SCENARIO_EPSILON_TOKEN", "t" * 8)
    monkeypatch.setenv("SCENARIO_EPSILON_KEY", "k" * 8)
    done = cli("-v", "plan", cfg.name, cwd=tmp_path)
    assert done.returncode == 1
    retries = [line for line in done.stderr.splitlines() if "retry" in line]
    assert len(retries) == 3, done.stderr
    assert all("target 'eps'" in r and "cannot connect to 127.0.0.1:9" in r for r in retries)
    error = done.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"Error: target 'eps': GET /\S+: cannot connect to 127\.0\.0\.1:9 \(.+\) "
        r"\(gave up after 4 attempts\)",
        error,
    ), done.stderr
