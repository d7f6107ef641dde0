"""Recorded HTTP of the Epsilon provider (vcrpy), with credentials filtered out.

The cassette replays the provider's exact requests without any server; it was recorded against
the sandbox (delete it and re-run to record again). A second test checks that no cassette holds
a secret.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import vcr

from reconciler.model import Segment
from reconciler.plan.changes import (
    AccessChange,
    Action,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from reconciler.providers.base import ProviderContext, ReadScope
from reconciler.providers.epsilon import EpsilonProvider
from reconciler.sandbox import Credentials, Sandbox
from reconciler.statestore import StateStore

CASSETTES = Path(__file__).parent / "cassettes"
SECRETS = tuple(Credentials().as_dict().values())
RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="once",
    match_on=["method", "path", "query", "body"],
    filter_headers=[("authorization", "REDACTED")],
)


async def _exercise(base_url: str, tmp: Path) -> dict[str, frozenset[str]]:
    creds = Credentials()
    provider = EpsilonProvider(
        "eps",
        {"base_url": base_url, "retailer_team_id": RETAILER, "concurrency": 2},
        {"bearer_token": creds.epsilon_bearer_token, "api_key": creds.epsilon_api_key},
        ProviderContext(StateStore(tmp / "s.db"), tmp),
    )
    seg = Segment("general-segment-4", "Value Shoppers", "Higher basket % of value products.")
    teams = frozenset({"90d5f138-2090-412b-a397-1f59ea6a31b3"})
    try:
        await provider.write(Phase.SEGMENTS, [SegmentChange(Action.CREATE, seg.id, None, seg)])
        await provider.write(Phase.ACCESS, [AccessChange(Action.CREATE, seg.id, after=teams)])
        await provider.write(
            Phase.CUSTOMERS,
            [
                CustomerChange(Action.CREATE, "cust_12345"),
                CustomerChange(Action.CREATE, "cust_67890"),
            ],
        )
        await provider.write(
            Phase.LINKS, [LinkChange("cust_12345", frozenset(), frozenset({seg.id}))]
        )
        remote = await provider.read(ReadScope())
    finally:
        await provider.aclose()
    return dict(remote.state.links)


def test_epsilon_provider_requests_replay_from_the_cassette(tmp_path: Path) -> None:
    name = "epsilon_provider.yaml"
    with recorder.use_cassette(name) as cassette:
        if (CASSETTES / name).exists() and len(cassette) > 0:
            links = asyncio.run(_exercise("http://127.0.0.1:9/epsilon", tmp_path))
        else:  # record against a sandbox
            with Sandbox(tmp_path / "sb.db") as sb:
                links = asyncio.run(_exercise(sb.epsilon_url, tmp_path))
        assert links == {"cust_12345": frozenset({"general-segment-4"})}
        paths = [r.path for r in cassette.requests]
    assert paths == [
        "/epsilon/v1/segments",
        "/epsilon/v1/segments/general-segment-4:manage-access",
        "/epsilon/v1/customers",
        "/epsilon/v1/customers/manage-segments",
        "/epsilon/v1/customers",
    ]


def test_no_cassette_contains_a_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files, "no cassettes recorded"
    auth = re.compile(r"(Bearer|Basic|ApiKey-v1|ManagementKey-v1)\s+(?!REDACTED)\S+")
    for path in files:
        text = path.read_text()
        for secret in SECRETS:
            assert secret not in text, f"{path.name} contains a credential"
        assert not auth.search(text), f"{path.name} contains an Authorization value"
        assert "REDACTED" in text
