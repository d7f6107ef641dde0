"""Hostile platforms: what Epsilon or Talon.One could answer, and what the reconciler makes of it.

Every case ends in bounded time (a generous guard on each run, failing only on a hang) and
bounded memory, with one clear line naming the target and the request, never a traceback or
"Internal error", and nothing written on a read that could not be trusted. The server is
``hostile/platform.py``, on 127.0.0.1; the CLI cases run ``reconcile`` in this process as its
entry point does, except where the process itself is checked: its peak memory (the bodies too
big) and its output (the credentials an error answer quotes), which a child process gives.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hostile.platform import HUGE, Platform
from hostile.remote import run_cli, run_measured, run_process

from reconciler._http import MAX_BODY, Http, RetryPolicy
from reconciler.config import load
from reconciler.exceptions import RemoteError, StatusError
from reconciler.manager import Reconciler
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
NAMES = {"epsilon": "eps", "talonone": "talon"}
LISTS = {"epsilon": "GET /v1/customers", "talonone": "GET /v1/audiences"}
SECRETS = {
    "HOSTILE_EPS_TOKEN": "eps-bearer-0123456789abcdef",
    "HOSTILE_EPS_KEY": "k",  # one letter: redacted as a token, never inside words
    "HOSTILE_T1_KEY": "t1-api-key-0123456789abcdef",
    "HOSTILE_T1_MGMT": "t1-mgmt-key-0123456789abcdef",
}
GUARD = 120.0


@pytest.fixture(scope="module")
def server() -> Iterator[Platform]:
    with Platform() as platform:
        yield platform


@pytest.fixture
def platform(server: Platform) -> Platform:
    return server.reset()


def write_config(folder: Path, kind: str, url: str, timeout: float | None = None) -> Path:
    extra = f"    timeout: {timeout}\n" if timeout is not None else ""
    target = {
        "epsilon": f"""
  eps:
    type: epsilon
    base_url: {url}/epsilon
    retailer_team_id: {RETAILER}
    bearer_token: ${{HOSTILE_EPS_TOKEN}}
    api_key: ${{HOSTILE_EPS_KEY}}
{extra}""",
        "talonone": f"""
  talon:
    type: talonone
    base_url: {url}/talon
    management_url: {url}/talon-mgmt
    platform_name: audience-reconciler
    destination_host: hostile.talon.one
    management_rps: 1000
    api_key: ${{HOSTILE_T1_KEY}}
    management_key: ${{HOSTILE_T1_MGMT}}
{extra}""",
    }[kind]
    path = folder / "audiences.yaml"
    path.write_text(
        "version: 1\ntargets:"
        + target
        + """segments:
  - id: seg-a
    name: Alpha
    description: The alpha shoppers.
    members:
      ids: [c0001, c0002]
"""
    )
    return path


def reconcile(*args: str, process: bool = False) -> tuple[int, str, str]:
    """``reconcile ARGS`` with :data:`SECRETS` set, in this process or (``process``) a child."""
    if process:
        code, out, err = run_process(*args, env=SECRETS, timeout=GUARD)
    else:
        code, out, err = run_cli(*args, env=SECRETS)
    for text in (out, err):
        assert "Traceback" not in text, text
        assert "Internal error" not in text, text
    return code, out, err


def one_error(err: str, kind: str) -> str:
    """The one ``Error:`` line of ``err``; it names the target and the request."""
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, err
    assert f"target {NAMES[kind]!r}: {LISTS[kind]}" in lines[0], lines[0]
    return lines[0]


# -- answers that cannot be read: one line each, through the CLI -------------------------------
READ_CASES = {
    "html": r"the answer is not JSON \(text/html; charset=utf-8\): '<!doctype html>",
    "nested": r"the answer is JSON nested too deeply to read",
    "missing-id": r"does not have the documented shape: (customers\[1\]|data\[0\])\.id: Field "
    r"required",
    "wrong-types": r"does not have the documented shape: \S+: .*(string|integer|boolean|list)",
    "same-page": r"the page at skip=1000 repeats the page before it",
    "endless": r"the pages hold more (customers|audiences) \(2,000 by skip=1000\) than the "
    r"\w+ of 1,500 the first page reported",
}


@pytest.mark.parametrize("kind", ["epsilon", "talonone"])
@pytest.mark.parametrize("case", sorted(READ_CASES))
def test_an_unreadable_answer_is_one_clear_line(
    platform: Platform, tmp_path: Path, kind: str, case: str
) -> None:
    platform.reset(case)
    cfg = write_config(tmp_path, kind, platform.url)
    code, _, err = reconcile("plan", str(cfg), "--state", str(tmp_path / "s.db"))
    assert code == 1, err
    assert re.search(READ_CASES[case], one_error(err, kind)), err
    assert [r for r in platform.requests if r.method != "GET"] == []


def test_a_customer_without_an_id_stops_the_apply_before_any_write(
    platform: Platform, tmp_path: Path
) -> None:
    """The probe's case: a customer dropped from the read would have had its whole segment
    list overwritten by the next apply. Now apply stops at the read and writes nothing."""
    platform.reset("missing-id")
    cfg = write_config(tmp_path, "epsilon", platform.url)
    code, _, err = reconcile("apply", str(cfg), "--auto-approve", "--state", str(tmp_path / "s"))
    assert code == 1, err
    assert "customers[1].id: Field required" in one_error(err, "epsilon")
    assert [r.method for r in platform.requests] == ["GET"]


# -- bodies too big: refused while they stream, in bounded memory ----------------------------
@pytest.mark.parametrize("kind", ["epsilon", "talonone"])
@pytest.mark.parametrize("case", ["huge", "gzip-bomb"])
def test_a_huge_or_compressed_body_is_refused_before_it_completes(
    platform: Platform, tmp_path: Path, kind: str, case: str
) -> None:
    platform.reset(case)
    cfg = write_config(tmp_path, kind, platform.url)
    code, _, err, peak = run_measured(
        "plan", str(cfg), "--state", str(tmp_path / "s.db"), env=SECRETS, timeout=GUARD
    )
    assert code == 1, err
    assert "Traceback" not in err, err
    line = one_error(err, kind)
    assert f"the answer is larger than {MAX_BODY / 2**20:g} MB" in line, line
    # the client hung up early: a small share of the 4 GiB (or its decompressed form) went out
    assert platform.sent < HUGE // 8, platform.sent
    # and the child never held the body: its own peak memory is far below it
    assert peak < HUGE // 4, peak


# -- a trickling server: the target's timeout bounds every attempt ----------------------------
@pytest.mark.parametrize("kind", ["epsilon", "talonone"])
def test_the_target_timeout_is_the_deadline_of_each_request(
    platform: Platform, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One byte a second would hold httpx's per-phase timeouts off forever; the target's
    ``timeout`` (0.5 s here; the retry policy's own is 10 minutes) ends each attempt, and the
    expiry is retried like a timeout, as often as the retry policy allows."""
    platform.reset("trickle")
    for var, value in SECRETS.items():
        monkeypatch.setenv(var, value)
    cfg = write_config(tmp_path, kind, platform.url, timeout=0.5)
    policy = RetryPolicy(attempts=3, max_elapsed=60, base=0.01, cap=0.01, timeout=600)
    rec = Reconciler(load(cfg), StateStore(tmp_path / "s.db"), retry=policy)

    async def plan() -> None:
        await asyncio.wait_for(rec.plan(), GUARD)

    with pytest.raises(RemoteError) as info:
        asyncio.run(plan())
    message = str(info.value)
    assert message.startswith(f"target {NAMES[kind]!r}: {LISTS[kind]}"), message
    assert "no complete answer within 0.5 s (gave up after 3 attempts)" in message
    assert len(platform.reads(LISTS[kind].split()[1])) == 3


def test_without_a_target_timeout_the_retry_policy_deadline_applies() -> None:
    async def trickle() -> None:
        async def handler(request: httpx.Request) -> httpx.Response:
            async def body() -> AsyncIterator[bytes]:
                for _ in range(600):
                    await asyncio.sleep(1)
                    yield b" "

            return httpx.Response(200, content=body())

        http = Http(
            "http://127.0.0.1:9",
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(attempts=2, base=0.0, cap=0.0, timeout=0.2),
            label="target 't'",
        )
        try:
            await asyncio.wait_for(http.request("GET", "/slow"), GUARD)
        finally:
            await http.aclose()

    with pytest.raises(RemoteError, match=r"target 't': GET /slow: no complete answer within 0.2"):
        asyncio.run(trickle())


# -- credentials quoted by an error answer to a write -----------------------------------------
@pytest.mark.parametrize("kind", ["epsilon", "talonone"])
@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_credentials_echoed_by_a_refused_write_never_reach_the_output(
    platform: Platform, tmp_path: Path, kind: str, fmt: str
) -> None:
    platform.reset("echo")
    cfg = write_config(tmp_path, kind, platform.url)
    state = str(tmp_path / "s.db")
    code, out, err = reconcile(
        "apply", str(cfg), "--auto-approve", "-f", fmt, "--state", state, process=True
    )
    assert code == 1, err
    writes = [r for r in platform.requests if r.method != "GET"]
    assert writes, "the platform was never written to"
    # the echo reached the output, redacted, and the words around a one-letter key are whole
    assert "check your key (" in out + err, out + err
    assert "***" in out + err
    for secret in SECRETS.values():
        if len(secret) > 1:
            assert secret not in out + err
    assert not re.search(r"(Basic|Bearer|ApiKey-v1|ManagementKey-v1) (?!\*\*\*)", out + err)
    code, out, err = reconcile("plan", str(cfg), "-f", fmt, "--state", state, process=True)
    assert "Internal error" not in out + err, out + err
    for secret in SECRETS.values():
        if len(secret) > 1:
            assert secret not in out + err


def test_a_short_secret_is_redacted_as_a_token_not_inside_words() -> None:
    answer = "bad key k for user kim: key=k, Basic k"
    http = Http(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(lambda r: httpx.Response(400, text=answer)),
        secrets=["k", "a-long-secret-value"],
        label="target 't'",
    )

    async def go() -> None:
        try:
            await http.request("POST", "/x")
        finally:
            await http.aclose()

    with pytest.raises(StatusError) as info:
        asyncio.run(go())
    assert str(info.value) == (
        "target 't': POST /x: HTTP 400 bad key *** for user kim: key=***, Basic ***"
    )
    assert http.redact("token=a-long-secret-value;x=ya-long-secret-valuey") == "token=***;x=y***y"


def test_an_error_body_is_redacted_before_a_provider_reads_it() -> None:
    body = {"message": "no", "additionalInfo": [{"code": "X", "message": "Bearer s3cret-token"}]}
    http = Http(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(lambda r: httpx.Response(422, json=body)),
        secrets=["s3cret-token"],
    )
    with pytest.raises(StatusError) as info:
        asyncio.run(http.request("PUT", "/x"))
    assert info.value.body == {
        "message": "no",
        "additionalInfo": [{"code": "X", "message": "Bearer ***"}],
    }
    assert "s3cret-token" not in info.value.text
