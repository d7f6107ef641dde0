"""Seeded fault injection, the fault-spec syntax, and the ``reconcile sandbox`` CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.exceptions import SandboxError
from reconciler.sandbox import (
    EPSILON_API_KEY,
    EPSILON_BEARER_TOKEN,
    TALONONE_API_KEY,
    FaultRule,
    Sandbox,
    format_fault_spec,
    parse_fault_spec,
)
from reconciler.sandbox.cli import app

BEARER = {"Authorization": f"Bearer {EPSILON_BEARER_TOKEN}"}
BASIC = {"Authorization": f"Basic {EPSILON_API_KEY}"}
TEAM = "13c84def-41cb-4f99-a3fc-6788264f79fe"
CDP = {
    "Authorization": f"ApiKey-v1 {TALONONE_API_KEY}",
    "customer-data-platform-name": "cdp",
    "destination-hostname": "x.talon.one",
}


def create_segment(http: httpx.Client, sb: Sandbox, sid: str) -> httpx.Response:
    return http.post(
        sb.epsilon_url + "/v1/segments",
        headers=BEARER,
        json={
            "segment": {
                "segmentId": sid,
                "sourceId": "S",
                "name": sid,
                "description": "",
                "retailerTeamId": TEAM,
            }
        },
    )


# ---------------------------------------------------------------------- spec syntax
def test_spec_round_trip_and_dataclass() -> None:
    spec = (
        "seed=7,rate=0.2,kinds=429+500+applied500,route=POST /epsilon/v1/customers*;"
        "rate=1,kinds=timeout,delay=2.5,limit=3,route=GET /talonone-mgmt/*"
    )
    rules = parse_fault_spec(spec)
    assert rules == (
        FaultRule(
            route="POST /epsilon/v1/customers*",
            rate=0.2,
            kinds=("429", "500", "applied500"),
            seed=7,
        ),
        FaultRule(route="GET /talonone-mgmt/*", rate=1.0, kinds=("timeout",), delay=2.5, limit=3),
    )
    assert parse_fault_spec(format_fault_spec(rules)) == rules
    assert parse_fault_spec("") == ()


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("rate=2", "within 0..1"),
        ("rate=0.1,kinds=teapot", "unknown fault kind 'teapot'"),
        ("rate=0.1,colour=red", "unknown fault field(s): colour"),
        ("rate=abc", "invalid fault rule"),
        ("rate", "expected key=value"),
    ],
)
def test_bad_specs_are_refused(spec: str, needle: str) -> None:
    with pytest.raises(SandboxError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_fault_spec(spec)


# ---------------------------------------------------------------------- reproducibility
def _run_sequence(sb: Sandbox, http: httpx.Client, spec: str) -> list[tuple[int, str | None]]:
    sb.reset()
    sb.set_faults(spec)
    for i in range(40):
        http.get(sb.epsilon_url + f"/v1/customers/c{i % 4}", headers=BASIC)
        http.post(
            sb.epsilon_url + "/v1/customers",
            headers=BASIC,
            json={"customers": [{"id": f"c{i % 4}"}]},
        )
    return [(r["status"], r["fault"]) for r in sb.requests()]


def test_same_seed_same_faults(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    spec = "seed=7,rate=0.2,kinds=429+500+502+503,route=* /epsilon/v1/customers*"
    first = _run_sequence(fresh_sandbox, http, spec)
    second = _run_sequence(fresh_sandbox, http, spec)
    assert first == second
    faults = [f for _, f in first if f]
    assert 8 <= len(faults) <= 28  # about 20% of 80
    assert set(faults) <= {"429", "500", "502", "503"}
    assert all(str(status) == fault for status, fault in first if fault)
    other = _run_sequence(fresh_sandbox, http, spec.replace("seed=7", "seed=8"))
    assert other != first


def test_gateway_fault_shapes(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    fresh_sandbox.set_faults(
        "rate=1,kinds=429,route=POST /epsilon/*;rate=1,kinds=503,route=POST /talonone/*"
    )
    eps = create_segment(http, fresh_sandbox, "s1")
    assert (eps.status_code, eps.text, eps.headers["retry-after"]) == (429, "", "1")
    assert eps.headers["content-type"].startswith("text/plain")
    t1 = http.post(
        fresh_sandbox.talonone_url + "/cdp/audiences",
        headers=CDP,
        json={"audienceId": "a", "audienceName": "A"},
    )
    assert t1.status_code == 503
    assert t1.json()["StatusCode"] == 503
    assert t1.json()["Error"] == "injected fault"
    assert fresh_sandbox.state()["epsilon"]["segments"] == []
    assert fresh_sandbox.state()["talonone"]["audiences"] == []


def test_applied500_performs_the_write(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    fresh_sandbox.set_faults(
        [FaultRule(route="POST /epsilon/v1/segments", rate=1.0, kinds=("applied500",), limit=1)]
    )
    first = create_segment(http, fresh_sandbox, "s1")
    assert (first.status_code, first.text) == (500, "")
    assert [s["segmentId"] for s in fresh_sandbox.state()["epsilon"]["segments"]] == ["s1"]
    retry = create_segment(http, fresh_sandbox, "s1")
    assert (retry.status_code, retry.text) == (409, "segment 's1' already exists")
    assert [r["fault"] for r in fresh_sandbox.requests()] == ["applied500", None]


def test_drop_closes_without_answer_and_applies_nothing(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    fresh_sandbox.set_faults("rate=1,kinds=drop,limit=1,route=POST /epsilon/v1/segments")
    with pytest.raises(httpx.RemoteProtocolError):
        create_segment(http, fresh_sandbox, "s1")
    assert fresh_sandbox.state()["epsilon"]["segments"] == []
    resp = create_segment(http, fresh_sandbox, "s1")
    assert resp.status_code == 200
    assert [(r["status"], r["fault"]) for r in fresh_sandbox.requests()] == [
        (0, "drop"),
        (200, None),
    ]


def test_timeout_applies_then_answers_late(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_faults("rate=1,kinds=timeout,delay=0.5,route=POST /epsilon/*")
    with httpx.Client(trust_env=False, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        create_segment(impatient, fresh_sandbox, "s1")
    assert [s["segmentId"] for s in fresh_sandbox.state()["epsilon"]["segments"]] == ["s1"]
    with httpx.Client(trust_env=False, timeout=5) as patient:
        late = create_segment(patient, fresh_sandbox, "s2")
    assert late.status_code == 200
    assert late.json()["segment"]["segmentId"] == "s2"


def test_latency_answers_every_request_late_and_correctly(fresh_sandbox: Sandbox) -> None:
    """A network round trip: concurrent requests overlap (the server waits, it does not
    block), and each is performed and answered normally."""
    import asyncio
    import time

    fresh_sandbox.set_faults("rate=1,kinds=latency,delay=0.2,route=POST /epsilon/*")

    async def burst() -> list[int]:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:

            async def one(i: int) -> int:
                resp = await client.post(
                    fresh_sandbox.epsilon_url + "/v1/segments",
                    headers=BEARER,
                    json={
                        "segment": {
                            "segmentId": f"s{i}",
                            "sourceId": "S",
                            "name": f"s{i}",
                            "description": "",
                            "retailerTeamId": TEAM,
                        }
                    },
                )
                return resp.status_code

            return list(await asyncio.gather(*(one(i) for i in range(8))))

    start = time.perf_counter()
    statuses = asyncio.run(burst())
    took = time.perf_counter() - start
    assert statuses == [200] * 8
    assert 0.2 <= took < 1.2  # eight 0.2 s answers overlapped, not 1.6 s in a row
    assert len(fresh_sandbox.state()["epsilon"]["segments"]) == 8
    assert {r["fault"] for r in fresh_sandbox.requests()} == {"latency"}


def test_faults_over_http_json(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    url = fresh_sandbox.url + "/_sandbox/faults"
    put = http.put(
        url, json={"rules": [{"route": "GET /epsilon/*", "rate": 0.5, "kinds": ["500"], "seed": 3}]}
    )
    assert put.status_code == 200
    assert put.json()["spec"] == "seed=3,rate=0.5,kinds=500,route=GET /epsilon/*"
    assert http.get(url).json()["rules"][0]["seed"] == 3
    bad = http.put(url, json={"rules": [{"rate": 5}]})
    assert bad.status_code == 400
    assert "within 0..1" in bad.json()["error"]
    assert http.delete(url).status_code == 204
    assert http.get(url).json() == {"rules": [], "spec": ""}


def test_sandbox_started_with_faults(tmp_path: Path, http: httpx.Client) -> None:
    with Sandbox(tmp_path / "f.db", faults="rate=1,kinds=502,route=GET *") as sb:
        resp = http.get(sb.epsilon_url + "/v1/customers/x", headers=BASIC)
        assert (resp.status_code, resp.text) == (502, "")


# ---------------------------------------------------------------------- CLI
def test_cli_seed_and_reset(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    runner = CliRunner()
    demo = runner.invoke(app, ["seed", "--db", str(db)])
    assert demo.exit_code == 0, demo.output
    assert f"seeded {db}" in demo.output
    state_file = tmp_path / "state.yaml"
    state_file.write_text("epsilon:\n  customers:\n    - id: yaml-customer\n", encoding="utf-8")
    loaded = runner.invoke(app, ["seed", str(state_file), "--db", str(db)])
    assert loaded.exit_code == 0, loaded.output
    with Sandbox(db) as sb:
        ids = [c["id"] for c in sb.state()["epsilon"]["customers"]]
        assert ids == ["cust_12345", "cust_67890", "yaml-customer"]
    reset = runner.invoke(app, ["reset", "--db", str(db)])
    assert reset.exit_code == 0
    with Sandbox(db) as sb:
        assert sb.state()["epsilon"]["customers"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    refused = runner.invoke(app, ["seed", str(bad), "--db", str(db)])
    assert refused.exit_code == 1
    assert "must be a mapping" in refused.output


def test_subprocess_sandbox(tmp_path: Path, http: httpx.Client) -> None:
    with Sandbox(tmp_path / "sub.db", subprocess=True, faults="rate=0,route=*") as sb:
        resp = create_segment(http, sb, "s1")
        assert resp.status_code == 200
        assert sb.requests()[0]["path"] == "/epsilon/v1/segments"


def test_a_request_answered_after_a_reset_is_not_logged_after_it(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    """A request still held by a delay when the sandbox is reset (a client that went away,
    a test that ended) lands in no later log: the next test sees only its own requests."""
    import threading
    import time

    fresh_sandbox.set_faults("rate=1,kinds=latency,delay=1,route=POST /epsilon/*")
    late = threading.Thread(target=create_segment, args=(http, fresh_sandbox, "late"))
    late.start()
    time.sleep(0.3)  # the request is in the sandbox, waiting out its delay
    fresh_sandbox.reset()
    late.join(timeout=30)
    assert not late.is_alive()
    assert fresh_sandbox.requests() == []
    assert create_segment(http, fresh_sandbox, "now").status_code == 200
    assert [r["path"] for r in fresh_sandbox.requests()] == ["/epsilon/v1/segments"]
