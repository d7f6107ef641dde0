"""The sandbox's Talon.One Management API answers, parsed with the official SDK's models
(``talon-one-sdk``, module ``talon_one``): the shapes the provider reads are the real ones.

Skipped when the SDK is not installed (it is a test extra, never a runtime dependency).
"""

from __future__ import annotations

import asyncio
import csv
import importlib
import importlib.util
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TALON_ONE_SDK_GROUP

from reconciler.model import Segment
from reconciler.plan.changes import Action, LinkChange, Phase, SegmentChange
from reconciler.providers.base import ProviderContext
from reconciler.providers.talonone import TalonOneProvider
from reconciler.sandbox import Sandbox, seed_state
from reconciler.statestore import StateStore

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("talon_one") is None, reason="talon-one-sdk not installed"
    ),
    TALON_ONE_SDK_GROUP,
]


@pytest.fixture(scope="module")
def models() -> Any:
    """The SDK's models, imported by the first test that needs them (its import takes
    seconds: collecting the suite does not pay for it)."""
    return importlib.import_module("talon_one.models")


PLATFORM = "sdk-shapes"


def aliases(model: Any) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


@pytest.fixture
def populated(fresh_sandbox: Sandbox, tmp_path: Path) -> Sandbox:
    """Two audiences written by the provider (three members), one made by another platform."""
    seed_state(
        fresh_sandbox,
        {
            "talonone": {
                "audiences": [
                    {
                        "integrationId": "theirs",
                        "name": "Theirs",
                        "integration": "other",
                        "members": ["z"],
                    },
                ]
            }
        },
    )
    found = TalonOneProvider.sandbox_overrides(fresh_sandbox)
    provider = TalonOneProvider(
        "t1",
        {**found[0], "platform_name": PLATFORM, "management_rps": 10_000.0},
        found[1],
        ProviderContext(StateStore(tmp_path / "s.db"), tmp_path),
    )

    async def write() -> None:
        try:
            for seg in (Segment("vip", "VIP"), Segment("new", "Newcomers")):
                await provider.write(
                    Phase.SEGMENTS, [SegmentChange(Action.CREATE, seg.id, None, seg)]
                )
            await provider.write(
                Phase.LINKS,
                [
                    LinkChange("c1", frozenset(), frozenset({"vip"})),
                    LinkChange("c2", frozenset(), frozenset({"vip", "new"})),
                    LinkChange("c3", frozenset(), frozenset({"new"})),
                ],
            )
        finally:
            await provider.aclose()

    asyncio.run(write())
    return fresh_sandbox


def mgmt(http: httpx.Client, sb: Sandbox, path: str, **params: Any) -> httpx.Response:
    key = sb.credentials["talonone_management_key"]
    response = http.get(
        sb.talonone_management_url + path,
        params=params,
        headers={"Authorization": f"ManagementKey-v1 {key}"},
    )
    assert response.status_code == 200, response.text
    return response


def test_audience_list_pages_parse(populated: Sandbox, http: httpx.Client, models: Any) -> None:
    seen: list[Any] = []
    skip = 0
    while True:
        response = mgmt(
            http, populated, "/v1/audiences", pageSize=2, skip=skip, withTotalResultSize="true"
        )
        page = models.GetAudiences200Response.from_json(response.text)
        assert page.total_result_size == 3
        seen += page.data
        for raw, audience in zip(response.json()["data"], page.data, strict=True):
            assert isinstance(audience, models.Audience)
            assert audience.id == raw["id"]
            assert audience.integration_id == raw["integrationId"]
            assert audience.created.tzinfo is not None
            # every field but one is declared by the SDK's model (see the report)
            assert set(raw) - aliases(models.Audience) == {"subscribedApplicationsIds"}
        if not page.has_more:
            break
        skip += len(page.data)
    assert sorted(a.integration_id for a in seen) == ["new", "theirs", "vip"]
    assert {a.integration for a in seen} == {PLATFORM, "other"}
    assert all(a.created_in3rd_party for a in seen)


def test_memberships_parse_as_customer_profiles(
    populated: Sandbox, http: httpx.Client, models: Any
) -> None:
    listing = mgmt(http, populated, "/v1/audiences").json()
    ids = {a["integrationId"]: a["id"] for a in listing["data"]}
    response = mgmt(http, populated, f"/v1/audiences/{ids['vip']}/memberships", pageSize=1)
    page = models.GetAudienceMemberships200Response.from_json(response.text)
    assert page.has_more is True
    profile = page.data[0]
    assert isinstance(profile, models.CustomerProfile)
    assert profile.integration_id == "c1"
    assert set(response.json()["data"][0]) <= aliases(models.CustomerProfile)
    response = mgmt(http, populated, f"/v1/audiences/{ids['vip']}/memberships", pageSize=1, skip=1)
    c2 = models.GetAudienceMemberships200Response.from_json(response.text).data[0]
    assert c2.integration_id == "c2"
    memberships = sorted(c2.audience_memberships, key=lambda m: m.id)
    assert all(isinstance(m, models.AudienceMembership) for m in memberships)
    assert [m.name for m in memberships] == ["VIP", "Newcomers"]


def test_export_is_the_csv_the_provider_reads(populated: Sandbox, http: httpx.Client) -> None:
    listing = mgmt(http, populated, "/v1/audiences").json()
    new = next(a["id"] for a in listing["data"] if a["integrationId"] == "new")
    response = mgmt(http, populated, f"/v1/audiences/{new}/memberships/export")
    assert response.headers["content-type"].startswith("application/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["profileintegrationid"], ["c2"], ["c3"]]


def test_cdp_answers_parse_as_audiences(
    fresh_sandbox: Sandbox, http: httpx.Client, models: Any
) -> None:
    creds = fresh_sandbox.credentials
    headers = {
        "Authorization": f"ApiKey-v1 {creds['talonone_api_key']}",
        "customer-data-platform-name": PLATFORM,
        "destination-hostname": "sandbox.talon.one",
    }
    body = {"audienceId": "a", "audienceName": "A"}
    created = http.post(fresh_sandbox.talonone_url + "/cdp/audiences", json=body, headers=headers)
    assert created.status_code == 201
    audience = models.Audience.from_json(created.text)
    assert (audience.integration_id, audience.integration, audience.name) == ("a", PLATFORM, "A")
    renamed = http.put(
        fresh_sandbox.talonone_url + "/cdp/audiences/a",
        json={"audienceId": "a", "audienceName": "B"},
        headers=headers,
    )
    assert models.Audience.from_json(renamed.text).name == "B"


def test_the_fields_the_provider_reads_are_in_the_sdk_models(models: Any) -> None:
    assert {"id", "integrationId", "integration", "name"} <= aliases(models.Audience)
    assert {"hasMore", "data"} <= aliases(models.GetAudiences200Response)
