"""The Talon.One provider against the sandbox: read, plan, apply, converge; request bodies
validated against ``schemas/talonone-cdp.schema.json``; the Management API's pace."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import types
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from _command import invoke
from conftest import EXAMPLE, FAST_RATE_LIMIT

from reconciler import _http
from reconciler._http import RetryPolicy
from reconciler.apply import ApplyResult, apply_target
from reconciler.exceptions import ProviderError, RemoteError, SandboxError
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import Refresh, RemoteState, Source, TargetPlan, build_target_plan
from reconciler.plan.changes import Action, LinkChange, Phase, SegmentChange
from reconciler.plan.diff import Ownership
from reconciler.providers import provider_class
from reconciler.providers.base import ProviderContext, ReadScope
from reconciler.providers.talonone import MAX_ACTIONS, TalonOneProvider, pack_link_requests
from reconciler.sandbox import (
    RATE_LIMIT_VAR,
    Sandbox,
    SandboxEndpoints,
    rate_limit_from_env,
    seed_state,
)
from reconciler.sandbox._server import TALONONE_RATE_LIMIT
from reconciler.statestore import StateStore

TARGET = "talon"
PLATFORM = "reconciler-tests"

SCHEMA: dict[str, Any] = json.loads(
    resources.files("reconciler").joinpath("schemas/talonone-cdp.schema.json").read_text()
)
#: (method, path template) → the schema definition of its body
BODY_SCHEMAS = {
    ("POST", "/cdp/audiences"): "audience",
    ("PUT", "/cdp/audiences/{}"): "audience",
    ("PUT", "/cdp/customer_profiles/audiences"): "customerProfilesAudiences",
}

Sent = list[tuple[str, str, Any]]


def validate_body(method: str, path: str, body: Any) -> None:
    """Validate one CDP request body against the contract's schema (and the action limit)."""
    template = "/cdp/audiences/{}" if path.startswith("/cdp/audiences/") else path
    name = BODY_SCHEMAS[(method, template)]
    schema = {"$ref": f"#/$defs/{name}", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(body)
    if name == "customerProfilesAudiences":
        total = sum(len(e.get("adds", ())) + len(e.get("deletes", ())) for e in body["data"])
        assert 0 < total <= MAX_ACTIONS


class Harness:
    """Builds providers on the sandbox and runs read → plan → apply, recording CDP bodies."""

    def __init__(self, sandbox: Sandbox, tmp: Path, **settings: Any) -> None:
        self.sandbox = sandbox
        self.store = StateStore(tmp / "state.db")
        self.tmp = tmp
        #: fast by default: only the pacing tests use the real 3 requests a second
        self.settings: dict[str, Any] = {"management_rps": 10_000.0, **settings}
        self.sent: Sent = []

    def provider(self, retry: RetryPolicy | None = None) -> TalonOneProvider:
        found = TalonOneProvider.sandbox_overrides(self.sandbox)
        settings = {**found[0], "platform_name": PLATFORM, **self.settings}
        provider = TalonOneProvider(
            TARGET, settings, found[1], ProviderContext(self.store, self.tmp, retry)
        )
        prefix = httpx.URL(self.sandbox.talonone_url).path

        async def capture(request: httpx.Request) -> None:
            body = json.loads(request.content) if request.content else None
            path = request.url.path.removeprefix(prefix)
            if request.method != "DELETE":
                validate_body(request.method, path, body)
            self.sent.append((request.method, path, body))

        provider._cdp.add_request_hook(capture)
        return provider

    def read(self, segments: Iterable[str] = (), refresh: Refresh = Refresh.FULL) -> RemoteState:
        provider = self.provider()

        async def go() -> RemoteState:
            try:
                return await provider.read(ReadScope(refresh, frozenset(segments)))
            finally:
                await provider.aclose()

        return asyncio.run(go())

    def plan(self, desired: State) -> TargetPlan:
        remote = self.read(desired.segments)
        ownership = Ownership(managed=self.store.managed_segments(TARGET), marked=remote.marked)
        return build_target_plan(
            TARGET, "talonone", TalonOneProvider.capabilities, desired, remote, ownership
        )

    def apply(self, plan: TargetPlan) -> ApplyResult:
        provider = self.provider()

        async def go() -> ApplyResult:
            try:
                return await apply_target(provider, plan, self.store)
            finally:
                await provider.aclose()

        return asyncio.run(go())

    def converge(self, desired: State) -> tuple[TargetPlan, ApplyResult]:
        plan = self.plan(desired)
        result = self.apply(plan)
        assert result.failures == []
        assert self.plan(desired).changes == ()
        return plan, result


def state(segments: Mapping[str, tuple[str, str]], links: Mapping[str, Iterable[str]]) -> State:
    b = StateBuilder()
    for seg_id, (name, description) in segments.items():
        b.add_segment(Segment(seg_id, name, description))
    for customer, segs in links.items():
        b.set_links(customer, segs)
    return b.build()


def remote_members(sandbox: Sandbox) -> dict[str, list[str]]:
    t1 = sandbox.state()["talonone"]
    return {a["integrationId"]: sorted(a.get("members", [])) for a in t1["audiences"]}


def remote_names(sandbox: Sandbox) -> dict[str, str]:
    return {a["integrationId"]: a["name"] for a in sandbox.state()["talonone"]["audiences"]}


@pytest.fixture
def h(fresh_sandbox: Sandbox, tmp_path: Path) -> Harness:
    return Harness(fresh_sandbox, tmp_path)


# -- units -----------------------------------------------------------------------------------
def test_registered_and_capabilities() -> None:
    assert provider_class("talonone") is TalonOneProvider
    caps = TalonOneProvider.capabilities
    assert caps.phases == {Phase.SEGMENTS, Phase.LINKS}
    assert caps.batch_size[Phase.SEGMENTS] == 1
    assert caps.batch_size[Phase.LINKS] == MAX_ACTIONS
    assert (Phase.SEGMENTS, Action.UPDATE) not in caps.unsupported


def test_pack_fills_requests_and_splits_large_customers() -> None:
    entries = [(f"c{i}", [1, 2], [3]) for i in range(700)] + [("big", list(range(10, 1510)), [])]
    requests = pack_link_requests(entries)
    sizes = [sum(len(a) + len(d) for _, a, d in r) for r in requests]
    assert sizes == [1000, 1000, 1000, 600]
    for r in requests:
        keys = [k for k, _, _ in r]
        assert len(keys) == len(set(keys))
    # every action sent once
    sent = sorted((k, x) for r in requests for k, a, d in r for x in (*a, *d))
    want = sorted((k, x) for k, a, d in entries for x in (*a, *d))
    assert sent == want
    assert pack_link_requests([]) == []
    assert pack_link_requests([("c", [], [])]) == []


def test_missing_management_url_is_refused(tmp_path: Path) -> None:
    ctx = ProviderContext(StateStore(tmp_path / "s.db"), tmp_path)
    creds = {"api_key": "k", "management_key": "m"}
    with pytest.raises(ProviderError, match="management_url"):
        TalonOneProvider("t", {"platform_name": "p"}, creds, ctx)
    p = TalonOneProvider("t", {"destination_host": "acme.europe-west1.talon.one"}, creds, ctx)
    assert str(p._management._client.base_url) == "https://acme.europe-west1.talon.one"
    asyncio.run(p.aclose())


# -- against the sandbox ---------------------------------------------------------------------
def test_create_link_and_converge(h: Harness) -> None:
    desired = state(
        {"vip": ("VIP", "Top customers"), "new": ("Newcomers", "")},
        {"c1": ["vip"], "c2": ["vip", "new"], "c3": ["new"]},
    )
    plan, _ = h.converge(desired)
    assert plan.counts.create == 2
    assert plan.counts.links_add == 4
    assert remote_members(h.sandbox) == {"vip": ["c1", "c2"], "new": ["c2", "c3"]}
    assert remote_names(h.sandbox) == {"vip": "VIP", "new": "Newcomers"}
    link_requests = [s for s in h.sent if s[1] == "/cdp/customer_profiles/audiences"]
    assert len(link_requests) == 1
    # the CDP headers went with every write
    audiences = h.sandbox.state()["talonone"]["audiences"]
    assert {a["integration"] for a in audiences} == {PLATFORM}
    # read back: names live (Talon.One has no descriptions), links live, marked as ours
    remote = h.read(desired.segments)
    assert {k: s.name for k, s in remote.state.segments.items()} == {
        k: s.name for k, s in desired.segments.items()
    }
    assert {s.description for s in remote.state.segments.values()} == {""}
    assert remote.marked == {"vip", "new"}
    assert remote.sources == {Phase.SEGMENTS: Source.LIVE, Phase.LINKS: Source.LIVE}


def test_rename_sends_put_and_description_only_change_sends_nothing(h: Harness) -> None:
    h.converge(state({"vip": ("VIP", "a")}, {"c1": ["vip"]}))
    h.sent.clear()
    plan, _ = h.converge(state({"vip": ("VIP", "b")}, {"c1": ["vip"]}))
    assert plan.changes == ()  # the platform carries no description: nothing to change
    assert h.sent == []
    assert any("descriptions are not sent" in w and "vip" in w for w in plan.caveats)
    plan, _ = h.converge(state({"vip": ("Very Important", "b")}, {"c1": ["vip"]}))
    assert h.sent == [
        ("PUT", "/cdp/audiences/vip", {"audienceId": "vip", "audienceName": "Very Important"})
    ]
    assert remote_names(h.sandbox) == {"vip": "Very Important"}


def test_delete_drops_links_and_removes_audience(h: Harness) -> None:
    h.converge(state({"a": ("A", ""), "b": ("B", "")}, {"c1": ["a", "b"], "c2": ["b"]}))
    h.sent.clear()
    plan, _ = h.converge(state({"a": ("A", "")}, {"c1": ["a"]}))
    kinds = [(c.phase, c.action) for c in plan.changes]
    assert (Phase.SEGMENTS, Action.DELETE) in kinds
    assert plan.counts.links_remove == 2
    assert ("DELETE", "/cdp/audiences/b", None) in h.sent
    assert remote_members(h.sandbox) == {"a": ["c1"]}
    # deleting again (a retried request) is success: 404 = already gone
    provider = h.provider()

    async def again() -> list[Any]:
        try:
            return await provider.write(
                Phase.SEGMENTS, [SegmentChange(Action.DELETE, "b", Segment("b", "B"))]
            )
        finally:
            await provider.aclose()

    assert [r.ok for r in asyncio.run(again())] == [True]


def test_create_conflict_reads_back_and_renames(h: Harness) -> None:
    seed_state(
        h.sandbox,
        {
            "talonone": {
                "audiences": [
                    {"integrationId": "vip", "name": "Old name", "integration": PLATFORM},
                ]
            }
        },
    )
    provider = h.provider()

    async def go() -> list[Any]:
        try:
            return await provider.write(
                Phase.SEGMENTS, [SegmentChange(Action.CREATE, "vip", None, Segment("vip", "VIP"))]
            )
        finally:
            await provider.aclose()

    assert [r.ok for r in asyncio.run(go())] == [True]
    assert remote_names(h.sandbox) == {"vip": "VIP"}
    sent = [(m, p) for m, p, _ in h.sent]
    assert sent == [("POST", "/cdp/audiences"), ("PUT", "/cdp/audiences/vip")]


def test_links_to_audiences_made_elsewhere_list_once(h: Harness) -> None:
    seed_state(
        h.sandbox,
        {
            "talonone": {
                "audiences": [
                    {"integrationId": f"a{i}", "name": f"A{i}", "integration": PLATFORM}
                    for i in range(3)
                ]
            }
        },
    )
    changes = [LinkChange(f"c{i}", frozenset(), frozenset({f"a{i % 3}"})) for i in range(30)]
    provider = h.provider()
    since = h.sandbox.requests()[-1]["id"] if h.sandbox.requests() else 0

    async def go() -> list[Any]:
        try:
            batches = [changes[i : i + 10] for i in range(0, 30, 10)]
            out = await asyncio.gather(*(provider.write(Phase.LINKS, b) for b in batches))
            return [r for rs in out for r in rs]
        finally:
            await provider.aclose()

    assert all(r.ok for r in asyncio.run(go()))
    lists = [r for r in h.sandbox.requests(since) if r["path"].endswith("/v1/audiences")]
    assert len(lists) == 1
    assert remote_members(h.sandbox)["a0"] == sorted(f"c{i}" for i in range(0, 30, 3))


def test_link_to_a_missing_audience_fails_alone(h: Harness) -> None:
    seed_state(h.sandbox, {"talonone": {"audiences": [{"integrationId": "a", "name": "A"}]}})
    provider = h.provider()
    changes = [
        LinkChange("c1", frozenset(), frozenset({"a"})),
        LinkChange("c2", frozenset(), frozenset({"ghost"})),
        # removing a membership of an audience that no longer exists: nothing to do
        LinkChange("c3", frozenset({"ghost"}), frozenset()),
    ]

    async def go() -> list[Any]:
        try:
            return await provider.write(Phase.LINKS, changes)
        finally:
            await provider.aclose()

    results = asyncio.run(go())
    assert [(r.key, r.ok) for r in results] == [("c1", True), ("c2", False), ("c3", True)]
    assert "ghost" in results[1].error
    assert remote_members(h.sandbox) == {"a": ["c1"]}


def test_large_batches_pack_into_full_requests(h: Harness) -> None:
    links = {f"c{i:04d}": ["a", "b"] for i in range(1500)}
    plan, result = h.converge(state({"a": ("A", ""), "b": ("B", "")}, links))
    link_requests = [s for s in h.sent if s[1] == "/cdp/customer_profiles/audiences"]
    # 3000 actions, 1000 customers per batch: 2 + 1 requests
    assert len(link_requests) == 3
    assert plan.counts.links_add == 3000
    assert result.applied == 2 + 1500


def test_read_scope_marked_and_unmanaged(h: Harness) -> None:
    seed_state(
        h.sandbox,
        {
            "talonone": {
                "audiences": [
                    {
                        "integrationId": "ours",
                        "name": "Ours",
                        "integration": PLATFORM,
                        "members": ["c1"],
                    },
                    {
                        "integrationId": "declared",
                        "name": "D",
                        "integration": "other",
                        "members": ["c2"],
                    },
                    {
                        "integrationId": "theirs",
                        "name": "T",
                        "integration": "other",
                        "members": ["c3"],
                    },
                ]
            }
        },
    )
    remote = h.read(["declared"])
    assert set(remote.state.segments) == {"ours", "declared", "theirs"}
    assert remote.marked == {"ours"}
    # members read only for what this config manages or marks as ours
    assert dict(remote.state.links) == {"c1": {"ours"}, "c2": {"declared"}}
    exports = [r for r in h.sandbox.requests() if r["path"].endswith("/export")]
    assert len(exports) == 2


def test_refresh_none_reads_the_state_store_only(h: Harness) -> None:
    desired = state({"vip": ("VIP", "x")}, {"c1": ["vip"]})
    h.converge(desired)
    h.sandbox.clear_requests()
    remote = h.read(desired.segments, Refresh.NONE)
    assert h.sandbox.requests() == []
    assert remote.state.segments == desired.segments
    assert dict(remote.state.links) == {"c1": {"vip"}}
    assert set(remote.sources.values()) == {Source.STATE_STORE}


def test_bad_credentials_are_a_provider_error(h: Harness) -> None:
    found = TalonOneProvider.sandbox_overrides(h.sandbox)
    creds = {**found[1], "api_key": "wrong"}
    provider = TalonOneProvider(
        TARGET, {**found[0], "platform_name": PLATFORM}, creds, ProviderContext(h.store, h.tmp)
    )

    async def go() -> None:
        try:
            await provider.write(
                Phase.SEGMENTS, [SegmentChange(Action.CREATE, "x", None, Segment("x", "X"))]
            )
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError, match="credentials") as info:
        asyncio.run(go())
    assert "wrong" not in str(info.value)


def _paced_read(h: Harness, monkeypatch: pytest.MonkeyPatch) -> tuple[RemoteState, list[float]]:
    """A full read of six marked audiences on a fake clock that only the limiter's sleeps
    move: the read, and when each Management API request started."""
    seed_state(
        h.sandbox,
        {
            "talonone": {
                "audiences": [
                    {
                        "integrationId": f"a{i}",
                        "name": f"A{i}",
                        "integration": PLATFORM,
                        "members": ["c"],
                    }
                    for i in range(6)
                ]
            }
        },
    )
    clock = [1000.0]
    starts: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(
        _http, "time", types.SimpleNamespace(monotonic=lambda: clock[0], time=lambda: clock[0])
    )
    provider = h.provider(RetryPolicy(sleep=fake_sleep))

    async def record(request: httpx.Request) -> None:
        starts.append(clock[0])

    provider._management.add_request_hook(record)

    async def go() -> RemoteState:
        try:
            return await provider.read(ReadScope(Refresh.FULL, frozenset()))
        finally:
            await provider.aclose()

    return asyncio.run(go()), starts


def test_management_reads_are_paced(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter spaces Management API requests by 1/rps: a fake clock, no real waiting."""
    h.settings["management_rps"] = 3.0
    remote, starts = _paced_read(h, monkeypatch)
    assert len(remote.marked) == 6
    assert len(starts) == 7  # one list, six exports
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 3 - 1e-9


@pytest.mark.parametrize("rate", [7.0, 50.0, FAST_RATE_LIMIT])
def test_the_management_pace_follows_the_sandboxs_rate(
    h: Harness, monkeypatch: pytest.MonkeyPatch, rate: float
) -> None:
    """No management_rps of the target's own: the sandbox's overrides carry its rate limit,
    and the reads are spaced by exactly 1/rate (the sandbox's bucket holds the six exports
    of a rate of 7 or more at once, so the fake clock draws no 429)."""
    h.settings.pop("management_rps")
    h.sandbox.set_rate_limit(rate)
    assert TalonOneProvider.sandbox_overrides(h.sandbox)[0]["management_rps"] == rate
    remote, starts = _paced_read(h, monkeypatch)
    assert len(remote.marked) == 6
    assert len(starts) == 7
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1 / rate] * 6)


def test_a_default_sandbox_paces_reads_as_the_platform(tmp_path: Path) -> None:
    """``--sandbox`` starts a sandbox at Talon.One's documented 3 a second: reads against it
    are paced at 3 a second, as against the platform."""
    with Sandbox(tmp_path / "remote.db") as sb:
        assert sb.talonone_rate_limit == TALONONE_RATE_LIMIT == 3.0
        assert TalonOneProvider.sandbox_overrides(sb)[0]["management_rps"] == 3.0


def test_the_local_sandbox_takes_its_rate_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RECONCILE_SANDBOX_TALONONE_RATE_LIMIT`` sets the rate of the sandbox ``--sandbox``
    starts (and of ``reconcile sandbox serve``); unset, it is the platform's 3 a second."""
    monkeypatch.delenv(RATE_LIMIT_VAR, raising=False)
    assert rate_limit_from_env() == TALONONE_RATE_LIMIT
    for text, rate in [("50", 50.0), (" 0.5 ", 0.5), ("0", 0.0), ("", TALONONE_RATE_LIMIT)]:
        monkeypatch.setenv(RATE_LIMIT_VAR, text)
        assert rate_limit_from_env() == rate
    for bad in ["fast", "-1", "nan", "inf"]:
        monkeypatch.setenv(RATE_LIMIT_VAR, bad)
        with pytest.raises(SandboxError, match=f"^{RATE_LIMIT_VAR}={bad!r}: not a number"):
            rate_limit_from_env()
    # through the command: the sandbox it starts enforces it, and the reads are paced at it
    monkeypatch.setenv(RATE_LIMIT_VAR, "7")
    started: list[float] = []
    real_init = Sandbox.__init__

    def spy(self: Sandbox, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        started.append(self.talonone_rate_limit)

    monkeypatch.setattr(Sandbox, "__init__", spy)
    config = tmp_path / "audiences.yaml"
    shutil.copy(EXAMPLE / "audiences.yaml", config)
    shutil.copytree(EXAMPLE / "data", tmp_path / "data")
    code, _, err = invoke("plan", str(config), "--sandbox", "--target", "talon")
    assert code == 0, err
    assert started == [7.0]
    monkeypatch.setenv(RATE_LIMIT_VAR, "fast")
    code, _, err = invoke("plan", str(config), "--sandbox")
    assert code == 1
    assert f"{RATE_LIMIT_VAR}='fast': not a number of requests per second" in err


def test_a_sandbox_by_url_is_asked_its_rate_once(h: Harness) -> None:
    h.sandbox.set_rate_limit(7.0)
    remote = SandboxEndpoints(h.sandbox.url)
    assert TalonOneProvider.sandbox_overrides(remote)[0]["management_rps"] == 7.0
    h.sandbox.set_rate_limit(9.0)  # asked once: the first answer holds for the run
    assert TalonOneProvider.sandbox_overrides(remote)[0]["management_rps"] == 7.0
    assert TalonOneProvider.sandbox_overrides(SandboxEndpoints(h.sandbox.url))[0] == {
        "base_url": f"{h.sandbox.url}/talonone",
        "management_url": f"{h.sandbox.url}/talonone-mgmt",
        "destination_host": "sandbox.talon.one",
        "management_rps": 9.0,
    }


def test_a_sandbox_without_a_limit_leaves_the_targets_pace(h: Harness) -> None:
    h.sandbox.set_rate_limit(0)
    assert "management_rps" not in TalonOneProvider.sandbox_overrides(h.sandbox)[0]
    assert (
        "management_rps"
        not in TalonOneProvider.sandbox_overrides(SandboxEndpoints(h.sandbox.url))[0]
    )


def test_an_unreachable_sandbox_is_paced_as_the_platform_and_fails_as_before(
    h: Harness,
) -> None:
    """A sandbox URL nothing answers: Talon.One's own 3 a second, and the read then fails
    naming the target and the host, as it does without the rate being asked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = SandboxEndpoints(f"http://127.0.0.1:{port}")
    settings, creds = TalonOneProvider.sandbox_overrides(remote)
    assert settings["management_rps"] == TALONONE_RATE_LIMIT == 3.0
    retry = RetryPolicy(connect_attempts=1, sleep=_no_sleep)
    provider = TalonOneProvider(
        TARGET,
        {**settings, "platform_name": PLATFORM},
        creds,
        ProviderContext(h.store, h.tmp, retry),
    )

    async def go() -> RemoteState:
        try:
            return await provider.read(ReadScope(Refresh.FULL, frozenset()))
        finally:
            await provider.aclose()

    with pytest.raises(RemoteError) as info:
        asyncio.run(go())
    assert str(info.value).startswith(
        f"target 'talon': GET /v1/audiences: cannot connect to 127.0.0.1:{port} "
        "(Connection refused)"
    )


async def _no_sleep(seconds: float) -> None:
    return None


def test_three_requests_a_second_draw_no_429(h: Harness) -> None:
    """At the sandbox's real 3 rps limit the provider is never refused (about 1.3 s)."""
    seed_state(
        h.sandbox,
        {
            "talonone": {
                "audiences": [
                    {"integrationId": f"a{i}", "name": f"A{i}", "integration": PLATFORM}
                    for i in range(4)
                ]
            }
        },
    )
    h.sandbox.set_rate_limit(3.0)
    h.settings["management_rps"] = 3.0
    remote = h.read()
    assert len(remote.marked) == 4
    statuses = [r["status"] for r in h.sandbox.requests() if r["group"] == "talonone-mgmt"]
    assert len(statuses) == 5
    assert 429 not in statuses


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/cdp/audiences", {"audienceId": "", "audienceName": "x"}),
        ("POST", "/cdp/audiences", {"audienceId": "x"}),
        ("PUT", "/cdp/customer_profiles/audiences", {"data": []}),
        ("PUT", "/cdp/customer_profiles/audiences", {"data": [{"adds": [1]}]}),
        (
            "PUT",
            "/cdp/customer_profiles/audiences",
            {"data": [{"customerProfileId": "c", "adds": ["vip"]}]},
        ),
    ],
)
def test_schema_refuses_what_the_contract_refuses(method: str, path: str, body: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_body(method, path, body)
