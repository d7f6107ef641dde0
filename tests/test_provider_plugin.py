"""A platform shipped outside this package: a provider module written into a folder on the
Python path, named in the YAML by dotted path (``type: toy_lists:ToyListsProvider``).

It declares its settings and capabilities and fills the read and write hooks, nothing more: the
config validates its settings from its declaration, and a plan, an apply and a second plan (zero
changes) run against a tiny JSON server on 127.0.0.1 (``hostile/loopback.py``). ``refresh:
none`` and the HTTP status of a refused write are the base class's, not the provider's.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile.loopback import Call, Loopback

from reconciler.config import load
from reconciler.exceptions import ConfigError
from reconciler.manager import Reconciler
from reconciler.plan import Refresh
from reconciler.statestore import StateStore

MODULE = "toy_lists"
GUARD = 60.0

PROVIDER = '''
"""Toy lists: named lists of customers behind a JSON API (a platform outside the package)."""

from reconciler.plan.changes import Action, LinkChange, Phase, SegmentChange
from reconciler.model import Segment
from reconciler.plan import Capabilities
from reconciler.providers.base import ItemResult, Provider
from reconciler.providers.settings import credential, http_settings, text, url


class ToyListsProvider(Provider):
    type = "toy-lists"
    title = "Toy lists"
    capabilities = Capabilities(
        batch_size={Phase.SEGMENTS: 1, Phase.LINKS: 1},
        phases=frozenset({Phase.SEGMENTS, Phase.LINKS}),
        segment_fields=("name",),
        concurrency=3,
        offline_from_store=True,
    )
    settings_spec = (
        url("base_url", "Base URL", "Where the lists API answers.", required=True),
        text("owner", "Owner", "Recorded on every list.", default="reconciler", minLength=1),
        credential("token", "Token", "Bearer token of the lists API."),
        *http_settings(capabilities.concurrency),
    )

    def __init__(self, name, settings, credentials, context):
        super().__init__(name, settings, credentials, context)
        self.owner = settings["owner"]
        self._api = self.http(
            settings["base_url"], {"Authorization": f"Bearer {credentials['token']}"}
        )

    async def aclose(self):
        await self._api.aclose()

    async def read_live(self, scope, known, last):
        lists = (await self._api.request("GET", "/lists", expect=(200,))).json()["lists"]
        for item in lists:
            known.add_segment(Segment(item["id"], item["name"]))
        for item in lists:
            for customer in item["members"]:
                known.add_link(customer, item["id"])
        return frozenset(i["id"] for i in lists if i["owner"] == self.owner)

    async def write_batch(self, phase, changes):
        for change in changes:
            match change:
                case SegmentChange(action=Action.CREATE | Action.UPDATE, after=Segment() as seg):
                    body = {"name": seg.name, "owner": self.owner}
                    await self._api.request("PUT", f"/lists/{seg.id}", json=body)
                case SegmentChange(action=Action.DELETE, key=key):
                    await self._api.request("DELETE", f"/lists/{key}")
                case LinkChange(key=customer, after=lists):
                    body = {"lists": sorted(lists)}
                    await self._api.request("PUT", f"/members/{customer}", json=body)
        return [ItemResult(c.key, True) for c in changes]
'''


class ToyPlatform:
    """The lists API, in memory: ``{id: {name, owner, members}}``; a customer whose id starts
    with ``bad`` is refused with 422."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[str, Any]] = {}

    def __call__(self, call: Call) -> tuple[int, Any]:
        if call.headers.get("authorization") != "Bearer toy-token-0123456789":
            return 401, {"message": "who are you"}
        parts = call.path.strip("/").split("/")
        if call.method == "GET" and parts == ["lists"]:
            return 200, {
                "lists": [
                    {
                        "id": k,
                        "name": v["name"],
                        "owner": v["owner"],
                        "members": sorted(v["members"]),
                    }
                    for k, v in sorted(self.lists.items())
                ]
            }
        if call.method == "PUT" and parts[0] == "lists":
            entry = self.lists.setdefault(parts[1], {"members": set()})
            entry.update(name=call.body["name"], owner=call.body["owner"])
            return 200, {}
        if call.method == "DELETE" and parts[0] == "lists":
            self.lists.pop(parts[1], None)
            return 204, {}
        if call.method == "PUT" and parts[0] == "members":
            customer = parts[1]
            if customer.startswith("bad"):
                return 422, {"message": f"customer {customer} is not allowed"}
            for key, entry in self.lists.items():
                (entry["members"].add if key in call.body["lists"] else entry["members"].discard)(
                    customer
                )
            return 200, {}
        return 404, {"message": "no such route"}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("plugins")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(PROVIDER))
    (folder / "not_a_provider.py").write_text("class Thing:\n    pass\n")
    (folder / "broken_plugin.py").write_text("import a_module_that_does_not_exist\n")
    (folder / "half_plugin.py").write_text(
        "from reconciler.providers.base import Provider\n\n\n"
        "class Half(Provider):\n    async def read_live(self, scope, known, last):\n"
        "        return frozenset()\n"
    )
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def toy() -> Iterator[tuple[ToyPlatform, Loopback]]:
    platform = ToyPlatform()
    with Loopback(platform) as server:
        yield platform, server


def write_config(folder: Path, target: str, members: str = "[c1, c2]") -> Path:
    path = folder / "audiences.yaml"
    path.write_text(
        "version: 1\ntargets:\n  lists:\n"
        + textwrap.indent(textwrap.dedent(target).strip() + "\n", "    ")
        + f"""segments:
  - id: seg-a
    name: Alpha
    members:
      ids: {members}
  - id: seg-b
    name: Beta
    members:
      ids: [c2]
"""
    )
    return path


def toy_target(url: str, extra: str = "") -> str:
    return f"type: {MODULE}:ToyListsProvider\nbase_url: {url}\ntoken: ${{TOY_TOKEN}}\n{extra}"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, GUARD))


def test_a_platform_outside_the_package_plans_applies_and_converges(
    plugin_path: Path,
    toy: tuple[ToyPlatform, Loopback],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform, server = toy
    monkeypatch.setenv("TOY_TOKEN", "toy-token-0123456789")
    config = load(write_config(tmp_path, toy_target(server.url)))
    # the settings come from the provider's own declaration: its defaults included
    assert dict(config.targets["lists"].settings) == {
        "base_url": server.url,
        "owner": "reconciler",
        "concurrency": 3,
        "timeout": None,
    }
    rec = Reconciler(config, StateStore(tmp_path / "state.db"))
    first = run(rec.plan())
    assert sorted((str(c.phase), c.key) for c in first.target("lists").changes) == [
        ("links", "c1"),
        ("links", "c2"),
        ("segments", "seg-a"),
        ("segments", "seg-b"),
    ]
    results = run(rec.apply(first))
    assert all(r.ok for r in results), results
    assert platform.lists == {
        "seg-a": {"name": "Alpha", "owner": "reconciler", "members": {"c1", "c2"}},
        "seg-b": {"name": "Beta", "owner": "reconciler", "members": {"c2"}},
    }
    again = Reconciler(load(write_config(tmp_path, toy_target(server.url))), rec.store)
    assert not run(again.plan()).has_changes
    # refresh: none is served from the state store by the base class: no request at all
    before = len(server.calls)
    offline = run(again.plan(Refresh.NONE))
    assert not offline.has_changes
    assert len(server.calls) == before


def test_an_error_answer_fails_the_item_it_concerns(
    plugin_path: Path,
    toy: tuple[ToyPlatform, Loopback],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider maps no status itself: the base class fails the customer refused (422)
    and applies the rest."""
    platform, server = toy
    monkeypatch.setenv("TOY_TOKEN", "toy-token-0123456789")
    cfg = write_config(tmp_path, toy_target(server.url), members="[c1, bad1]")
    rec = Reconciler(load(cfg), StateStore(tmp_path / "state.db"))
    (result,) = run(rec.apply(run(rec.plan())))
    assert [f.key for f in result.failures] == ["bad1"], result.failures
    assert "HTTP 422" in result.failures[0].error, result.failures[0].error
    assert "customer bad1 is not allowed" in result.failures[0].error
    assert platform.lists["seg-a"]["members"] == {"c1"}


def _problems(tmp_path: Path, target: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write_config(tmp_path, target))
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("type_", "message"),
    [
        (
            "no_such_plugin:Provider",
            "cannot import module 'no_such_plugin': ModuleNotFoundError",
        ),
        (
            "broken_plugin:Provider",
            "cannot import module 'broken_plugin': ModuleNotFoundError: No module named "
            "'a_module_that_does_not_exist'",
        ),
        (f"{MODULE}:NoSuchProvider", f"module '{MODULE}' has no class 'NoSuchProvider'"),
        ("half_plugin:Half", "half_plugin:Half does not implement write_batch"),
        (
            "not_a_provider:Thing",
            "not_a_provider:Thing is not a subclass of reconciler.providers.base.Provider",
        ),
    ],
)
def test_a_dotted_type_that_names_no_provider_is_located(
    plugin_path: Path, tmp_path: Path, type_: str, message: str
) -> None:
    (problem,) = _problems(tmp_path, f"type: {type_}\n")
    assert problem.startswith(f"{tmp_path / 'audiences.yaml'}:4:11: targets.lists.type: "), problem
    assert message in problem, problem


def test_a_dotted_type_is_checked_against_its_own_declaration(
    plugin_path: Path, tmp_path: Path
) -> None:
    target = (
        f"type: {MODULE}:ToyListsProvider\n"
        "base_url: ftp://lists.example\n"
        "token: literal-secret-value\n"
        "owner: ''\n"
        "concurency: 4\n"
    )
    problems = _problems(tmp_path, target)
    where = f"{tmp_path / 'audiences.yaml'}"
    assert problems == [
        f'{where}:5:15: targets.lists.base_url: "ftp://lists.example" is not an http(s) URL',
        f"{where}:6:12: targets.lists.token: credentials must be an ${{ENV_VAR}} or "
        "${file:PATH} reference, not a literal value",
        f"{where}:7:12: targets.lists.owner: must not be empty",
        f"{where}:8:5: targets.lists.concurency: unknown field concurency; did you mean "
        "concurrency?",
    ], problems
    assert "literal-secret-value" not in "\n".join(problems)
    missing = _problems(tmp_path, f"type: {MODULE}:ToyListsProvider\ntoken: ${{T}}\n")
    assert missing == [f"{where}:4:5: targets.lists: missing required field base_url"], missing
