"""Golden SQL per operator and dialect: the warehouse SQL that cannot run here is reviewed as
files. Regenerate with
``RECONCILE_UPDATE_GOLDEN=1 pytest tests/test_engines_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlglot")

from reconciler.engines import SegmentRule, compile_members
from reconciler.rules import OPERATORS, Compare

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = ("snowflake", "bigquery", "spark", "duckdb")
UPDATE = os.environ.get("RECONCILE_UPDATE_GOLDEN") == "1"

COLUMNS = {
    "customer_id": "VARCHAR",
    "region": "VARCHAR",
    "spend": "BIGINT",
    "share": "DOUBLE",
    "signup_date": "DATE",
    "last_seen": "TIMESTAMP",
    "email": "VARCHAR",
}

#: one comparison per operator (the table must be covered: see the test below)
CASES: dict[str, Compare] = {
    "eq": Compare("region", "eq", "north", ()),
    "ne": Compare("region", "ne", "it's", ()),
    "lt": Compare("spend", "lt", 10, ()),
    "lte": Compare("signup_date", "lte", "2020-01-31", ()),
    "gt": Compare("last_seen", "gt", "2024-05-01T10:00:00", ()),
    "gte": Compare("share", "gte", 0.4, ()),
    "in": Compare("region", "in", ["north", "south"], ()),
    "not_in": Compare("spend", "not_in", [1, 2, 3], ()),
    "exists": Compare("email", "exists", True, ()),
    "matches": Compare("email", "matches", r"^[a-z.]+\d*@example\.com$", ()),
}


def _render(sql: str, params: tuple[Any, ...]) -> str:
    return f"-- params: {json.dumps(list(params))}\n{sql}\n"


def _check(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden {path}: set RECONCILE_UPDATE_GOLDEN=1"
    assert path.read_text(encoding="utf-8") == text


def test_every_operator_has_a_case() -> None:
    assert set(CASES) == set(OPERATORS)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("op", list(CASES))
def test_operator_golden(dialect: str, op: str) -> None:
    q = compile_members(
        dialect, "shop.customers", "customer_id", COLUMNS, [SegmentRule(op, CASES[op])]
    )
    _check(GOLDEN / dialect / f"{op}.sql", _render(q.sql, q.params))


def test_matches_is_find_anywhere_in_every_dialect() -> None:
    texts = {d: (GOLDEN / d / "matches.sql").read_text() for d in DIALECTS}
    assert "REGEXP_INSTR(" in texts["snowflake"]
    assert "REGEXP_LIKE" not in texts["snowflake"]
    assert "REGEXP_CONTAINS(" in texts["bigquery"]
    assert "RLIKE" in texts["spark"]
    assert "REGEXP_MATCHES(" in texts["duckdb"].upper()
    assert "~" not in texts["duckdb"]
    # Java's $ stops before a final newline: Spark gets \z, the others keep $
    assert "\\\\z" in texts["spark"].splitlines()[0]
    assert "$" in texts["snowflake"].splitlines()[0]
