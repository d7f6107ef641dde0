"""Customer sources on an engine: ``engine: duckdb | spark``, ``path`` or ``table``, the ``spark``
section; every mistake located (an unreachable master and a missing table included), and the
example's rules resolving to the same States whichever engine reads the customers."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from reconciler.config import Config, explain, load, resolve
from reconciler.config._sources import bounded, reach
from reconciler.exceptions import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONFIGS = Path(__file__).parent / "configs" / "engines"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples"

needs_spark = pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None, reason="pyspark (the spark extra) not installed"
)
#: the session every Spark test shares: the settings of tests/test_engines_spark.py
SPARK_SECTION = (
    "spark:\n"
    "  master: local[2]\n"
    "  conf: {spark.sql.shuffle.partitions: 2, spark.default.parallelism: 2}\n"
)


@pytest.fixture(scope="session")
def spark_session(spark_engine: Any) -> SparkSession:
    """The worker's local Spark session; configs naming ``local[2]`` reuse it."""
    session: SparkSession = spark_engine.session
    return session


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    prefix = f"{path}:"
    assert all(str(p).startswith(prefix) for p in info.value.problems)
    return [str(p)[len(prefix) :] for p in info.value.problems]


# --- the schema and the checks that need no Spark ------------------------------------------


def test_path_and_table_exactly_one() -> None:
    assert _problems(CONFIGS / "source-path-and-table.yaml") == [
        "5:60: customer_sources.both.table: give path or table, not both",
        "6:12: customer_sources.neither: missing required field path or table "
        "(exactly one of them)",
    ]


def test_a_table_needs_spark_and_no_format() -> None:
    assert _problems(CONFIGS / "duckdb-table.yaml") == [
        "5:21: customer_sources.shoppers.table: a table needs engine: spark or snowflake "
        "(DuckDB reads files: give a path)",
        "6:55: customer_sources.formatted.format: format applies to a path, not a table",
    ]


def test_bad_spark_section() -> None:
    assert _problems(CONFIGS / "bad-spark-master.yaml") == [
        '7:11: spark.master: "yarn" is not a Spark master: use local[*], local[N], '
        "sc://host:port (Spark Connect) or spark://host:port",
        "8:33: spark.conf['spark.executor.memory']: expected a string or a number or true or "
        "false, got a list",
        "9:12: spark.timeout: 0 is less than or equal to the minimum of 0",
    ]


def test_duckdb_is_the_default_engine() -> None:
    config = load(EXAMPLE / "audiences.yaml")
    source = config.customer_sources["shoppers"]
    assert (source.engine, source.table, config.spark) == ("duckdb", None, None)


def test_missing_local_path_is_located_without_starting_spark() -> None:
    assert _problems(CONFIGS / "spark-missing-path.yaml") == [
        "5:35: customer_sources.shoppers.path: file or folder not found: ../data/nope.parquet",
    ]


@needs_spark
def test_unreachable_spark_connect_fails_fast() -> None:
    started = time.monotonic()
    assert _problems(CONFIGS / "spark-unreachable-master.yaml") == [
        "6:13: customer_sources.shoppers.engine: cannot reach the Spark master "
        "sc://127.0.0.1:1 (spark.master, line 10): 127.0.0.1:1: Connection refused",
    ]
    assert time.monotonic() - started < 5


def test_reach_and_bounded() -> None:
    assert reach("local[*]", 1.0) is None
    assert reach("sc://127.0.0.1:99999", 1.0) is not None  # not a port
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        bounded(lambda: time.sleep(5), 0.2)
    assert time.monotonic() - started < 2
    with pytest.raises(ZeroDivisionError):
        bounded(lambda: 1 // 0, 1.0)
    assert bounded(lambda: 42, 1.0) == 42


# --- Spark local: one shared session ---------------------------------------------------------


def test_a_uri_needs_spark(tmp_path: Path) -> None:
    path = tmp_path / "uri.yaml"
    path.write_text(
        "version: 1\n"
        "targets:\n  feed: {type: epsilon-feed, directory: out}\n"
        "customer_sources:\n"
        "  lake:\n"
        "    path: s3a://lake/customers/\n"
        "    id_column: customer_id\n"
        "segments:\n"
        "  - {id: s, name: S, members: {rule: {source: lake, attribute: x, gte: 1}}}\n",
        encoding="utf-8",
    )
    assert _problems(path)[0] == (
        "6:11: customer_sources.lake.path: a URI needs engine: spark (DuckDB reads local "
        "files: give a path)"
    )


@needs_spark
def test_missing_table_is_located(spark_session: SparkSession) -> None:
    import logging

    class Seen(logging.Handler):
        records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    spy = Seen()
    logger = logging.getLogger("SQLQueryContextLogger")
    logger.addHandler(spy)
    try:
        problems = _problems(CONFIGS / "spark-missing-table.yaml")
    finally:
        logger.removeHandler(spy)
    assert spy.records == []  # no JVM stack trace on stderr: the located problem says it
    assert len(problems) == 1
    assert problems[0].startswith(
        "7:12: customer_sources.shoppers.table: cannot read table 'no_such_table' on Spark: "
        "[TABLE_OR_VIEW_NOT_FOUND]"
    )


@pytest.fixture(scope="module")
def example_configs(
    tmp_path_factory: pytest.TempPathFactory, spark_session: SparkSession
) -> dict[str, Path]:
    """The example config over its customers as Parquet: read by DuckDB, by Spark from the
    path, and by Spark from a table (a view of the shared session)."""
    folder = tmp_path_factory.mktemp("engines")
    (folder / "data").mkdir()
    shutil.copy(EXAMPLE / "data" / "vip.txt", folder / "data" / "vip.txt")
    parquet = folder / "data" / "customers.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM read_csv(?, types={'customer_id': 'VARCHAR'})) TO "
        f"'{str(parquet).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)",
        [str(EXAMPLE / "data" / "customers.csv")],
    )
    con.close()
    spark_session.read.parquet(str(parquet)).createOrReplaceTempView("example_shoppers")

    text = (EXAMPLE / "audiences.yaml").read_text(encoding="utf-8")
    original = "    path: data/customers.csv\n"
    assert original in text
    variants = {
        "duckdb": "    path: data/customers.parquet\n",
        "spark-path": "    engine: spark\n    path: data/customers.parquet\n",
        "spark-table": "    engine: spark\n    table: example_shoppers\n",
        # a URI: read by Spark where it runs (here file://, as s3a:// would be on a cluster)
        "spark-uri": f"    engine: spark\n    path: {parquet.as_uri()}\n",
    }
    out: dict[str, Path] = {}
    for name, source in variants.items():
        path = folder / f"{name}.yaml"
        spark = SPARK_SECTION if name.startswith("spark") else ""
        path.write_text(text.replace(original, source) + spark, encoding="utf-8")
        out[name] = path
    return out


@needs_spark
def test_same_states_on_duckdb_and_spark(example_configs: dict[str, Path]) -> None:
    on_duck = load(example_configs["duckdb"])
    expected = resolve(on_duck)
    assert any(state.links for state in expected.values())
    for name in ("spark-path", "spark-table", "spark-uri"):
        config = load(example_configs[name])
        source = config.customer_sources["shoppers"]
        assert source.engine == "spark"
        assert config.spark is not None
        assert config.spark.master == "local[2]"
        assert dict(source.columns) == dict(on_duck.customer_sources["shoppers"].columns)
        assert resolve(config) == expected, name
    # why a shopper is in a segment does not depend on the engine either (the spark config
    # has one more line, so locations move)
    spark_config = load(example_configs["spark-path"])

    def why(config: Config, customer: str) -> list[tuple[str, str, str, bool]]:
        return [(r.segment_id, r.via, r.detail, r.excluded) for r in explain(config, customer)]

    reasons = {c: why(on_duck, c) for c in ("cust_00042", "cust_00007", "cust_01234")}
    assert any(r for r in reasons.values())
    assert {c: why(spark_config, c) for c in reasons} == reasons


@needs_spark
def test_engine_failure_while_resolving_is_located(
    example_configs: dict[str, Path], spark_session: SparkSession
) -> None:
    """The table disappears between validation and resolution: a located problem, not
    DuckDB's wrapper around the stream it was scanning."""
    text = example_configs["spark-table"].read_text(encoding="utf-8")
    path = example_configs["spark-table"].with_name("doomed.yaml")
    path.write_text(text.replace("example_shoppers", "doomed_shoppers"), encoding="utf-8")
    session = spark_session
    session.table("example_shoppers").createOrReplaceTempView("doomed_shoppers")
    config = load(path)
    session.catalog.dropTempView("doomed_shoppers")
    with pytest.raises(ConfigError) as info:
        resolve(config)
    [problem] = info.value.problems
    line, column = config.location(("customer_sources", "shoppers", "engine"))
    assert str(problem).startswith(
        f"{path}:{line}:{column}: customer_sources.shoppers.engine: cannot compute members on "
        "spark: [TABLE_OR_VIEW_NOT_FOUND]"
    )
