"""Every operator, ``matches``, exclusions and repeated ids over a Snowflake table (fakesnow on
127.0.0.1) plan exactly what the same rules plan over the same rows read by DuckDB and by
Spark: right after an apply (an unchanged snapshot, nothing to do) and after an edit (a
changed one)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _fakesnow import serve

from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.plan import Plan, Refresh, Source
from reconciler.plan.changes import LinkChange, Phase
from reconciler.runtime import Overrides
from reconciler.statestore import StateStore

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fakesnow") is None
    or importlib.util.find_spec("snowflake.connector") is None,
    reason="fakesnow and snowflake-connector-python (the warehouse extra) not installed",
)
HAS_SPARK = importlib.util.find_spec("pyspark") is not None

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
TEAM = "a5166fc4-f874-4741-a721-c05ffd9941a5"
PASSWORD = "SNOWFLAKE_RULES_PASSWORD"
N = 2000

#: one segment per operator, combinators, an exclusion (by rule and by id), ids and a file
RULES: dict[str, str] = {
    "eq": "{attribute: region, eq: north}",
    "ne": "{attribute: region, ne: south}",
    "lt": "{attribute: score, lt: 20}",
    "lte": "{attribute: share, lte: 0.25}",
    "gt": "{attribute: seen, gt: '2024-05-01T10:00:00'}",
    "gte": "{attribute: signup, gte: '2022-01-01'}",
    "in": "{attribute: region, in: [east, west]}",
    "not-in": "{attribute: score, not_in: [1, 2, 3, 4, 5, 6, 7, 8, 9]}",
    "exists": "{attribute: email, exists: true}",
    "absent": "{attribute: email, exists: false}",
    "matches": "{attribute: email, matches: '^[a-m][a-z0-9.]*@example\\.com$'}",
    "flag": "{attribute: vip, eq: true}",
    "combined": (
        "{any: [{all: [{attribute: score, gte: 60}, {not: {attribute: region, eq: east}}]}, "
        "{attribute: email, matches: 'x+'}]}"
    ),
}


def _rows(rng: random.Random) -> list[dict[str, Any]]:
    regions = ["north", "south", "east", "west", None]
    out = []
    for i in range(N):
        name = rng.choice(["ann", "bob", "max", "zoe", "xavier", "kim"])
        domain = rng.choice(["example.com", "example.org", "mail.example.com"])
        out.append(
            {
                "id": f"s{i:04d}",
                "score": rng.randrange(100),
                "share": round(rng.random(), 3),
                "region": rng.choice(regions),
                "email": None if rng.random() < 0.2 else f"{name}{i}@{domain}",
                "vip": rng.random() < 0.1,
                "signup": dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(1500)),
                "seen": dt.datetime(2024, 4, 1) + dt.timedelta(hours=rng.randrange(24 * 60)),
            }
        )
    # a customer read twice: its second row adds segments (the rows are OR'ed)
    twice = dict(out[3], score=95, region="west", vip=True)
    return [*out, twice]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("score", pa.int64()),
                ("share", pa.float64()),
                ("region", pa.string()),
                ("email", pa.string()),
                ("vip", pa.bool_()),
                ("signup", pa.date32()),
                ("seen", pa.timestamp("us")),
            ]
        ),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """fakesnow with the rows in CRM.SHOP.SHOPPERS, and the same rows as a Parquet file."""
    import snowflake.connector

    folder = tmp_path_factory.mktemp("rules")
    path = folder / "shoppers.parquet"
    pq.write_table(_table(_rows(random.Random(11))), path)
    with serve() as kwargs:
        con = snowflake.connector.connect(**kwargs, database="CRM", schema="SHOP")
        cur = con.cursor()
        cur.execute(
            "CREATE OR REPLACE TABLE SHOPPERS (id VARCHAR, score NUMBER(38,0), share FLOAT, "
            "region VARCHAR, email VARCHAR, vip BOOLEAN, signup DATE, seen TIMESTAMP_NTZ)"
        )
        cur.execute(f"PUT 'file://{path}' @%SHOPPERS")
        cur.execute(
            "COPY INTO SHOPPERS FROM @%SHOPPERS FILE_FORMAT = (TYPE = PARQUET) "
            "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
        )
        con.close()
        yield kwargs, path


def _config(folder: Path, engine: str, server: dict[str, Any], data: Path, edited: bool) -> Path:
    source = {
        "duckdb": f"  shoppers: {{path: {data}, id_column: id, outside_config_dir: true}}",
        "spark": (
            f"  shoppers: {{engine: spark, path: {data}, id_column: id, outside_config_dir: true}}"
        ),
        "snowflake": "  shoppers: {engine: snowflake, table: SHOPPERS, id_column: id}",
    }[engine]
    lines = [
        "version: 1",
        "targets:",
        "  eps:",
        "    type: epsilon",
        "    base_url: http://127.0.0.1:9/never-used",
        f"    retailer_team_id: {RETAILER}",
        "    bearer_token: ${EQ_TOKEN}",
        "    api_key: ${EQ_KEY}",
        "customer_sources:",
        source,
        "segments:",
    ]
    for name, rule in RULES.items():
        if edited:  # every threshold moved a little, one operator's meaning flipped
            rule = rule.replace("20}", "25}").replace("0.25}", "0.3}").replace("north}", "west}")
        lines += [
            f"  - id: op-{name}",
            f"    name: {name}",
            f"    access: [{TEAM}]",
            "    members:",
            f"      rule: {rule}",
        ]
    lines += [
        "  - id: excluded",
        "    name: excluded",
        f"    access: [{TEAM}]",
        "    members:",
        "      rule: {attribute: score, gte: 50}",
        f"      ids: [s0001, s0002, {'s0010' if edited else 's0011'}]",
        "      files: [vip.txt]",
        "      exclude:",
        f"        rule: {{attribute: region, eq: {'east' if edited else 'south'}}}",
        "        ids: [s0060]",
    ]
    if engine == "snowflake":
        lines += [
            "snowflake:",
            f"  account: {server['account']}",
            f"  user: {server['user']}",
            "  password: ${" + PASSWORD + "}",
            "  database: CRM",
            "  schema: SHOP",
            f"  url: http://{server['host']}:{server['port']}",
        ]
    if engine == "spark":
        lines += ["spark:", "  master: local[2]", "  conf: {spark.sql.shuffle.partitions: 2}"]
    (folder / "vip.txt").write_text("s0100\ns0101\ns0060\n")
    path = folder / f"{engine}{'-edited' if edited else ''}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plan(path: Path, sandbox: Any, state: Path, refresh: Refresh = Refresh.AUTO) -> Plan:
    rec = Reconciler(load(path), StateStore(state), overrides=Overrides.for_sandbox(sandbox))
    rec.sample, rec.sample_seed = 50, 5
    return asyncio.run(rec.plan(refresh))


def _same(a: Plan, b: Plan) -> None:
    (x,), (y,) = a.targets, b.targets
    assert x.changes == y.changes
    assert x.remote_fingerprint == y.remote_fingerprint
    assert dict(x.existing) == dict(y.existing)
    assert x.unchanged_links == y.unchanged_links


@pytest.mark.xdist_group("spark")  # it asks for the Spark session while it runs
def test_every_operator_plans_as_on_duckdb_and_spark(
    server: tuple[dict[str, Any], Path],
    fresh_sandbox: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    kwargs, data = server
    monkeypatch.setenv(PASSWORD, kwargs["password"])
    if HAS_SPARK:  # the worker's session (its settings), which the ``local[2]`` config gets back
        request.getfixturevalue("spark_engine")
    engines = ["duckdb", "snowflake", *(["spark"] if HAS_SPARK else [])]
    state = tmp_path / "state.db"
    first = {e: _config(tmp_path, e, kwargs, data, edited=False) for e in engines}
    # the first plan, nothing applied: the members computed in Snowflake equal DuckDB's
    initial = {e: _plan(first[e], fresh_sandbox, tmp_path / f"{e}.db") for e in engines}
    for e in engines:
        _same(initial[e], initial["duckdb"])
    # every operator selects someone, and not everyone
    linked = {
        seg
        for c in initial["snowflake"].targets[0].changes
        if isinstance(c, LinkChange)
        for seg in c.after or ()
    }
    assert {f"op-{name}" for name in RULES} | {"excluded"} <= linked

    rec = Reconciler(load(first["snowflake"]), StateStore(state))
    rec.overrides = Overrides.for_sandbox(fresh_sandbox)
    applied = asyncio.run(rec.apply(initial["snowflake"], verify=False))
    assert all(r.failures == [] for r in applied)

    # an unchanged snapshot: nothing to do on any engine, diffed where the rows are
    for e in engines:
        plan = _plan(first[e], fresh_sandbox, state)
        assert plan.targets[0].sources[Phase.LINKS] == Source.TARGETED.value
        assert not plan.has_changes

    # a changed one: the same changes, fingerprints and sizes, and what a full read plans
    edited = {e: _config(tmp_path, e, kwargs, data, edited=True) for e in engines}
    plans = {e: _plan(edited[e], fresh_sandbox, state) for e in engines}
    assert plans["snowflake"].targets[0].changes
    for e in engines:
        _same(plans[e], plans["duckdb"])
    _same(plans["snowflake"], _plan(edited["snowflake"], fresh_sandbox, state, Refresh.FULL))
