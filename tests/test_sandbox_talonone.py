"""The Talon.One simulation (CDP, Integration and Management APIs), over real HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from conftest import TALON_ONE_SDK_GROUP

from reconciler.sandbox import (
    TALONONE_ACCOUNT_ID,
    TALONONE_API_KEY,
    TALONONE_MANAGEMENT_KEY,
    Sandbox,
    seed_state,
)

CDP = {
    "Authorization": f"ApiKey-v1 {TALONONE_API_KEY}",
    "customer-data-platform-name": "audience-reconciler",
    "destination-hostname": "mycompany.europe-west1.talon.one",
}
INTEGRATION = {"Authorization": f"ApiKey-v1 {TALONONE_API_KEY}"}
MGMT = {"Authorization": f"ManagementKey-v1 {TALONONE_MANAGEMENT_KEY}"}


def cdp(
    http: httpx.Client,
    sb: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return http.request(
        method, sb.talonone_url + path, json=body, headers=CDP if headers is None else headers
    )


def mgmt(http: httpx.Client, sb: Sandbox, path: str, **params: Any) -> httpx.Response:
    return http.get(sb.talonone_management_url + path, params=params, headers=MGMT)


def create(http: httpx.Client, sb: Sandbox, *names: str) -> list[int]:
    ids = []
    for name in names:
        resp = cdp(http, sb, "POST", "/cdp/audiences", {"audienceId": name, "audienceName": name})
        assert resp.status_code == 201
        ids.append(resp.json()["id"])
    return ids


def members(sb: Sandbox) -> dict[str, list[str]]:
    return {a["integrationId"]: a["members"] for a in sb.state()["talonone"]["audiences"]}


def assert_cdp_error(resp: httpx.Response, status: int, needle: str) -> None:
    assert resp.status_code == status
    body = resp.json()
    assert set(body) == {"StatusCode", "Error", "RequestUUID"}
    assert body["StatusCode"] == status
    assert needle in body["Error"]
    uuid.UUID(body["RequestUUID"])


def assert_mgmt_error(resp: httpx.Response, status: int, needle: str) -> None:
    assert resp.status_code == status
    body = resp.json()
    assert body["StatusCode"] == status
    assert needle in body["message"]
    assert body["errors"][0]["details"] == body["message"]


def rfc3339(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    return parsed


# ---------------------------------------------------------------------- audiences (CDP)
def test_create_audience(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    resp = cdp(
        http, fresh_sandbox, "POST", "/cdp/audiences", {"audienceId": "vip", "audienceName": "VIP"}
    )
    assert resp.status_code == 201
    body = resp.json()
    rfc3339(body.pop("created"))
    assert body == {
        "id": 1,
        "accountId": TALONONE_ACCOUNT_ID,
        "name": "VIP",
        "integration": "audience-reconciler",
        "integrationId": "vip",
    }
    dup = cdp(
        http,
        fresh_sandbox,
        "POST",
        "/cdp/audiences",
        {"audienceId": "vip", "audienceName": "Other"},
    )
    assert_cdp_error(dup, 409, "already exists")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"audienceId": "a"}, "audienceName: required"),
        ({"audienceId": "a", "audienceName": ""}, "at least 1"),
        ({"audienceId": "a" * 1001, "audienceName": "n"}, "at most 1000"),
        ({"audienceId": 7, "audienceName": "n"}, "expected a string"),
        ({"audienceId": "a", "audienceName": "n", "description": "d"}, "unknown field"),
    ],
)
def test_create_audience_refuses_bad_bodies(
    fresh_sandbox: Sandbox, http: httpx.Client, body: Any, needle: str
) -> None:
    assert_cdp_error(cdp(http, fresh_sandbox, "POST", "/cdp/audiences", body), 400, needle)


@pytest.mark.parametrize("missing", ["customer-data-platform-name", "destination-hostname"])
def test_cdp_required_headers(fresh_sandbox: Sandbox, http: httpx.Client, missing: str) -> None:
    headers = {k: v for k, v in CDP.items() if k != missing}
    resp = cdp(
        http,
        fresh_sandbox,
        "POST",
        "/cdp/audiences",
        {"audienceId": "a", "audienceName": "n"},
        headers,
    )
    assert_cdp_error(resp, 400, missing)


@pytest.mark.parametrize(
    "auth", [None, "ApiKey-v1 wrong", f"ManagementKey-v1 {TALONONE_API_KEY}", TALONONE_API_KEY]
)
def test_cdp_auth(fresh_sandbox: Sandbox, http: httpx.Client, auth: str | None) -> None:
    headers = {k: v for k, v in CDP.items() if k != "Authorization"}
    if auth is not None:
        headers["Authorization"] = auth
    resp = cdp(
        http,
        fresh_sandbox,
        "POST",
        "/cdp/audiences",
        {"audienceId": "a", "audienceName": "n"},
        headers,
    )
    assert_cdp_error(resp, 401, "unauthorized")
    assert fresh_sandbox.state()["talonone"]["audiences"] == []


def test_update_and_delete_audience(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    (aid,) = create(http, fresh_sandbox, "vip")
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/audiences/vip",
        {"audienceId": "vip", "audienceName": "Very important"},
    )
    assert resp.status_code == 200
    body = resp.json()
    rfc3339(body.pop("created"))
    assert body == {
        "id": aid,
        "accountId": 1,
        "name": "Very important",
        "integration": "audience-reconciler",
        "integrationId": "vip",
    }
    assert_cdp_error(
        cdp(
            http,
            fresh_sandbox,
            "PUT",
            "/cdp/audiences/ghost",
            {"audienceId": "ghost", "audienceName": "x"},
        ),
        404,
        "not found",
    )
    assert_cdp_error(
        cdp(
            http,
            fresh_sandbox,
            "PUT",
            "/cdp/audiences/vip",
            {"audienceId": "other", "audienceName": "x"},
        ),
        400,
        "must match",
    )
    cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profiles/audiences",
        {"data": [{"customerProfileId": "p1", "adds": [aid]}]},
    )
    assert members(fresh_sandbox) == {"vip": ["p1"]}
    gone = cdp(http, fresh_sandbox, "DELETE", "/cdp/audiences/vip")
    assert (gone.status_code, gone.content) == (204, b"")
    assert fresh_sandbox.state()["talonone"]["audiences"] == []
    assert_cdp_error(cdp(http, fresh_sandbox, "DELETE", "/cdp/audiences/vip"), 404, "not found")
    again = create(http, fresh_sandbox, "vip")
    assert again != [aid]
    assert members(fresh_sandbox) == {"vip": []}


# ---------------------------------------------------------------------- memberships (CDP)
def test_many_profiles_numeric_batch_limit_and_idempotence(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    a, b = create(http, fresh_sandbox, "a", "b")
    data = [{"customerProfileId": f"p{i:04d}", "adds": [a]} for i in range(999)]
    data.append({"customerProfileId": "p0000", "deletes": [b]})
    ok = cdp(http, fresh_sandbox, "PUT", "/cdp/customer_profiles/audiences", {"data": data})
    assert (ok.status_code, ok.content) == (204, b"")
    assert len(members(fresh_sandbox)["a"]) == 999
    over = [*data, {"customerProfileId": "x", "adds": [b]}]
    resp = cdp(http, fresh_sandbox, "PUT", "/cdp/customer_profiles/audiences", {"data": over})
    assert_cdp_error(resp, 400, "got 1001")
    one_entry_over = [{"customerProfileId": "x", "adds": [a] * 1001}]
    assert_cdp_error(
        cdp(
            http, fresh_sandbox, "PUT", "/cdp/customer_profiles/audiences", {"data": one_entry_over}
        ),
        400,
        "got 1001",
    )
    again = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profiles/audiences",
        {"data": [{"customerProfileId": "p0001", "adds": [a], "deletes": [b]}]},
    )
    assert again.status_code == 204
    assert len(members(fresh_sandbox)["a"]) == 999
    assert members(fresh_sandbox)["b"] == []


def test_many_profiles_unknown_audience_is_404_and_nothing_applied(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    (a,) = create(http, fresh_sandbox, "a")
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profiles/audiences",
        {
            "data": [
                {"customerProfileId": "p1", "adds": [a]},
                {"customerProfileId": "p2", "adds": [a + 100]},
            ]
        },
    )
    assert_cdp_error(resp, 404, f"audience(s) not found: {a + 100}")
    assert members(fresh_sandbox) == {"a": []}
    assert fresh_sandbox.state()["talonone"]["profiles"] == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"data": []}, "non-empty array"),
        ({"data": [{"adds": [1]}]}, "customerProfileId: required"),
        ({"data": [{"customerProfileId": "p", "adds": ["1"]}]}, "expected an integer"),
        ({"data": [{"customerProfileId": "p", "adds": [True]}]}, "expected an integer"),
        ({"data": [{"customerProfileId": "p", "adds": [1], "deletes": [1]}]}, "both added"),
        ({"data": [{"customerProfileId": "p", "extra": 1}]}, "unknown field"),
        ({"data": {"customerProfileId": "p"}}, "non-empty array"),
    ],
)
def test_many_profiles_refuses_bad_bodies(
    fresh_sandbox: Sandbox, http: httpx.Client, body: Any, needle: str
) -> None:
    create(http, fresh_sandbox, "a")
    resp = cdp(http, fresh_sandbox, "PUT", "/cdp/customer_profiles/audiences", body)
    assert_cdp_error(resp, 400, needle)


def test_singular_guide_path_is_an_alias(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    (a,) = create(http, fresh_sandbox, "a")
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profile/audiences",
        {"data": [{"customerProfileId": "p1", "adds": [a]}]},
    )
    assert (resp.status_code, resp.content) == (204, b"")
    assert members(fresh_sandbox) == {"a": ["p1"]}


def test_v2_external_ids(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    create(http, fresh_sandbox, "a", "b")
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/v2/customer_profiles/audiences",
        {
            "data": [
                {"customerProfileId": "p1", "adds": ["a", "b"]},
                {"customerProfileId": "p2", "adds": ["b"]},
                {"customerProfileId": "p1", "deletes": ["a"]},
            ]
        },
    )
    assert (resp.status_code, resp.content) == (204, b"")
    assert members(fresh_sandbox) == {"a": [], "b": ["p1", "p2"]}
    missing = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/v2/customer_profiles/audiences",
        {"data": [{"customerProfileId": "p3", "adds": ["zzz"]}]},
    )
    assert_cdp_error(missing, 404, "zzz")
    numeric = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/v2/customer_profiles/audiences",
        {"data": [{"customerProfileId": "p3", "adds": [1]}]},
    )
    assert_cdp_error(numeric, 400, "expected a string")


def test_one_profile_audiences_by_external_id(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    create(http, fresh_sandbox, "a", "b")
    url = "/cdp/customer_profile/p1/audiences"
    resp = cdp(http, fresh_sandbox, "PUT", url, {"data": {"adds": ["a", "b"]}})
    assert (resp.status_code, resp.content) == (200, b"")
    resp = cdp(http, fresh_sandbox, "PUT", url, {"data": {"deletes": ["a", "a"]}})
    assert resp.status_code == 200
    assert members(fresh_sandbox) == {"a": [], "b": ["p1"]}
    limit = cdp(http, fresh_sandbox, "PUT", url, {"data": {"adds": ["a"] * 1000}})
    assert limit.status_code == 200
    over = cdp(http, fresh_sandbox, "PUT", url, {"data": {"adds": ["a"] * 1000, "deletes": ["b"]}})
    assert_cdp_error(over, 400, "got 1001")
    assert_cdp_error(
        cdp(http, fresh_sandbox, "PUT", url, {"data": {"adds": ["nope"]}}), 404, "nope"
    )
    assert_cdp_error(cdp(http, fresh_sandbox, "PUT", url, {"adds": ["a"]}), 400, "data: required")


def test_update_customer_profile(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    a, b = create(http, fresh_sandbox, "a", "b")
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profile/p1",
        {
            "attributes": {"tier": "gold"},
            "runRuleEngine": True,
            "audiencesChanges": {"adds": [a, b], "deletes": []},
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    for key in ("created", "lastActivity"):
        rfc3339(body.pop(key))
    assert body == {
        "id": 1,
        "integrationId": "p1",
        "attributes": {"tier": "gold"},
        "accountId": 1,
        "closedSessions": 0,
        "totalSales": 0.0,
        "audienceMemberships": [{"id": a, "name": "a"}, {"id": b, "name": "b"}],
    }
    resp = cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profile/p1?skipNonExistingAttributes=true",
        {"attributes": {"city": "Berlin"}, "audiencesChanges": {"deletes": [a]}},
    )
    assert resp.json()["attributes"] == {"city": "Berlin", "tier": "gold"}
    assert resp.json()["audienceMemberships"] == [{"id": b, "name": "b"}]
    assert_cdp_error(
        cdp(
            http,
            fresh_sandbox,
            "PUT",
            "/cdp/customer_profile/p1",
            {"audiencesChanges": {"adds": [999]}},
        ),
        404,
        "999",
    )
    assert_cdp_error(
        cdp(http, fresh_sandbox, "PUT", "/cdp/customer_profile/p1", {"runRuleEngine": "yes"}),
        400,
        "runRuleEngine",
    )
    assert_cdp_error(
        cdp(
            http,
            fresh_sandbox,
            "PUT",
            "/cdp/customer_profile/p1",
            {"audiencesChanges": {"adds": [a], "moves": []}},
        ),
        400,
        "unknown field",
    )


# ---------------------------------------------------------------------- Integration API read
def test_inventory_profile(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    (a,) = create(http, fresh_sandbox, "a")
    cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profiles/audiences",
        {"data": [{"customerProfileId": "p1", "adds": [a]}]},
    )
    url = fresh_sandbox.talonone_url + "/v1/customer_profiles/p1/inventory"
    resp = http.get(url, params={"profile": "true"}, headers=INTEGRATION)
    assert resp.status_code == 200
    profile = resp.json()["profile"]
    assert profile["integrationId"] == "p1"
    assert profile["audienceMemberships"] == [{"id": a, "name": "a"}]
    assert http.get(url, headers=INTEGRATION).json() == {}
    ghost = http.get(url.replace("p1", "ghost"), params={"profile": "true"}, headers=INTEGRATION)
    assert_mgmt_error(ghost, 404, "not found")
    assert_mgmt_error(http.get(url, headers=MGMT), 401, "unauthorized")


# ---------------------------------------------------------------------- Management API
def test_list_audiences_paging(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    ids = create(http, fresh_sandbox, "a", "b", "c")
    page = mgmt(http, fresh_sandbox, "/v1/audiences", pageSize=2, withTotalResultSize="true")
    assert page.status_code == 200
    body = page.json()
    assert (body["hasMore"], body["totalResultSize"]) == (True, 3)
    first = body["data"][0]
    rfc3339(first.pop("created"))
    rfc3339(first.pop("lastUpdate"))
    assert first == {
        "id": ids[0],
        "accountId": 1,
        "name": "a",
        "sandbox": False,
        "description": "",
        "subscribedApplicationsIds": [],
        "integration": "audience-reconciler",
        "integrationId": "a",
        "createdIn3rdParty": True,
    }
    rest = mgmt(http, fresh_sandbox, "/v1/audiences", pageSize=2, skip=2).json()
    assert rest["hasMore"] is False
    assert "totalResultSize" not in rest
    assert [a["integrationId"] for a in rest["data"]] == ["c"]
    assert len(mgmt(http, fresh_sandbox, "/v1/audiences", pageSize=1000).json()["data"]) == 3
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences", pageSize=1001), 400, "1..1000")
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences", pageSize=0), 400, "1..1000")
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences", bogus=1), 400, "unknown query")
    unauth = http.get(fresh_sandbox.talonone_management_url + "/v1/audiences", headers=INTEGRATION)
    assert_mgmt_error(unauth, 401, "unauthorized")


def test_memberships_and_export(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    a, b = create(http, fresh_sandbox, "a", "b")
    cdp(
        http,
        fresh_sandbox,
        "PUT",
        "/cdp/customer_profiles/audiences",
        {
            "data": [
                {"customerProfileId": "zed", "adds": [a, b]},
                {"customerProfileId": "amy", "adds": [a]},
                {"customerProfileId": "kim", "adds": [a]},
            ]
        },
    )
    page = mgmt(
        http,
        fresh_sandbox,
        f"/v1/audiences/{a}/memberships",
        pageSize=2,
        withTotalResultSize="true",
    )
    assert page.status_code == 200
    body = page.json()
    assert (body["hasMore"], body["totalResultSize"]) == (True, 3)
    zed = body["data"][0]
    assert zed["integrationId"] == "zed"
    assert zed["audienceMemberships"] == [{"id": a, "name": "a"}, {"id": b, "name": "b"}]
    for key in (
        "accountId",
        "attributes",
        "closedSessions",
        "created",
        "id",
        "integrationId",
        "lastActivity",
        "totalSales",
    ):
        assert key in zed
    assert isinstance(zed["id"], int)
    rfc3339(zed["lastActivity"])
    csv = mgmt(http, fresh_sandbox, f"/v1/audiences/{a}/memberships/export")
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "application/csv"
    assert csv.text == "profileintegrationid\namy\nkim\nzed\n"
    empty = mgmt(http, fresh_sandbox, f"/v1/audiences/{b}/memberships/export")
    assert empty.text == "profileintegrationid\nzed\n"
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences/999/memberships"), 404, "999")
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences/999/memberships/export"), 404, "999")
    assert_mgmt_error(mgmt(http, fresh_sandbox, "/v1/audiences/abc/memberships"), 400, "integer")


def test_management_rate_limit(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    fresh_sandbox.set_rate_limit(3)
    codes = [mgmt(http, fresh_sandbox, "/v1/audiences").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = mgmt(http, fresh_sandbox, "/v1/audiences")
    assert_mgmt_error(limited, 429, "rate limit")
    assert int(limited.headers["retry-after"]) >= 1
    # Per endpoint: another endpoint has its own budget.
    other = mgmt(http, fresh_sandbox, "/v1/audiences/1/memberships")
    assert_mgmt_error(other, 404, "not found")
    log = fresh_sandbox.requests()
    assert [r["status"] for r in log] == [200, 200, 200, 429, 429, 404]
    fresh_sandbox.reset()
    assert mgmt(http, fresh_sandbox, "/v1/audiences").status_code == 200


def test_seed_state_talonone(fresh_sandbox: Sandbox, http: httpx.Client) -> None:
    seed_state(
        fresh_sandbox,
        {
            "talonone": {
                "profiles": [{"integrationId": "p1", "attributes": {"tier": "gold"}}],
                "audiences": [
                    {"integrationId": "vip", "name": "VIP", "id": 42, "members": ["p1", "p2"]}
                ],
            }
        },
    )
    assert members(fresh_sandbox) == {"vip": ["p1", "p2"]}
    body = mgmt(http, fresh_sandbox, "/v1/audiences/42/memberships").json()
    assert [p["integrationId"] for p in body["data"]] == ["p1", "p2"]
    assert body["data"][0]["attributes"] == {"tier": "gold"}


@TALON_ONE_SDK_GROUP
def test_official_sdk_models_parse_the_responses(
    fresh_sandbox: Sandbox, http: httpx.Client
) -> None:
    models = pytest.importorskip("talon_one.models")
    seed_state(
        fresh_sandbox,
        {"talonone": {"audiences": [{"integrationId": "vip", "name": "VIP", "members": ["p1"]}]}},
    )
    audiences = models.GetAudiences200Response.from_json(
        mgmt(http, fresh_sandbox, "/v1/audiences", withTotalResultSize="true").text
    )
    assert audiences.total_result_size == 1
    assert audiences.data[0].integration_id == "vip"
    assert audiences.data[0].created.tzinfo is not None
    page = models.GetAudienceMemberships200Response.from_json(
        mgmt(http, fresh_sandbox, "/v1/audiences/1/memberships").text
    )
    assert page.data[0].integration_id == "p1"
    assert page.data[0].audience_memberships[0].name == "VIP"
    inventory = models.CustomerInventory.from_json(
        http.get(
            fresh_sandbox.talonone_url + "/v1/customer_profiles/p1/inventory",
            params={"profile": "true"},
            headers=INTEGRATION,
        ).text
    )
    assert inventory.profile.id == 1
    created = cdp(
        http, fresh_sandbox, "POST", "/cdp/audiences", {"audienceId": "new", "audienceName": "New"}
    )
    assert models.Audience.from_json(created.text).integration_id == "new"
    error = models.ErrorResponseWithStatus.from_json(
        mgmt(http, fresh_sandbox, "/v1/audiences/99/memberships").text
    )
    assert error.status_code == 404
