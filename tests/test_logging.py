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
