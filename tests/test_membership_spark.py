"""A target whose members come from Spark is diffed in Spark: the snapshot of last-applied
memberships is read there (the state store's file, or its copy under ``spark.snapshot``) and
only the customers that change come back. The plans equal a full read's, and DuckDB's."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from _scenario import reconciler

from reconciler.config import load
from reconciler.config._model import SparkSettings
from reconciler.exceptions import ConfigError, PlanError
from reconciler.manager import Reconciler
from reconciler.membership import spark as pushdown
from reconciler.plan import Refresh, Source
from reconciler.plan.changes import Phase
from reconciler.runtime import Overrides

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None, reason="pyspark (the spark extra) not installed"
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"
#: the session every Spark test shares (tests/test_engines_spark.py starts it the same way)
SPARK = (
    "spark:\n  master: local[2]\n"
    "  conf: {spark.sql.shuffle.partitions: 2, spark.default.parallelism: 2}\n"
)
SOURCE = "    path: data/customers.csv\n"
#: the edit planned in every test: thresholds moved, a VIP added, an opt-out dropped
EDITS = [
    ("        gte: 85\n", "        gte: 84\n"),
    ("        gte: 1\n", "        gte: 1.02\n"),
    ("      exclude:\n        ids: [cust_00027]", "      exclude:\n        ids: [cust_00028]"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, spark_engine: Any) -> Path:
    """The example's customers as Parquet, and its VIP list (with the worker's Spark session
    started: a config naming ``local[2]`` gets it back)."""
    out = tmp_path_factory.mktemp("pushdown")
    (out / "data").mkdir()
    shutil.copy(EXAMPLE / "data" / "vip.txt", out / "data" / "vip.txt")
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM read_csv(?, types={'customer_id': 'VARCHAR'})) TO "
        f"'{out / 'data' / 'customers.parquet'}' (FORMAT parquet)",
        [str(EXAMPLE / "data" / "customers.csv")],
    )
    con.close()
    return out


def config(folder: Path, name: str, *, engine: str, edited: bool, extra: str = "") -> Path:
    text = (EXAMPLE / "audiences.yaml").read_text(encoding="utf-8")
    assert SOURCE in text
    source = "    path: data/customers.parquet\n"
    if engine == "spark":
        source = "    engine: spark\n" + source
    text = text.replace(SOURCE, source)
    if edited:
        for old, new in EDITS:
            assert old in text
            text = text.replace(old, new)
    if engine == "spark":
        text += SPARK + extra
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets diffed by Spark."""
    calls: list[str] = []
    real = pushdown.spark_diff

    def spy(config: Any, target: str, *args: Any, **kw: Any) -> Any:
        calls.append(target)
        return real(config, target, *args, **kw)

    monkeypatch.setattr("reconciler.membership.spark.spark_diff", spy)
    return calls


@pytest.fixture
def state(folder: Path, _applied: Any, fresh_sandbox: Any, tmp_path: Path) -> Path:
    """The unedited example applied on both targets with members from Spark, as that apply
    leaves the sandbox and its state store, ``tmp_path / "state.db"`` (applied once per
    worker, restored by a seed and a copy: each test plans from it, and may change it)."""

    def build(root: Path) -> None:
        rec = reconciler(
            config(folder, "applied", engine="spark", edited=False),
            fresh_sandbox,
            root / "state.db",
        )
        try:
            results = asyncio.run(rec.apply(asyncio.run(rec.plan()), verify=False))
        finally:
            rec.store.close()
        assert all(r.failures == [] for r in results)

    _applied.restore("spark-example", build, tmp_path)
    return tmp_path / "state.db"


def test_plans_diffed_in_spark_equal_full_reads_and_duckdb(
    folder: Path, state: Path, fresh_sandbox: Any, spied: list[str]
) -> None:
    spark_rec = reconciler(
        config(folder, "spark-edited", engine="spark", edited=True), fresh_sandbox, state
    )
    spark_rec.sample, spark_rec.sample_seed = 100, 7
    auto = asyncio.run(spark_rec.plan(Refresh.AUTO))
    assert spied == ["epsilon"]  # Talon.One reads everything live in auto
    full = asyncio.run(spark_rec.plan(Refresh.FULL))
    eps_auto, eps_full = auto.target("epsilon"), full.target("epsilon")
    assert eps_auto.sources[Phase.LINKS] == Source.TARGETED.value
    assert eps_auto.changes == eps_full.changes
    assert eps_auto.changes
    assert eps_auto.remote_fingerprint == eps_full.remote_fingerprint
    assert dict(eps_auto.existing) == dict(eps_full.existing)
    assert eps_auto.unchanged_links == eps_full.unchanged_links
    assert eps_auto.warnings == eps_full.warnings

    # the same edit read by DuckDB plans the same changes
    duck_rec = reconciler(
        config(folder, "duck-edited", engine="duckdb", edited=True), fresh_sandbox, state
    )
    duck_rec.sample, duck_rec.sample_seed = 100, 7
    duck = asyncio.run(duck_rec.plan(Refresh.AUTO))
    assert duck.target("epsilon").changes == eps_auto.changes
    assert duck.target("epsilon").remote_fingerprint == eps_auto.remote_fingerprint

    # --refresh=false on Talon.One: from the snapshot, diffed in Spark, as the record plans
    talon = Reconciler(
        spark_rec.config,
        spark_rec.store,
        targets=["talon"],
        overrides=Overrides.for_sandbox(fresh_sandbox),
    )
    spied.clear()
    offline = asyncio.run(talon.plan(Refresh.NONE)).target("talon")
    assert spied == ["talon"]
    talon.store._db.execute("DELETE FROM snapshots WHERE target = 'talon'")
    record = asyncio.run(talon.plan(Refresh.NONE)).target("talon")
    assert offline.changes == record.changes
    assert offline.changes
    assert offline.remote_fingerprint == record.remote_fingerprint
    assert dict(offline.existing) == dict(record.existing)
    assert offline.unchanged_links == record.unchanged_links
    talon.store.checkpoint("talon")

    # applied, nothing is left to do, whichever way it is planned
    results = asyncio.run(spark_rec.apply(auto, verify=False, force=True))
    assert all(r.failures == [] for r in results)
    assert not asyncio.run(spark_rec.plan(Refresh.AUTO)).has_changes
    assert not asyncio.run(spark_rec.plan(Refresh.FULL)).has_changes


def test_spark_snapshot_folder_keeps_the_current_copy_and_the_previous_one(
    folder: Path, state: Path, fresh_sandbox: Any, tmp_path: Path, spied: list[str]
) -> None:
    # the apply leaves what it leaves without spark.snapshot: a plan makes the copies
    shared = tmp_path / "lake" / "snapshots"
    extra = f"  snapshot: {shared}\n"
    rec = reconciler(
        config(folder, "edited", engine="spark", edited=True, extra=extra), fresh_sandbox, state
    )
    assert rec.config.spark is not None
    assert rec.config.spark.snapshot == str(shared)
    local = rec.store.snapshot("epsilon")
    assert local is not None
    rec.sample = 100
    first = asyncio.run(rec.plan(Refresh.AUTO))
    assert spied == ["epsilon"]
    copies = sorted(p.name for p in shared.iterdir())
    assert local.path.name in copies
    assert (shared / local.path.name).read_bytes() == local.path.read_bytes()

    # two more checkpoints (as applies make them): the oldest copy goes, the previous stays
    # (a plan may still be reading it)
    state_now = rec.store.load("epsilon")
    for _ in range(2):
        rec.store.replace("epsilon", state_now)
        now = rec.store.snapshot("epsilon")
        assert now is not None
        assert pushdown.spark_snapshot(rec.config, now.path) == str(shared / now.path.name)
    assert now is not None
    key = now.path.name.split(".")[0]
    mine = sorted(p.name for p in shared.iterdir() if p.name.startswith(key))
    assert len(mine) == 2
    assert now.path.name in mine
    assert local.path.name not in mine
    assert not any(p.name.endswith(".partial") for p in shared.iterdir())
    assert [c for c in first.target("epsilon").changes]


def test_a_diff_that_does_not_add_up_is_refused(
    folder: Path, state: Path, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = reconciler(config(folder, "edited", engine="spark", edited=True), fresh_sandbox, state)
    rec.sample = 100
    real = pushdown._found

    def lossy(*args: Any) -> Any:  # the engine loses one changed row
        found = real(*args)
        assert found.changed
        del found.changed[0]
        return found

    monkeypatch.setattr(pushdown, "_found", lossy)
    with pytest.raises(PlanError, match="does not add up, refusing to plan: it counted"):
        asyncio.run(rec.plan(Refresh.AUTO))


def test_a_join_that_pairs_fewer_rows_than_the_scans_is_refused(
    folder: Path, state: Path, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = reconciler(config(folder, "edited", engine="spark", edited=True), fresh_sandbox, state)
    real = pushdown._found

    def dropping(*args: Any) -> Any:  # the join silently dropped a last-applied row
        found = real(*args)
        found.l_join -= 1
        return found

    monkeypatch.setattr(pushdown, "_found", dropping)
    with pytest.raises(PlanError, match="does not add up, refusing to plan: the join paired"):
        asyncio.run(rec.plan(Refresh.AUTO))


def test_where_spark_reads_the_snapshot(tmp_path: Path) -> None:
    local = tmp_path / "state.snapshots" / "epsilon-1a2b3c4d.1-2.parquet"
    local.parent.mkdir()
    local.write_bytes(b"PAR1")

    class Cfg:
        spark: SparkSettings | None

    cfg = Cfg()
    cfg.spark = SparkSettings(master="local[2]")
    assert pushdown.spark_snapshot(cfg, local) == str(local)  # type: ignore[arg-type]
    cfg.spark = SparkSettings(master="sc://lake.internal:15002")
    assert pushdown.spark_snapshot(cfg, local) is None  # type: ignore[arg-type]
    cfg.spark = SparkSettings(master="sc://lake.internal:15002", snapshot=str(tmp_path / "s"))
    assert pushdown.spark_snapshot(cfg, local) == str(tmp_path / "s" / local.name)  # type: ignore[arg-type]
    assert (tmp_path / "s" / local.name).read_bytes() == b"PAR1"
    cfg.spark = SparkSettings(master="local[2]", snapshot="nosuch://bucket/x")
    with pytest.raises(PlanError, match=r"cannot copy the snapshot to spark.snapshot \(nosuch://"):
        pushdown.spark_snapshot(cfg, local)  # type: ignore[arg-type]


def test_invalid_member_ids_on_spark_are_located(folder: Path, tmp_path: Path) -> None:
    """An id DuckDB's path refuses (here, with a space, in Value Shoppers) is refused by
    Spark's diff too."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(folder / "data" / "vip.txt", data / "vip.txt")
    con = duckdb.connect()
    source = folder / "data" / "customers.parquet"
    con.execute(
        "COPY (SELECT CASE WHEN customer_id = 'cust_00041' THEN 'cust 00041' ELSE customer_id "
        f"END AS customer_id, * EXCLUDE (customer_id) FROM '{source}'"
        f") TO '{data / 'customers.parquet'}' (FORMAT parquet)"
    )
    snapshot = tmp_path / "last.parquet"
    con.execute(
        f"COPY (SELECT 'cust_00001' AS customer_id, true AS known, '' AS segments) TO '{snapshot}'"
        " (FORMAT parquet)"
    )
    con.close()
    path = config(tmp_path, "bad", engine="spark", edited=False)
    cfg = load(path)
    with pytest.raises(ConfigError) as info:
        pushdown.spark_diff(cfg, "epsilon", str(snapshot), {}, [])
    assert info.value.problems
    for problem in info.value.problems:
        assert str(problem).startswith(f"{path}:")
        assert "invalid member, customer id 'cust 00041': contains whitespace" in str(problem)


def test_segment_sizes_diffed_in_spark_equal_an_independent_count(
    folder: Path, state: Path, fresh_sandbox: Any, spied: list[str]
) -> None:
    from _example_counts import check_review, example_members

    from reconciler.plan import plan_dict

    rec = reconciler(config(folder, "sizes", engine="spark", edited=True), fresh_sandbox, state)
    auto = plan_dict(asyncio.run(rec.plan(Refresh.AUTO)))
    offline = plan_dict(asyncio.run(rec.plan(Refresh.NONE)))
    assert spied == ["epsilon", "epsilon", "talon"]  # Talon.One reads everything live in auto
    before = example_members()
    after = example_members(spend=84, visits=1.02, excluded="cust_00028")
    talon = [s for s in before if s != "custom-segment-1"]
    for plan in (auto, offline):
        (eps,) = (t for t in plan["targets"] if t["target"] == "epsilon")
        check_review(eps["segments"], before, after)
    (tal,) = (t for t in offline["targets"] if t["target"] == "talon")
    check_review(tal["segments"], {s: before[s] for s in talon}, {s: after[s] for s in talon})
