"""Resolution to desired State, checked against an independent evaluation; explain."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.config import explain, load, resolve
from reconciler.exceptions import ConfigError
from reconciler.model import State

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "audiences.yaml"


def _expected_example() -> dict[str, set[str]]:
    """The example's segments evaluated row by row with plain Python comparisons."""
    rows = list(csv.DictReader((ROOT / "examples/data/customers.csv").open(encoding="utf-8")))
    vip = {line.strip() for line in (ROOT / "examples/data/vip.txt").read_text().splitlines()}

    def num(row: dict[str, str], key: str) -> float | None:
        return float(row[key]) if row[key] != "" else None

    out: dict[str, set[str]] = {
        k: set()
        for k in ("general-segment-1", "general-segment-2", "general-segment-3", "custom-segment-1")
    }
    for row in rows:
        cid = row["customer_id"]
        spend = num(row, "weekly_spend_percentile")
        if spend is not None and spend >= 85:
            out["general-segment-1"].add(cid)
        share = num(row, "value_basket_share")
        if share is not None and share >= 0.4 and row["loyalty_tier"] != "platinum":
            out["general-segment-2"].add(cid)
        visits = num(row, "visits_per_week")
        if visits is not None and visits >= 1:
            out["general-segment-3"].add(cid)
        recency = num(row, "last_brandco_purchase_days")
        if recency is not None and recency <= 30 and row["email"] != "" and cid != "cust_00027":
            out["custom-segment-1"].add(cid)
    out["general-segment-1"] |= vip
    return out


@pytest.fixture(scope="module")
def example() -> tuple[Any, dict[str, State]]:
    config = load(EXAMPLE)
    return config, resolve(config)


def test_example_matches_an_independent_evaluation(example: tuple[Any, dict[str, State]]) -> None:
    _, states = example
    expected = _expected_example()
    assert all(len(ids) > 50 for ids in expected.values())
    eps = states["epsilon"]
    assert eps.members_by_segment() == expected
    talon = states["talon"]
    assert talon.members_by_segment() == {
        k: v for k, v in expected.items() if k != "custom-segment-1"
    }
    for state in (eps, talon):
        assert state.customers == frozenset(state.links)
        assert all(state.links.values())


def test_example_segments_and_access(example: tuple[Any, dict[str, State]]) -> None:
    _, states = example
    eps, talon = states["epsilon"], states["talon"]
    assert list(eps.segments) == [
        "general-segment-1",
        "general-segment-2",
        "general-segment-3",
        "custom-segment-1",
    ]
    assert eps.segments["general-segment-2"].name == "Value Shoppers"
    assert eps.segments["general-segment-3"].description == (
        "Shoppers that shop every week on average."
    )
    assert dict(eps.access) == {
        "custom-segment-1": frozenset(
            {"a5166fc4-f874-4741-a721-c05ffd9941a5", "92f4b91f-0089-4102-b13b-6015da8e0174"}
        )
    }
    assert "custom-segment-1" not in talon.segments
    assert dict(talon.access) == {}


def test_membership_sets_are_shared(example: tuple[Any, dict[str, State]]) -> None:
    _, states = example
    links = states["epsilon"].links
    assert len({id(s) for s in links.values()}) == len(set(links.values()))
    assert len(set(links.values())) <= 16


def test_target_selection(example: tuple[Any, dict[str, State]]) -> None:
    config, _ = example
    only = resolve(config, ["talon"])
    assert list(only) == ["talon"]
    with pytest.raises(ConfigError, match="unknown target nope"):
        resolve(config, ["nope"])


def test_explain_names_the_rule_file_and_ids(example: tuple[Any, dict[str, State]]) -> None:
    config, states = example
    reasons = explain(config, "cust_00027")
    text = [(r.segment_id, r.via, r.detail, r.excluded) for r in reasons]
    assert (
        "custom-segment-1",
        "rule",
        "shoppers: last_brandco_purchase_days <= 30 and email exists",
        False,
    ) in text
    assert ("custom-segment-1", "ids", "listed in segments[3].members.exclude.ids[0]", True) in text
    assert "cust_00027" not in states["epsilon"].members("custom-segment-1")
    excluded = next(r for r in reasons if r.excluded)
    assert excluded.location == config.location(("segments", 3, "members", "exclude", "ids", 0))
    assert excluded.targets == ("epsilon",)

    vip = explain(config, "cust_00012")
    file_reason = next(r for r in vip if r.via == "file")
    assert file_reason.segment_id == "general-segment-1"
    assert file_reason.detail == "data/vip.txt"
    assert file_reason.targets == ("epsilon", "talon")
    assert explain(config, "nobody") == []


def _config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    base = {
        "version": 1,
        "targets": {
            "a": {"type": "epsilon-feed", "directory": "a"},
            "b": {"type": "epsilon-feed", "directory": "b"},
        },
    }
    path = tmp_path / "audiences.yaml"
    path.write_text(yaml.safe_dump({**base, **doc}, sort_keys=False), encoding="utf-8")
    return path


def test_ids_files_and_exclusions(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("# comment\nx1\r\n\nx2\nx3  \n")
    (tmp_path / "more.csv").write_text("customer,other\nx4,1\nx5,2\n")
    (tmp_path / "people.csv").write_text("id,age\nx1,30\nx6,70\nx7,20\n")
    path = _config(
        tmp_path,
        {
            "customer_sources": {"people": {"path": "people.csv", "id_column": "id"}},
            "segments": [
                {
                    "id": "s1",
                    "name": "S1",
                    "targets": ["a"],
                    "members": {
                        "ids": ["x0", "x1"],
                        "files": ["ids.txt", {"path": "more.csv", "column": "customer"}],
                        "rule": {"attribute": "age", "gte": 65},
                        "exclude": {
                            "ids": ["x2"],
                            "files": [{"path": "more.csv", "column": "customer"}],
                            "rule": {"attribute": "age", "lt": 25},
                        },
                    },
                },
                {"id": "s2", "name": "S2", "members": {"ids": ["x1", "x7"]}},
                {"id": "s3", "name": "S3"},
            ],
        },
    )
    config = load(path)
    states = resolve(config)
    a, b = states["a"], states["b"]
    assert a.members_by_segment() == {"s1": {"x0", "x1", "x3", "x6"}, "s2": {"x1", "x7"}}
    assert b.members_by_segment() == {"s2": {"x1", "x7"}}
    assert list(a.segments) == ["s1", "s2", "s3"]
    assert list(b.segments) == ["s2", "s3"]
    assert a.links["x1"] == frozenset({"s1", "s2"})
    assert b.customers == frozenset({"x1", "x7"})

    reasons = {(r.segment_id, r.via, r.excluded) for r in explain(config, "x4")}
    assert reasons == {("s1", "file", False), ("s1", "file", True)}
    assert {(r.via, r.detail) for r in explain(config, "x6")} == {("rule", "people: age >= 65")}


def test_more_than_64_segments(tmp_path: Path) -> None:
    segments: list[dict[str, Any]] = [
        {"id": f"s{i:03d}", "name": f"S{i}", "members": {"ids": [f"c{i % 7}", "all"]}}
        for i in range(150)
    ]
    segments[140]["members"]["exclude"] = {"ids": ["all"]}
    segments[3]["targets"] = ["b"]
    state = resolve(load(_config(tmp_path, {"segments": segments})))
    a, b = state["a"], state["b"]
    assert a.links["all"] == frozenset(f"s{i:03d}" for i in range(150) if i not in (3, 140))
    assert a.links["c0"] == frozenset(f"s{i:03d}" for i in range(0, 150, 7))
    assert b.links["c3"] == frozenset(f"s{i:03d}" for i in range(3, 150, 7))
    assert b.links["all"] == frozenset(f"s{i:03d}" for i in range(150) if i != 140)
    assert "s003" not in a.segments
    assert len(b.segments) == 150


def test_invalid_ids_in_data_are_located(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("good\nbad id\n")
    (tmp_path / "people.csv").write_text('id,age\n"",70\nx1,10\n')
    path = _config(
        tmp_path,
        {
            "customer_sources": {"people": {"path": "people.csv", "id_column": "id"}},
            "segments": [
                {"id": "s1", "name": "S1", "members": {"files": ["ids.txt"]}},
                {"id": "s2", "name": "S2", "members": {"rule": {"attribute": "age", "gt": 60}}},
            ],
        },
    )
    config = load(path)
    with pytest.raises(ConfigError) as info:
        resolve(config)
    messages = sorted(f"{p.path}: {p.message}" for p in info.value.problems)
    assert messages == [
        "segments[0].members.files[0]: ids.txt:2: customer id 'bad id' "
        "contains whitespace or a control character",
        "segments[1].members: invalid member, an empty customer id",
    ]
