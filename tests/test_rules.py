"""Rules: every operator evaluated over a small table, the SQL it compiles to, how it reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.config import load, resolve
from reconciler.rules import (
    DUCKDB,
    OPERATORS,
    AllOf,
    AnyOf,
    Compare,
    Not,
    compile_rule,
    render_rule,
)

DATA = Path(__file__).parent / "configs" / "data" / "shoppers.csv"


def _members(tmp_path: Path, rule: dict[str, Any], fmt: str = "csv") -> list[str]:
    shutil.copy(DATA, tmp_path / "shoppers.csv")
    source = {"path": "shoppers.csv", "id_column": "customer_id"}
    if fmt != "csv":
        import duckdb

        target = tmp_path / f"shoppers.{fmt}"
        option = "(FORMAT json)" if fmt == "jsonl" else "(FORMAT parquet)"
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT * FROM read_csv('{tmp_path / 'shoppers.csv'}')) TO '{target}' {option}"
        ).fetchall()
        con.close()
        source = {"path": target.name, "id_column": "customer_id"}
    doc = {
        "version": 1,
        "targets": {"feed": {"type": "epsilon-feed", "directory": "out"}},
        "customer_sources": {"shoppers": source},
        "segments": [{"id": "s", "name": "S", "members": {"rule": rule}}],
    }
    path = tmp_path / "audiences.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    state = resolve(load(path))["feed"]
    return sorted(state.members("s"))


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"attribute": "spend", "eq": 90}, ["c001"]),
    ({"attribute": "spend", "ne": 90}, ["c002", "c003", "c004", "c005"]),
    ({"attribute": "spend", "lt": 40}, ["c004"]),
    ({"attribute": "spend", "lte": 40}, ["c002", "c004"]),
    ({"attribute": "spend", "gt": 85}, ["c001", "c005"]),
    ({"attribute": "spend", "gte": 85}, ["c001", "c003", "c005"]),
    ({"attribute": "visits", "gte": 1.5}, ["c001", "c005", "c006"]),
    ({"attribute": "tier", "in": ["A", "B"]}, ["c003", "c004"]),
    ({"attribute": "tier", "not_in": ["A", "B"]}, ["c001", "c002", "c005"]),
    ({"attribute": "email", "exists": True}, ["c001", "c003", "c004", "c005", "c006"]),
    ({"attribute": "email", "exists": False}, ["c002"]),
    ({"attribute": "name", "matches": "^Jo"}, ["c001", "c003", "c005"]),
    ({"attribute": "name", "matches": "an"}, ["c003"]),
    ({"attribute": "joined", "lt": "2021-01-01"}, ["c003", "c005"]),
    ({"attribute": "active", "eq": True}, ["c001", "c003", "c005"]),
    ({"attribute": "region", "ne": "north"}, ["c002", "c004", "c005"]),
    ({"not": {"attribute": "region", "eq": "north"}}, ["c002", "c003", "c004", "c005"]),
    (
        {"all": [{"attribute": "spend", "gte": 80}, {"attribute": "region", "in": ["north"]}]},
        ["c001"],
    ),
    (
        {"any": [{"attribute": "tier", "eq": "gold"}, {"attribute": "visits", "lt": 0.1}]},
        ["c001", "c004"],
    ),
    (
        {
            "all": [
                {"attribute": "spend", "gte": 85},
                {
                    "any": [
                        {"attribute": "visits", "gte": 1},
                        {"not": {"attribute": "region", "eq": "north"}},
                    ]
                },
                {"attribute": "email", "exists": True},
                {"attribute": "name", "matches": "^Jo"},
            ]
        },
        ["c001", "c003", "c005"],
    ),
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_operator(tmp_path: Path, rule: dict[str, Any], expected: list[str]) -> None:
    assert _members(tmp_path, rule) == expected


def test_every_operator_and_combinator_is_covered() -> None:
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            used.update(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk([c[0] for c in CASES])
    assert set(OPERATORS) | {"all", "any", "not"} <= used


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_source_formats(tmp_path: Path, fmt: str) -> None:
    assert _members(tmp_path, {"attribute": "spend", "gte": 85}, fmt) == ["c001", "c003", "c005"]


def test_compiles_to_one_parameterised_predicate() -> None:
    rule = AllOf(
        (
            Compare("spend", "gte", 85, ()),
            AnyOf(
                (Compare("tier", "in", ["A", "B"], ()), Not(Compare('we"ird', "eq", "x", ()), ())),
                (),
            ),
            Compare("email", "exists", True, ()),
            Compare("joined", "lt", "2021-01-01", ()),
            Compare("name", "matches", "^Jo", ()),
        ),
        (),
    )
    columns = {
        "spend": "BIGINT",
        "tier": "VARCHAR",
        'we"ird': "VARCHAR",
        "email": "VARCHAR",
        "joined": "DATE",
        "name": "VARCHAR",
    }
    sql, params = compile_rule(rule, columns, DUCKDB)
    assert sql == (
        '(COALESCE("spend" >= ?, FALSE) AND (COALESCE("tier" IN (?, ?), FALSE) OR '
        '(NOT COALESCE("we""ird" = ?, FALSE))) AND ("email" IS NOT NULL) AND '
        'COALESCE("joined" < CAST(? AS DATE), FALSE) AND '
        'COALESCE(regexp_matches("name", ?), FALSE))'
    )
    assert params == [85, "A", "B", "x", "2021-01-01", "^Jo"]
    assert render_rule(rule) == (
        'spend >= 85 and (tier in ["A", "B"] or not we"ird = "x") and email exists '
        'and joined < "2021-01-01" and name matches /^Jo/'
    )
    assert render_rule(Compare("email", "exists", False, ())) == "email is missing"
