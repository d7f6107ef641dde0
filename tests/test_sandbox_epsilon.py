"""The Epsilon Retail Media simulation, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import (
    EPSILON_API_KEY,
    EPSILON_BEARER_TOKEN,
    EPSILON_RETAILER_TEAM_ID,
    Sandbox,
    seed_state,
)

BEARER = {"Authorization": f"Bearer {EPSILON_BEARER_TOKEN}"}
BASIC = {"Authorization": f"Basic {EPSILON_API_KEY}"}
TEAM = EPSILON_RETAILER_TEAM_ID
ADV_1 = "90d5f138-2090-412b-a397-1f59ea6a31b3"
ADV_2 = "1439f6f2-8c43-4ec5-b511-fc153f7d8119"

# The bodies of the Epsilon "Sync Customers & Audience" guide, as written there.
SEED_SEGMENT = """{
  "segment":{
        "segmentId": "general-segment-4",
        "sourceId": "DEFAULT_SOURCE_ID",
        "name": "Value Shoppers",
        "description": "Shoppers that have a higher basket % of value driven products.",
        "retailerTeamId": "13c84def-41cb-4f99-a3fc-6788264f79fe"
  }
}"""
SEED_ACCESS = """{
  "accessTeamIds":[
        "90d5f138-2090-412b-a397-1f59ea6a31b3","1439f6f2-8c43-4ec5-b511-fc153f7d8119"
        ]
}"""
# The Epsilon guide prints this body with one stray "}" after the second customer: not JSON.
SEED_CUSTOMERS_AS_PRINTED = """{
    "customers": [
        {
            "id": "cust_12345"
        },
        {
            "id": "cust_67890"
        }
        }
    ]
}"""
SEED_CUSTOMERS_CORRECTED = SEED_CUSTOMERS_AS_PRINTED.replace("}\n        }\n    ]", "}\n    ]")
SEED_MANAGE_SEGMENTS = """{
    "customerId": "cust_12345",
    "teamId":"13c84def-41cb-4f99-a3fc-6788264f79fe",
    "segments": {
        "segmentIds":[
        "general-segment-4","general-segment-3"
        ]
    }
}"""


def post(
    http: httpx.Client, sb: Sandbox, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return http.post(
        sb.epsilon_url + path,
        content=content,
        headers={**headers, "content-type": "application/json"},
    )


def segment(segment_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "segment": {
            "segmentId": segment_id,
            "sourceId": "DEFAULT_SOURCE_ID",
            "name": segment_id.title(),
            "description": "d",
            "retailerTeamId": TEAM,
            **extra,
        }
    }


def make(http: httpx.Client, sb: Sandbox, segments: list[str], customers: list[str]) -> None:
    for s in segments:
        assert post(http, sb, "/v1/segments", segment(s), BEARER).status_code == 200
    if customers:
        body = {"customers": [{"id": c} for c in customers]}
        assert post(http, sb, "/v1/customers", body, BASIC).status_code == 200


def assert_400(resp: httpx.Response, needle: str) -> None:
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"message", "additionalInfo"}
    assert needle in body["message"]
    assert body["additionalInfo"][0]["message"] == body["message"]
    assert isinstance(body["additionalInfo"][0]["code"], str)


# --------------------------------------------- the bodies of the "Sync Customers & Audience" guide
def test_seed_000_create_segment_example_is_accepted(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    resp = post(http, fresh_sandbox, "/v1/segments", SEED_SEGMENT, BEARER)
    assert resp.status_code == 200
    assert resp.json() == json.loads(SEED_SEGMENT)
    assert fresh_sandbox.state()["epsilon"]["segments"] == [
        {**json.loads(SEED_SEGMENT)["segment"], "accessTeamIds": []}
    ]


def test_seed_000_manage_access_example_is_accepted(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    post(http, fresh_sandbox, "/v1/segments", SEED_SEGMENT, BEARER)
    resp = post(
        http, fresh_sandbox, "/v1/segments/general-segment-4:manage-access", SEED_ACCESS, BEARER
    )
    assert resp.status_code == 200
    assert resp.json() == {"segmentId": "general-segment-4", "accessTeamIds": [ADV_1, ADV_2]}
    assert fresh_sandbox.state()["epsilon"]["segments"][0]["accessTeamIds"] == [ADV_1, ADV_2]


def test_seed_000_create_customers_example_is_malformed_and_corrected_one_accepted(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(SEED_CUSTOMERS_AS_PRINTED)
    printed = post(http, fresh_sandbox, "/v1/customers", SEED_CUSTOMERS_AS_PRINTED, BASIC)
    assert_400(printed, "malformed JSON")
    resp = post(http, fresh_sandbox, "/v1/customers", SEED_CUSTOMERS_CORRECTED, BASIC)
    assert resp.status_code == 200
    assert resp.json() == {
        "customers": [{"id": "cust_12345", "teamId": TEAM}, {"id": "cust_67890", "teamId": TEAM}]
    }


def test_seed_000_manage_segments_example_is_accepted(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    make(http, fresh_sandbox, ["general-segment-3", "general-segment-4"], ["cust_12345"])
    resp = post(http, fresh_sandbox, "/v1/customers/manage-segments", SEED_MANAGE_SEGMENTS, BASIC)
    assert resp.status_code == 200
    assert resp.json() == {
        "customerId": "cust_12345",
        "segmentIds": ["general-segment-4", "general-segment-3"],
    }
    got = http.get(fresh_sandbox.epsilon_url + "/v1/customers/cust_12345", headers=BASIC)
    assert got.status_code == 200
    assert got.json() == {
        "id": "cust_12345",
        "teamId": TEAM,
        "segmentIds": ["general-segment-4", "general-segment-3"],
    }


# ---------------------------------------------------------------------- segments
def test_duplicate_segment_is_409_text(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], [])
    resp = post(http, fresh_sandbox, "/v1/segments", segment("s1"), BEARER)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("text/plain")
    assert "already exists" in resp.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"segment": {"segmentId": "s", "name": "n", "description": "d"}}, "retailerTeamId"),
        ({**segment("s"), "extra": 1}, "body.extra: unknown field"),
        (segment("s", colour="red"), "segment.colour: unknown field"),
        (segment("s", retailerTeamId="not-a-uuid"), "not a UUID"),
        ({"segment": {**segment("s")["segment"], "name": 5}}, "segment.name: expected a string"),
        ({"segment": []}, "expected an object"),
        ([], "expected an object"),
    ],
)
def test_create_segment_refuses_bad_bodies(
    fresh_sandbox: Sandbox, http: httpx.Client, body: Any, needle: str
) -> None:
    assert_400(post(http, fresh_sandbox, "/v1/segments", body, BEARER), needle)
    assert fresh_sandbox.state()["epsilon"]["segments"] == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, BASIC, {"Authorization": EPSILON_BEARER_TOKEN}],
)
def test_segments_need_the_bearer_token(
    fresh_sandbox: Sandbox, http: httpx.Client, headers: dict[str, str]
) -> None:
    resp = post(http, fresh_sandbox, "/v1/segments", segment("s"), headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "unauthorized"


def test_manage_access_replaces_the_list(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], [])
    url = "/v1/segments/s1:manage-access"
    assert post(http, fresh_sandbox, url, {"accessTeamIds": [ADV_1, ADV_2]}, BEARER).json() == {
        "segmentId": "s1",
        "accessTeamIds": [ADV_1, ADV_2],
    }
    resp = post(http, fresh_sandbox, url, {"accessTeamIds": [ADV_2]}, BEARER)
    assert resp.status_code == 200
    assert resp.json() == {"segmentId": "s1", "accessTeamIds": [ADV_2]}
    assert post(http, fresh_sandbox, url, {"accessTeamIds": []}, BEARER).status_code == 200
    assert fresh_sandbox.state()["epsilon"]["segments"][0]["accessTeamIds"] == []


def test_manage_access_errors(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], [])
    missing = post(
        http, fresh_sandbox, "/v1/segments/nope:manage-access", {"accessTeamIds": [ADV_1]}, BEARER
    )
    assert missing.status_code == 404
    assert missing.text == "segment 'nope' not found"
    assert_400(
        post(
            http,
            fresh_sandbox,
            "/v1/segments/s1:manage-access",
            {"accessTeamIds": ["advertiser-1"]},
            BEARER,
        ),
        "not a UUID",
    )
    assert_400(
        post(
            http, fresh_sandbox, "/v1/segments/s1:manage-access", {"accessTeamIds": ADV_1}, BEARER
        ),
        "expected an array",
    )
    unauth = post(
        http, fresh_sandbox, "/v1/segments/s1:manage-access", {"accessTeamIds": []}, BASIC
    )
    assert (unauth.status_code, unauth.text) == (401, "unauthorized")


def test_no_segment_reads_and_no_customer_delete(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    make(http, fresh_sandbox, ["s1"], ["c1"])
    listing = http.get(fresh_sandbox.epsilon_url + "/v1/segments", headers=BEARER)
    assert (listing.status_code, listing.text) == (405, "method not allowed")
    one = http.get(fresh_sandbox.epsilon_url + "/v1/segments/s1", headers=BEARER)
    assert (one.status_code, one.text) == (404, "no such endpoint: /v1/segments/s1")
    delete = http.delete(fresh_sandbox.epsilon_url + "/v1/customers/c1", headers=BASIC)
    assert (delete.status_code, delete.text) == (405, "method not allowed")
    assert [c["id"] for c in fresh_sandbox.state()["epsilon"]["customers"]] == ["c1"]


# ---------------------------------------------------------------------- customers
def test_create_customers_batch_limit(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    hundred = {"customers": [{"id": f"c{i:03d}"} for i in range(100)]}
    resp = post(http, fresh_sandbox, "/v1/customers", hundred, BASIC)
    assert resp.status_code == 200
    assert [c["id"] for c in resp.json()["customers"]] == [f"c{i:03d}" for i in range(100)]
    over = {"customers": [{"id": f"d{i:03d}"} for i in range(101)]}
    assert_400(post(http, fresh_sandbox, "/v1/customers", over, BASIC), "got 101")
    assert_400(post(http, fresh_sandbox, "/v1/customers", {"customers": []}, BASIC), "got 0")
    assert len(fresh_sandbox.state()["epsilon"]["customers"]) == 100


def test_create_customers_is_an_upsert_in_request_order(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    body = {"customers": [{"id": "z", "teamId": ADV_1}, {"id": "a"}]}
    first = post(http, fresh_sandbox, "/v1/customers", body, BASIC)
    assert first.json() == {
        "customers": [{"id": "z", "teamId": ADV_1}, {"id": "a", "teamId": TEAM}]
    }
    again = post(http, fresh_sandbox, "/v1/customers", {"customers": [{"id": "z"}]}, BASIC)
    assert again.status_code == 200
    assert again.json() == {"customers": [{"id": "z", "teamId": ADV_1}]}
    assert fresh_sandbox.state()["epsilon"]["customers"] == [
        {"id": "a", "teamId": TEAM, "segmentIds": []},
        {"id": "z", "teamId": ADV_1, "segmentIds": []},
    ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"customers": [{"teamId": TEAM}]}, "customers[0].id: required field missing"),
        ({"customers": [{"id": 12345}]}, "customers[0].id: expected a string"),
        ({"customers": [{"id": "c", "email": "x@y"}]}, "customers[0].email: unknown field"),
        ({"customers": {"id": "c"}}, "customers: expected an array"),
        ({"customer": []}, "body.customers: required field missing"),
    ],
)
def test_create_customers_refuses_bad_bodies(
    fresh_sandbox: Sandbox, http: httpx.Client, body: Any, needle: str
) -> None:
    assert_400(post(http, fresh_sandbox, "/v1/customers", body, BASIC), needle)


def test_customers_need_the_raw_basic_key(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    body = {"customers": [{"id": "c"}]}
    for headers in ({}, BEARER, {"Authorization": "Basic c2FuZGJveA=="}):
        resp = post(http, fresh_sandbox, "/v1/customers", body, headers)
        assert (resp.status_code, resp.text) == (401, "unauthorized")
    assert fresh_sandbox.state()["epsilon"]["customers"] == []


def test_manage_segments_sets_the_whole_list(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1", "s2", "s3"], ["c1"])
    url = "/v1/customers/manage-segments"
    body = {"customerId": "c1", "teamId": TEAM, "segments": {"segmentIds": ["s1", "s2"]}}
    assert post(http, fresh_sandbox, url, body, BASIC).status_code == 200
    listed = {
        "customerId": "c1",
        "teamId": TEAM,
        "segments": [{"segmentIds": ["s3"]}, {"segmentIds": ["s2", "s3"]}],
    }
    resp = post(http, fresh_sandbox, url, listed, BASIC)
    assert resp.status_code == 200
    assert resp.json() == {"customerId": "c1", "segmentIds": ["s3", "s2"]}
    got = http.get(fresh_sandbox.epsilon_url + "/v1/customers/c1", headers=BASIC)
    assert got.json() == {"id": "c1", "teamId": TEAM, "segmentIds": ["s3", "s2"]}
    empty = {"customerId": "c1", "teamId": TEAM, "segments": {"segmentIds": []}}
    assert post(http, fresh_sandbox, url, empty, BASIC).json() == {
        "customerId": "c1",
        "segmentIds": [],
    }


def test_manage_segments_errors(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], ["c1"])
    url = "/v1/customers/manage-segments"
    unknown_customer = post(
        http,
        fresh_sandbox,
        url,
        {"customerId": "ghost", "teamId": TEAM, "segments": {"segmentIds": ["s1"]}},
        BASIC,
    )
    assert (unknown_customer.status_code, unknown_customer.text) == (
        404,
        "customer 'ghost' not found",
    )
    assert_400(
        post(
            http,
            fresh_sandbox,
            url,
            {"customerId": "c1", "teamId": TEAM, "segments": {"segmentIds": ["s1", "nope"]}},
            BASIC,
        ),
        "unknown segment id(s): nope",
    )
    assert_400(
        post(http, fresh_sandbox, url, {"customerId": "c1", "segments": {"segmentIds": []}}, BASIC),
        "teamId: required",
    )
    assert_400(
        post(
            http,
            fresh_sandbox,
            url,
            {"customerId": "c1", "teamId": TEAM, "segments": {"ids": []}},
            BASIC,
        ),
        "segments.segmentIds: required",
    )
    assert fresh_sandbox.state()["epsilon"]["customers"][0]["segmentIds"] == []


def test_get_customer_404(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    resp = http.get(fresh_sandbox.epsilon_url + "/v1/customers/ghost", headers=BASIC)
    assert (resp.status_code, resp.text) == (404, "customer 'ghost' not found")
    assert resp.headers["content-type"].startswith("text/plain")


def test_list_customers_paging_and_filter(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], [f"c{i}" for i in range(5)])
    post(
        http,
        fresh_sandbox,
        "/v1/customers/manage-segments",
        {"customerId": "c3", "teamId": TEAM, "segments": {"segmentIds": ["s1"]}},
        BASIC,
    )
    url = fresh_sandbox.epsilon_url + "/v1/customers"
    page = http.get(url, params={"limit": 2, "skip": 2}, headers=BASIC)
    assert page.status_code == 200
    assert page.json() == {
        "customers": [
            {"id": "c2", "teamId": TEAM, "segmentIds": []},
            {"id": "c3", "teamId": TEAM, "segmentIds": ["s1"]},
        ],
        "totalCount": 5,
    }
    filtered = http.get(
        url,
        params=[("customerIds", "c4"), ("customerIds", "c0"), ("customerIds", "ghost")],
        headers=BASIC,
    )
    assert filtered.json() == {
        "customers": [
            {"id": "c0", "teamId": TEAM, "segmentIds": []},
            {"id": "c4", "teamId": TEAM, "segmentIds": []},
        ],
        "totalCount": 2,
    }
    assert http.get(url, params={"limit": 1000}, headers=BASIC).json()["totalCount"] == 5
    assert_400(http.get(url, params={"limit": 1001}, headers=BASIC), "'limit' must be 1..1000")
    assert_400(http.get(url, params={"limit": 0}, headers=BASIC), "'limit' must be 1..1000")
    assert_400(http.get(url, params={"skip": -1}, headers=BASIC), "'skip' must be >= 0")
    assert_400(http.get(url, params={"page": 2}, headers=BASIC), "unknown query parameter")
    assert http.get(url, headers=BEARER).status_code == 401


# ---------------------------------------------------------------------- log, seed, restart
def test_request_log_counts_what_was_sent(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    make(http, fresh_sandbox, ["s1"], ["c1"])
    http.get(fresh_sandbox.epsilon_url + "/v1/customers/c1", headers=BASIC)
    log = fresh_sandbox.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", "/epsilon/v1/segments", 200),
        ("POST", "/epsilon/v1/customers", 200),
        ("GET", "/epsilon/v1/customers/c1", 200),
    ]
    assert log[2]["route"] == "GET /epsilon/v1/customers/{id}"
    assert log[2]["group"] == "epsilon"
    assert log[2]["fault"] is None
    assert [r["path"] for r in fresh_sandbox.requests(method="GET")] == ["/epsilon/v1/customers/c1"]
    assert len(fresh_sandbox.requests(since=log[0]["id"])) == 2
    fresh_sandbox.clear_requests()
    assert fresh_sandbox.requests() == []


def test_seed_state_into_running_sandbox(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    seed_state(
        fresh_sandbox,
        {
            "epsilon": {
                "segments": [
                    {"segmentId": "s1", "name": "S1", "description": "", "accessTeamIds": [ADV_1]}
                ],
                "customers": [{"id": "c1", "segmentIds": ["s1"]}],
            }
        },
    )
    got = http.get(fresh_sandbox.epsilon_url + "/v1/customers/c1", headers=BASIC)
    assert got.json() == {"id": "c1", "teamId": TEAM, "segmentIds": ["s1"]}
    dup = post(http, fresh_sandbox, "/v1/segments", segment("s1"), BEARER)
    assert dup.status_code == 409


def test_state_survives_a_restart(tmp_path: Path, http: httpx.Client) -> None:
    db = tmp_path / "persist.db"
    seed_state(
        db, {"epsilon": {"segments": [{"segmentId": "s0", "name": "S0", "description": ""}]}}
    )
    with Sandbox(db, talonone_rate_limit=1000) as sb:
        make(http, sb, ["s1"], ["c1"])
        post(
            http,
            sb,
            "/v1/customers/manage-segments",
            {"customerId": "c1", "teamId": TEAM, "segments": {"segmentIds": ["s1", "s0"]}},
            BASIC,
        )
        before = sb.state()
    with Sandbox(db, talonone_rate_limit=1000) as sb:
        assert sb.state() == before
        assert sb.requests() == []  # the request log is per process, the state is not
        got = http.get(sb.epsilon_url + "/v1/customers/c1", headers=BASIC)
        assert got.json() == {"id": "c1", "teamId": TEAM, "segmentIds": ["s1", "s0"]}


def test_a_request_whose_client_left_before_its_body_ended_is_not_handled(
    fresh_sandbox: Any, http: httpx.Client
) -> None:
    """A client killed between its headers and its body: the platform received no request,
    so the sandbox neither answers nor logs it, and changes nothing."""
    import socket

    body = json.dumps({"customers": [{"id": "half"}]}).encode()
    head = (
        "POST /epsilon/v1/customers HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{fresh_sandbox.port}\r\n"
        f"Authorization: Basic {EPSILON_API_KEY}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", fresh_sandbox.port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
    # the same request, whole, is handled: the half one before it left no trace
    done = http.post(
        f"{fresh_sandbox.epsilon_url}/v1/customers",
        json={"customers": [{"id": "whole"}]},
        headers=BASIC,
    )
    assert done.status_code in (200, 201), done.text
    logged = [r for r in fresh_sandbox.requests() if r["route"] == "POST /epsilon/v1/customers"]
    assert len(logged) == 1
    ids = {c["id"] for c in fresh_sandbox.state()["epsilon"]["customers"]}
    assert ids == {"whole"}
