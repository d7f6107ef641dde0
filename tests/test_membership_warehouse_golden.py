"""Golden SQL of the membership diff in the warehouses: the statements the Snowflake diff runs
(:mod:`reconciler.membership.warehouse_sql`), and the same statements compiled for BigQuery,
reviewed as files. Regenerate with
``RECONCILE_UPDATE_GOLDEN=1 pytest tests/test_membership_warehouse_golden.py``.

A change of the diff the product runs changes these files: the test below fails until they are
regenerated (and reviewed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("sqlglot")

from reconciler.config._model import SnowflakeSettings
from reconciler.membership.snowflake import snapshot_table
from reconciler.membership.warehouse_sql import (
    BIGQUERY_DIFF,
    SNOWFLAKE_DIFF,
    RuleSource,
    Spelling,
    Statements,
)
from reconciler.rules import AllOf, Compare, Not, Query

GOLDEN = Path(__file__).parent / "golden" / "diff"
UPDATE = os.environ.get("RECONCILE_UPDATE_GOLDEN") == "1"
SPELLINGS = {"snowflake": SNOWFLAKE_DIFF, "bigquery": BIGQUERY_DIFF}

COLUMNS = {
    "customer_id": "VARCHAR",
    "region": "VARCHAR",
    "spend": "BIGINT",
    "email": "VARCHAR",
}
#: two segments over one table, the second with an excluding rule, and contributions computed
#: here (ids, files) beside them
SOURCES = [
    RuleSource(
        "crm.shop.customers",
        "customer_id",
        COLUMNS,
        [
            ("high-spend", False, Compare("spend", "gte", 100, ())),
            (
                "north-mail",
                False,
                AllOf(
                    (
                        Compare("region", "eq", "north", ()),
                        Compare("email", "matches", r"@example\.com$", ()),
                    ),
                    (),
                ),
            ),
            ("north-mail", True, Not(Compare("email", "exists", True, ()), ())),
        ],
    )
]
SETTINGS = SnowflakeSettings(account="acme", user="reconciler", password="${SNOWFLAKE_PASSWORD}")
SNAPSHOT = snapshot_table(SETTINGS, Path("epsilon-1a2b3c4d.4242-1700000000000000000.parquet"))


def _statements(spelling: Spelling) -> dict[str, Query]:
    s = Statements(spelling)
    return {
        "wanted": s.wanted(SOURCES, local=True),
        "wanted-nothing": s.wanted([], local=False),
        "snapshot-table": s.snapshot_table(SNAPSHOT),
        "last": s.last(SNAPSHOT, overlay=True),
        "last-no-overlay": s.last(SNAPSHOT, overlay=False),
        "lists": s.lists(),
        "counts": s.counts(),
        "changed": s.changed(),
        "pairs": s.pairs(),
    }


def _render(q: Query) -> str:
    return f"-- params: {json.dumps(list(q.params))}\n{q.sql}\n"


def _check(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden {path}: set RECONCILE_UPDATE_GOLDEN=1"
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: regenerate and review"


@pytest.mark.parametrize("dialect", list(SPELLINGS))
@pytest.mark.parametrize("name", list(_statements(SNOWFLAKE_DIFF)))
def test_diff_golden(dialect: str, name: str) -> None:
    _check(GOLDEN / dialect / f"{name}.sql", _render(_statements(SPELLINGS[dialect])[name]))


def test_no_stale_golden_files() -> None:
    names = set(_statements(SNOWFLAKE_DIFF))
    for dialect in SPELLINGS:
        assert {p.stem for p in (GOLDEN / dialect).glob("*.sql")} == names


def test_the_dialects_spell_what_differs() -> None:
    snow = {k: q.sql for k, q in _statements(SNOWFLAKE_DIFF).items()}
    big = {k: q.sql for k, q in _statements(BIGQUERY_DIFF).items()}
    assert "LISTAGG(" in snow["wanted"]
    assert "WITHIN GROUP (ORDER BY" in snow["wanted"]
    assert "REGEXP_INSTR(" in snow["wanted"]
    assert "STRING_AGG(seg, CODE_POINTS_TO_STRING([31])" in big["wanted"]
    assert "REGEXP_CONTAINS(" in big["wanted"]
    assert '"RECONCILER"."RECONCILE_SNAPSHOT_EPSILON_1A2B3C4D__4242_' in snow["last"]
    assert "`RECONCILER`.`RECONCILE_SNAPSHOT_EPSILON_1A2B3C4D__4242_" in big["last"]
    # the same parameters, in the same order, on both
    assert [q.params for q in _statements(SNOWFLAKE_DIFF).values()] == [
        q.params for q in _statements(BIGQUERY_DIFF).values()
    ]


def golden_sql(dialect: str, name: str) -> str:
    """The statement of a golden file, as it runs (its parameters line dropped)."""
    text = (GOLDEN / dialect / f"{name}.sql").read_text(encoding="utf-8")
    return text.split("\n", 1)[1].rstrip("\n")
