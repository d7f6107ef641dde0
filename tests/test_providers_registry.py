"""One declaration per target type: the provider's ``settings_spec``.

The config's registry and the shipped JSON Schema's per-type branches are built from it (the
schema file is checked to be current: ``python -m reconciler.config._targets`` rewrites it),
and a provider's declared defaults are the defaults — Epsilon reads 16 pages at once, not a
generic 8, counted in flight against a server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hostile.loopback import Call, Loopback

from reconciler._http import RetryPolicy
from reconciler.config import TARGET_TYPES, load, schema_text
from reconciler.config._targets import target_def
from reconciler.exceptions import RemoteError
from reconciler.providers import PROVIDER_MODULES, provider_class
from reconciler.providers.base import ProviderContext, ReadScope
from reconciler.providers.epsilon import PAGE_SIZE, EpsilonProvider
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
GUARD = 60.0
#: how long a held request waits for the others before giving up (only a failing run waits)
HOLD = 10.0


def test_the_shipped_schema_is_built_from_the_declarations() -> None:
    shipped = json.loads(schema_text())["$defs"]["target"]
    assert shipped == target_def(), "stale: run python -m reconciler.config._targets"


@pytest.mark.parametrize("name", list(PROVIDER_MODULES))
def test_the_registry_is_the_provider_declaration(name: str) -> None:
    spec = provider_class(name).settings_spec
    ttype = TARGET_TYPES[name]
    assert dict(ttype.settings) == {s.name: s.default for s in spec if s.kind != "credential"}
    assert ttype.credentials == tuple(s.name for s in spec if s.kind == "credential")
    assert ttype.paths == tuple(s.name for s in spec if s.kind == "path")
    assert ttype.urls == tuple(s.name for s in spec if s.kind == "url")


def _epsilon_config(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "audiences.yaml"
    path.write_text(
        f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: {url}
    retailer_team_id: {RETAILER}
    bearer_token: ${{EPS_TOKEN}}
    api_key: ${{EPS_KEY}}
{extra}segments: []
"""
    )
    return path


def test_a_declared_default_is_the_default(tmp_path: Path) -> None:
    eps = load(_epsilon_config(tmp_path, "http://127.0.0.1:9")).targets["eps"]
    assert eps.settings["concurrency"] == EpsilonProvider.capabilities.concurrency == 16
    assert eps.settings["timeout"] is None  # the retry policy's deadline
    assert TARGET_TYPES["talonone"].settings["concurrency"] == 8


class _Pages:
    """``GET /v1/customers``: 18 pages; every page after the first is held until ``expect``
    requests are in flight at once (or ``HOLD`` passes, when fewer ever are)."""

    def __init__(self, server: Loopback | None = None, expect: int = 0) -> None:
        self.server = server
        self.expect = expect
        self.full = threading.Event()
        self.total = 17 * PAGE_SIZE + 1

    def __call__(self, call: Call) -> tuple[int, Any]:
        skip = int(call.query["skip"][0])
        if skip and self.server is not None:
            with self.server.lock:
                if self.server.in_flight >= self.expect:
                    self.full.set()
            self.full.wait(HOLD)
        count = min(PAGE_SIZE, self.total - skip)
        customers = [{"id": f"c{skip + i}", "segmentIds": []} for i in range(count)]
        return 200, {"customers": customers, "totalCount": self.total}


@pytest.mark.parametrize(("extra", "expect"), [("", 16), ("    concurrency: 4\n", 4)])
def test_epsilon_reads_as_many_pages_at_once_as_its_concurrency(
    tmp_path: Path, extra: str, expect: int
) -> None:
    pages = _Pages()
    with Loopback(pages) as server:
        pages.server, pages.expect = server, expect
        target = load(_epsilon_config(tmp_path, server.url, extra)).targets["eps"]
        context = ProviderContext(StateStore(tmp_path / "s.db"), tmp_path)
        provider = EpsilonProvider(
            "eps", target.settings, {"bearer_token": "b", "api_key": "k"}, context
        )

        async def read() -> int:
            try:
                remote = await asyncio.wait_for(provider.read(ReadScope()), GUARD)
            finally:
                await provider.aclose()
            return len(remote.state.customers)

        assert asyncio.run(read()) == pages.total
    assert server.peak == expect
    assert len(server.calls) == 18


def test_the_timeout_setting_is_the_deadline_of_each_request(tmp_path: Path) -> None:
    """A server that does not answer: the target's ``timeout`` (0.5 s; the retry policy's own
    is 10 minutes) ends each attempt."""
    released = threading.Event()

    def silent(call: Call) -> tuple[int, Any]:
        released.wait(GUARD)
        return 200, {"customers": [], "totalCount": 0}

    with Loopback(silent) as server:
        target = load(_epsilon_config(tmp_path, server.url, "    timeout: 0.5\n")).targets["eps"]
        policy = RetryPolicy(attempts=2, max_elapsed=60, base=0.01, cap=0.01, timeout=600)
        context = ProviderContext(StateStore(tmp_path / "s.db"), tmp_path, policy)
        provider = EpsilonProvider(
            "eps", target.settings, {"bearer_token": "b", "api_key": "k"}, context
        )

        async def read() -> None:
            try:
                await asyncio.wait_for(provider.read(ReadScope()), GUARD)
            finally:
                await provider.aclose()

        try:
            with pytest.raises(RemoteError) as info:
                asyncio.run(read())
        finally:
            released.set()
    assert "target 'eps': GET /v1/customers" in str(info.value)
    assert "no complete answer within 0.5 s (gave up after 2 attempts)" in str(info.value)
    assert len(server.calls) == 2
