"""The same rules give the same members on DuckDB and on Spark (local mode), over the example's
customers as Parquet: every comparison operator, ``matches`` with the constructs whose meaning
differs between RE2 and Java. (The membership diff on Spark is tests/test_membership_spark.py's.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from reconciler.config import load
from reconciler.engines import DuckDBEngine, SegmentRule, SourceRef, SparkEngine
from reconciler.rules import AllOf, AnyOf, Compare, Not, Rule

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def spark(spark_engine: SparkEngine) -> SparkEngine:
    return spark_engine


@pytest.fixture(scope="session")
def duck() -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def customers(tmp_path_factory: pytest.TempPathFactory, duck: DuckDBEngine) -> SourceRef:
    path = tmp_path_factory.mktemp("spark") / "customers.parquet"
    csv = str(EXAMPLE / "data" / "customers.csv").replace("'", "''")
    duckdb.execute(
        f"COPY (SELECT * FROM read_csv('{csv}', types={{'customer_id': 'VARCHAR'}})) "
        f"TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)"
    )
    bare = SourceRef("shoppers", "customer_id", {}, path=path, format="parquet")
    return SourceRef("shoppers", "customer_id", duck.describe(bare), path=path, format="parquet")


def _c(attribute: str, op: str, value: object) -> Compare:
    return Compare(attribute, op, value, ())


#: one segment per operator (and a few combinations)
RULES: dict[str, Rule] = {
    "eq": _c("region", "eq", "west"),
    "ne": _c("loyalty_tier", "ne", "gold"),
    "lt": _c("weekly_spend_percentile", "lt", 20),
    "lte": _c("signup_date", "lte", "2019-06-30"),
    "gt": _c("value_basket_share", "gt", 0.5),
    "gte": _c("visits_per_week", "gte", 2.5),
    "in": _c("loyalty_tier", "in", ["gold", "platinum"]),
    "not_in": _c("region", "not_in", ["north", "east"]),
    "exists": _c("last_brandco_purchase_days", "exists", True),
    "missing": _c("email", "exists", False),
    "matches-anywhere": _c("email", "matches", "r1"),
    "matches-anchored": _c("email", "matches", r"^shopper\d{2}@example\.com$"),
    "matches-class": _c("customer_id", "matches", "[05]$"),
    "matches-dot-alt": _c("email", "matches", "(?:shopper7.|shopper9)9@"),
    "not-eq": Not(_c("region", "eq", "west"), ()),
    "combined": AllOf(
        (
            _c("weekly_spend_percentile", "gte", 50),
            AnyOf((_c("region", "eq", "north"), Not(_c("email", "exists", True), ())), ()),
        ),
        (),
    ),
}


def _segments() -> list[SegmentRule]:
    out = [SegmentRule(name, rule) for name, rule in RULES.items()]
    out.append(SegmentRule("in-minus-matches", RULES["in"], RULES["matches-anywhere"]))
    # the example config's own rules, as written in examples/audiences.yaml
    config = load(EXAMPLE / "audiences.yaml")
    for seg in config.segments:
        inc, exc = seg.members.include.rule, seg.members.exclude.rule
        if inc is not None:
            out.append(SegmentRule(seg.id, inc.rule, exc.rule if exc else None))
    return out


def _pairs(batches: Iterator[pa.RecordBatch]) -> set[tuple[str, str]]:
    table = pa.Table.from_batches(list(batches))
    return set(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


def test_same_members_on_duckdb_and_spark(
    spark: SparkEngine, duck: DuckDBEngine, customers: SourceRef
) -> None:
    segments = _segments()
    on_duck = _pairs(duck.members(customers, segments))
    on_spark = _pairs(spark.members(customers, segments))
    assert on_spark == on_duck
    # every segment selects someone and leaves someone out: the comparison is not vacuous
    for seg in segments:
        members = {c for c, s in on_duck if s == seg.segment_id}
        assert 0 < len(members) < 3000, seg.segment_id


def test_regex_edge_values_agree(spark: SparkEngine, duck: DuckDBEngine, tmp_path: Path) -> None:
    """Values where Java and RE2 differ unless the pattern is re-spelled: $ before a final
    newline, . against \\r, \\s against a vertical tab."""
    values = ["abc", "abc\n", "a\rc", "a\x0bc", "a c", "a\nc", "xabcx", "ABC", "a1c", ""]
    path = tmp_path / "edge.parquet"
    pq.write_table(pa.table({"id": [f"v{i}" for i in range(len(values))], "text": values}), path)
    src = SourceRef("edge", "id", {"id": "VARCHAR", "text": "VARCHAR"}, path=path, format="parquet")
    patterns = ["abc$", "^a.c$", r"a\sc", r"a\Sc", "c$", r"a\dc", r"^\w+$", "b|^$"]
    segments = [SegmentRule(f"p{i}", _c("text", "matches", p)) for i, p in enumerate(patterns)]
    assert _pairs(spark.members(src, segments)) == _pairs(duck.members(src, segments))
