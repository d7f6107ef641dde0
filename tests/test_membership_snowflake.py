"""A target whose members come from a Snowflake table is diffed in Snowflake: the rules and the
join run there (through fakesnow, which serves the real ``snowflake.connector`` protocol on
127.0.0.1 over DuckDB), the last-applied snapshot is a table the reconciler owns in the schema
the config names, and only the customers that change come back. The plans equal DuckDB's."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from _fakesnow import serve
from _scenario import reconciler
from test_membership_warehouse_golden import SNAPSHOT as GOLDEN_SNAPSHOT
from test_membership_warehouse_golden import golden_sql

from reconciler.config import load
from reconciler.exceptions import ConfigError, PlanError
from reconciler.membership import snowflake as pushdown
from reconciler.membership import warehouse_sql
from reconciler.plan import Refresh, Source
from reconciler.plan.changes import Phase
from reconciler.rules import SNOWFLAKE
from reconciler.statestore import StateStore

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fakesnow") is None
    or importlib.util.find_spec("snowflake.connector") is None,
    reason="fakesnow and snowflake-connector-python (the warehouse extra) not installed",
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"
SOURCE = "    path: data/customers.csv\n"
#: the edit planned in every test: thresholds moved, a VIP added, an opt-out dropped
EDITS = [
    ("        gte: 85\n", "        gte: 84\n"),
    ("        gte: 1\n", "        gte: 1.02\n"),
    ("      exclude:\n        ids: [cust_00027]", "      exclude:\n        ids: [cust_00028]"),
]
PASSWORD = "SNOWFLAKE_TEST_PASSWORD"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fakesnow server on 127.0.0.1, holding the example's customers in CRM.SHOP.CUSTOMERS
    (staged as one Parquet file and copied in: one statement, not a row-by-row INSERT that
    the emulator translates value by value)."""
    import snowflake.connector

    parquet = tmp_path_factory.mktemp("snowflake") / "customers.parquet"
    with serve() as kwargs:
        con = snowflake.connector.connect(**kwargs, database="CRM", schema="SHOP")
        local = duckdb.connect()
        read = "SELECT * FROM read_csv(?, types={'customer_id': 'VARCHAR'})"
        csv = [str(EXAMPLE / "data" / "customers.csv")]
        types = {"VARCHAR": "VARCHAR", "BIGINT": "NUMBER(38,0)", "DOUBLE": "FLOAT"}
        columns = {
            str(name): types.get(str(kind), str(kind))
            for name, kind, *_ in local.execute(f"DESCRIBE {read}", csv).fetchall()
        }
        rows = local.execute(f"SELECT count(*) FROM ({read})", csv).fetchone()
        local.execute(
            f"COPY ({read}) TO '{str(parquet).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)", csv
        )
        local.close()
        cur = con.cursor()
        cur.execute(
            "CREATE OR REPLACE TABLE CUSTOMERS ("
            + ", ".join(f"{n} {k}" for n, k in columns.items())
            + ")"
        )
        cur.execute(f"PUT 'file://{parquet}' @%CUSTOMERS")
        cur.execute(
            "COPY INTO CUSTOMERS FROM @%CUSTOMERS FILE_FORMAT = (TYPE = PARQUET) "
            "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
        )
        cur.execute("SELECT count(*) FROM CUSTOMERS")
        assert cur.fetchone() == rows
        con.close()
        yield kwargs


@pytest.fixture
def env(server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(PASSWORD, server["password"])
    return server


def section(server: dict[str, Any], **over: Any) -> str:
    fields = {
        "account": server["account"],
        "user": server["user"],
        "password": "${" + PASSWORD + "}",
        "database": "CRM",
        "schema": "SHOP",
        "warehouse": "RECONCILE_WH",
        "snapshot_schema": "RECONCILER",
        "url": f"http://{server['host']}:{server['port']}",
        "timeout": 10,
        **over,
    }
    return "snowflake:\n" + "".join(f"  {k}: {v}\n" for k, v in fields.items())


def config(
    folder: Path, name: str, server: dict[str, Any], *, engine: str, edited: bool, **over: Any
) -> Path:
    text = (EXAMPLE / "audiences.yaml").read_text(encoding="utf-8")
    assert SOURCE in text
    if engine == "snowflake":
        text = text.replace(SOURCE, "    engine: snowflake\n    table: CUSTOMERS\n")
        text += section(server, **over)
    if edited:
        for old, new in EDITS:
            assert old in text
            text = text.replace(old, new)
    (folder / "data").mkdir(exist_ok=True)
    for data in ("vip.txt", "customers.csv"):
        if not (folder / "data" / data).exists():
            shutil.copy(EXAMPLE / "data" / data, folder / "data" / data)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def applied(_applied: Any, env: dict[str, Any], fresh_sandbox: Any, tmp_path: Path) -> Path:
    """The example's Snowflake config applied to the sandbox, as that apply leaves it (a copy
    of the run's template): the state store, ``tmp_path / "state.db"``."""

    def build(root: Path) -> None:
        path = config(root, "snow", env, engine="snowflake", edited=False)
        rec = reconciler(path, fresh_sandbox, root / "state.db")
        try:
            assert all(r.failures == [] for r in asyncio.run(rec.apply(asyncio.run(rec.plan()))))
        finally:
            rec.store.close()

    _applied.restore("snowflake-example", build, tmp_path)
    return tmp_path / "state.db"


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets diffed in Snowflake."""
    calls: list[str] = []
    real = pushdown.snowflake_diff

    def spy(config: Any, target: str, *args: Any, **kw: Any) -> Any:
        calls.append(target)
        return real(config, target, *args, **kw)

    monkeypatch.setattr("reconciler.membership.snowflake.snowflake_diff", spy)
    return calls


def parquet_rows(path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT customer_id, known, segments FROM read_parquet(?) ORDER BY customer_id",
            [str(path)],
        ).fetchall()
    finally:
        con.close()


def snapshot_rows(server: dict[str, Any], table: str) -> list[tuple[Any, ...]]:
    import snowflake.connector

    con = snowflake.connector.connect(**server, database="CRM", schema="SHOP")
    try:
        cur = con.cursor()
        cur.execute(f"SELECT customer_id, known, segments FROM {table} ORDER BY customer_id")
        return list(cur.fetchall())
    finally:
        con.close()


def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements every Snowflake engine runs from now on."""
    from reconciler.engines import SnowflakeEngine

    ran: list[str] = []
    real = SnowflakeEngine.execute

    def spy(self: SnowflakeEngine, sql: str, params: Any = ()) -> Any:
        ran.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(SnowflakeEngine, "execute", spy)
    return ran


def test_the_example_over_snowflake_plans_as_duckdb_applies_and_replans_to_nothing(
    env: dict[str, Any],
    fresh_sandbox: Any,
    tmp_path: Path,
    spied: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "state.db"
    first = reconciler(
        config(tmp_path, "snow", env, engine="snowflake", edited=False), fresh_sandbox, state
    )
    duck_first = reconciler(
        config(tmp_path, "duck", env, engine="duckdb", edited=False),
        fresh_sandbox,
        tmp_path / "duck-state.db",
    )
    # the first plan (nothing applied yet) computes the members in Snowflake too
    plan = asyncio.run(first.plan())
    assert (
        plan.target("epsilon").changes == asyncio.run(duck_first.plan()).target("epsilon").changes
    )
    results = asyncio.run(first.apply(plan, verify=False))
    assert all(r.failures == [] for r in results)

    snow = reconciler(
        config(tmp_path, "snow-edited", env, engine="snowflake", edited=True), fresh_sandbox, state
    )
    duck = reconciler(
        config(tmp_path, "duck-edited", env, engine="duckdb", edited=True), fresh_sandbox, state
    )
    for rec in (snow, duck):
        rec.sample, rec.sample_seed = 100, 7
    assert snow.config.snowflake is not None
    before = snow.store.snapshot("epsilon")
    assert before is not None
    spied.clear()
    ran = recorded(monkeypatch)
    auto = asyncio.run(snow.plan(Refresh.AUTO))
    assert spied == ["epsilon"]  # Talon.One reads everything live in auto
    # what ran in Snowflake is what the golden files show
    table = SNOWFLAKE.ident(pushdown.snapshot_table(snow.config.snowflake, before.path))
    for name in ("lists", "counts", "changed", "last-no-overlay"):
        golden = golden_sql("snowflake", name).replace(SNOWFLAKE.ident(GOLDEN_SNAPSHOT), "T")
        assert golden in {sql.replace(table, "T") for sql in ran}
    eps = auto.target("epsilon")
    assert eps.sources[Phase.LINKS] == Source.TARGETED.value
    assert eps.changes
    other = asyncio.run(duck.plan(Refresh.AUTO)).target("epsilon")
    assert eps.changes == other.changes
    assert eps.remote_fingerprint == other.remote_fingerprint
    assert dict(eps.existing) == dict(other.existing)
    assert eps.unchanged_links == other.unchanged_links
    full = asyncio.run(snow.plan(Refresh.FULL)).target("epsilon")
    assert eps.changes == full.changes
    assert eps.remote_fingerprint == full.remote_fingerprint

    # the snapshot of the first apply is a table of RECONCILER, as the state store holds it
    table = pushdown.snapshot_table(snow.config.snowflake, before.path)
    assert table.startswith("RECONCILER.RECONCILE_SNAPSHOT_")
    local = parquet_rows(before.path)
    assert snapshot_rows(env, table) == local

    results = asyncio.run(snow.apply(auto, verify=False, force=True))
    assert all(r.failures == [] for r in results)
    spied.clear()
    again = asyncio.run(snow.plan(Refresh.AUTO))
    assert spied == ["epsilon"]
    assert not again.has_changes
    assert not asyncio.run(snow.plan(Refresh.FULL)).has_changes
    # the apply's checkpoint was copied to a table of its own, which now holds the edit
    after = snow.store.snapshot("epsilon")
    assert after is not None
    assert after.path != before.path
    moved = pushdown.snapshot_table(snow.config.snowflake, after.path)
    rows = snapshot_rows(env, moved)
    assert rows != local
    assert rows == parquet_rows(after.path)


def test_validate_reads_the_table_and_locates_what_is_wrong(
    env: dict[str, Any], tmp_path: Path
) -> None:
    path = config(tmp_path, "ok", env, engine="snowflake", edited=False)
    cfg = load(path)
    source = cfg.customer_sources["shoppers"]
    assert source.engine == "snowflake"
    assert source.table == "CUSTOMERS"
    assert source.columns["weekly_spend_percentile"] in ("BIGINT", "DOUBLE")
    assert source.columns["loyalty_tier"] == "VARCHAR"

    text = path.read_text(encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    missing.write_text(text.replace("table: CUSTOMERS", "table: NO_SUCH_TABLE"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(missing)
    (problem,) = err.value.problems
    assert problem.path == "customer_sources.shoppers.table"
    assert "cannot read table 'NO_SUCH_TABLE' on Snowflake" in problem.message
    assert (problem.line, problem.column) == _line_col(missing, "table: NO_SUCH_TABLE")

    column = tmp_path / "column.yaml"
    column.write_text(
        text.replace("attribute: visits_per_week", "attribute: visits_per_month"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load(column)
    assert any("visits_per_month" in p.message for p in err.value.problems)


def _line_col(path: Path, needle: str) -> tuple[int, int]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return n, line.index(needle.split(": ", 1)[1]) + 1
    raise AssertionError(needle)


def test_a_plan_that_does_not_add_up_is_refused(
    env: dict[str, Any],
    fresh_sandbox: Any,
    applied: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = applied
    real = warehouse_sql.Statements.changed

    def dropped(self: Any) -> Any:  # a join that silently loses a row
        q = real(self)
        return type(q)(q.sql.replace("= 1", "= 1 AND w.cid <> 'cust_00001'"), q.params)

    edited = reconciler(
        config(tmp_path, "edited", env, engine="snowflake", edited=True), fresh_sandbox, state
    )
    monkeypatch.setattr(warehouse_sql.Statements, "changed", dropped)
    with pytest.raises(PlanError, match="does not add up"):
        asyncio.run(edited.plan(Refresh.AUTO))


def test_customers_changed_since_the_checkpoint_win_over_the_snapshot_table(
    env: dict[str, Any],
    fresh_sandbox: Any,
    applied: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An apply whose checkpoint did not happen leaves its changes as the overlay: they are
    sent beside the snapshot table and win over its rows, as over the local file's."""
    state = applied
    first = config(tmp_path, "snow", env, engine="snowflake", edited=False)
    edited = reconciler(
        config(tmp_path, "snow-edited", env, engine="snowflake", edited=True), fresh_sandbox, state
    )
    with monkeypatch.context() as patch:
        patch.setattr(StateStore, "checkpoint", lambda *args, **kw: None)
        plan = asyncio.run(edited.plan(Refresh.AUTO))
        assert all(r.failures == [] for r in asyncio.run(edited.apply(plan, force=True)))
    snapshot = edited.store.snapshot("epsilon")
    assert snapshot is not None
    assert snapshot.overlay  # the edit is not in the file, nor in its table

    # back to the first config: Snowflake (the table and the overlay) plans as DuckDB does
    snow = reconciler(first, fresh_sandbox, state)
    duck = reconciler(
        config(tmp_path, "duck", env, engine="duckdb", edited=False), fresh_sandbox, state
    )
    for r in (snow, duck):
        r.sample, r.sample_seed = 100, 3
    back = asyncio.run(snow.plan(Refresh.AUTO)).target("epsilon")
    assert back.sources[Phase.LINKS] == Source.TARGETED.value
    assert back.changes
    other = asyncio.run(duck.plan(Refresh.AUTO)).target("epsilon")
    assert back.changes == other.changes
    assert back.remote_fingerprint == other.remote_fingerprint
    assert not asyncio.run(edited.plan(Refresh.AUTO)).has_changes


def test_a_snapshot_table_another_plan_copied_first_is_used(
    env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two plans that both find the checkpoint's table missing both copy it: the second
    rename fails, and that plan reads the table the first one put in place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reconciler.config._sources import snowflake_engine
    from reconciler.membership.warehouse_sql import SNOWFLAKE_DIFF, Statements

    settings = load(config(tmp_path, "snow", env, engine="snowflake", edited=False)).snowflake
    assert settings is not None
    local = tmp_path / "race-0a1b2c3d.7-8.parquet"
    pq.write_table(
        pa.table({"customer_id": ["a", "b"], "known": [True, True], "segments": ["x", ""]}),
        local,
    )
    table = pushdown.snapshot_table(settings, local)
    engine = snowflake_engine(settings)
    try:
        pushdown._mirror(engine, Statements(SNOWFLAKE_DIFF), table, local)
        real = engine.fetch
        hidden: list[str] = []

        def late(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
            if sql.startswith("SHOW TABLES") and not hidden:  # the first look misses it
                hidden.append(sql)
                return []
            return real(sql, params)

        monkeypatch.setattr(engine, "fetch", late)
        pushdown._mirror(engine, Statements(SNOWFLAKE_DIFF), table, local)
        assert hidden
        assert real(f"SELECT COUNT(*) FROM {table}") == [(2,)]
        leftovers = real("SHOW TABLES LIKE 'RECONCILE_SNAPSHOT_LOADING%' IN SCHEMA RECONCILER")
        assert leftovers == []
    finally:
        engine.close()
