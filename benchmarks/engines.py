"""The plan of a target whose customers are a Parquet table read by DuckDB or by Spark (local
mode), at 1M and 10M customers, with the same 10,000 customers changed at every size.

    python -m benchmarks.engines [--sizes 1000000 10000000] [--engines duckdb spark]
                                 [--data FOLDER] [--spark-conf KEY=VALUE ...]

For each size, a seeded Parquet table of customers is generated with DuckDB, and one config
per engine is written: one Epsilon target, 10 segments whose rules cover every operator over
that table (``engine: duckdb``, or ``engine: spark`` with ``spark: {master: local[*]}``). The
state store is prepared once per size (kept under ``--data``, reused by later runs): the 10
segments, every customer of the table as existing, and each customer's last-applied segments
equal to the desired ones, except for every ``(N // 10,000)``-th customer, who has one segment
toggled (added when not desired, removed when desired). It is built through the public API: the
memberships come from DuckDB, a :class:`~reconciler.model.State` from ``StateBuilder``, and
``StateStore.replace`` writes it and its columnar snapshot.

Each (engine, size) then runs ``Reconciler.plan(Refresh.NONE)`` (``reconcile plan
--refresh=false``) in its own process, on a fresh copy of the state store: the remote comes
from the store, nothing is read from the platform (its base URL is a closed local port, and the
process counts the HTTP requests sent: they must be 0). The membership diff runs in DuckDB in
this process, or, for the Spark source, in Spark (only the changed customers come back). The
child checks that the plan holds exactly one link change per perturbed customer and nothing
else; the parent checks that both engines planned the same changes (their digest).

Printed per (engine, size): the customers, the customers changed and the changes in the plan,
the start-up time (the config load and the imports it still needs; for Spark it starts the
session and reads the table's columns), the plan's wall time, and within it the engine's diff
(Spark: the diff it runs and the changed rows it streams back; DuckDB: the desired members and
the join with the snapshot), the peak RSS of the reconciler's Python process (``ru_maxrss``)
and, for Spark, of the JVM apart (``VmHWM`` of the java process under ours, read before the
session stops). The point: on Spark, the reconciler's peak must not grow with the table, only
with the delta. The data and the state store are prepared in a child process too: Linux
carries a process's peak RSS over to the children it starts, so the parent stays small (its
peak is printed, the floor of every child's figure).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from reconciler.engines import SegmentRule
from reconciler.rules import DUCKDB_SQL, AllOf, AnyOf, Compare, Not, Rule, members_query

SEED = 0.42
COLUMNS = {
    "customer_id": "VARCHAR",
    "spend": "BIGINT",
    "visits": "DOUBLE",
    "region": "VARCHAR",
    "tier": "VARCHAR",
    "email": "VARCHAR",
    "signup_date": "DATE",
}
#: the customers whose last-applied segments differ from the desired ones, at every size
CHANGED = 10_000
TARGET = "epsilon"
RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
#: the target's credentials (dummies: with --refresh=false nothing is sent)
CREDENTIALS = {"BENCH_EPSILON_BEARER_TOKEN": "unused", "BENCH_EPSILON_API_KEY": "unused"}
_SEP = "\x1f"


def _c(attribute: str, op: str, value: Any) -> Compare:
    return Compare(attribute, op, value, ())


def rules(shift: int = 0) -> list[SegmentRule]:
    """Ten segments covering every operator; ``shift`` moves the thresholds a little."""
    out: list[tuple[str, Rule]] = [
        ("high-spend", _c("spend", "gte", 85 + shift)),
        ("low-spend", _c("spend", "lt", 10 - shift)),
        ("frequent", _c("visits", "gt", 4.5 + shift / 10)),
        ("north", _c("region", "eq", "north")),
        ("not-east", _c("region", "ne", "east")),
        ("premium", _c("tier", "in", ["gold", "platinum"])),
        ("basic", _c("tier", "not_in", ["gold", "platinum", "silver"])),
        ("old", _c("signup_date", "lte", f"2019-0{1 + shift}-01")),
        ("example-mail", _c("email", "matches", rf"^c[0-9]*{3 + shift}@example\.com$")),
        (
            "mixed",
            AllOf((_c("email", "exists", True), Not(_c("spend", "gte", 50 + shift), ())), ()),
        ),
    ]
    return [SegmentRule(name, rule) for name, rule in out]


def rule_data(rule: Rule) -> dict[str, Any]:
    """A rule as the YAML spells it."""
    if isinstance(rule, AllOf):
        return {"all": [rule_data(r) for r in rule.items]}
    if isinstance(rule, AnyOf):
        return {"any": [rule_data(r) for r in rule.items]}
    if isinstance(rule, Not):
        return {"not": rule_data(rule.item)}
    return {"attribute": rule.attribute, rule.op: rule.value}


def generate(folder: Path, customers: int) -> Path:
    """The seeded customer table (written once per size)."""
    data = folder / f"customers-{customers}.parquet"
    if data.exists():
        return data
    partial = folder / f".customers-{customers}.parquet.partial"
    con = duckdb.connect()
    try:
        con.execute(f"SELECT setseed({SEED})")
        con.execute(
            f"""COPY (SELECT 'c' || i AS customer_id,
                   (random() * 100)::BIGINT AS spend,
                   round(random() * 7, 1) AS visits,
                   ['north', 'south', 'east', 'west'][1 + (i % 4)] AS region,
                   ['bronze', 'silver', 'gold', 'platinum', 'none'][1 + ((i * 7919) % 5)::BIGINT]
                     AS tier,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 'c' || i || '@example.com' END AS email,
                   DATE '2015-01-01' + (i % 3000)::INTEGER AS signup_date
                 FROM range({customers}) AS t(i)) TO '{partial}' (FORMAT parquet)"""
        )
    finally:
        con.close()
    partial.rename(data)
    return data


# -- plan mode ----------------------------------------------------------------------------------
def stride(customers: int) -> int:
    """Every ``stride``-th customer (from the first) is perturbed: CHANGED of them."""
    return max(1, customers // CHANGED)


def perturbed(customers: int) -> list[str]:
    return [f"c{i}" for i in range(0, customers, stride(customers))]


def write_config(folder: Path, data: Path, engine: str, spark_conf: dict[str, str]) -> Path:
    """``audiences-<engine>.yaml``: one Epsilon target, the 10 segments over ``data``."""
    import yaml

    source: dict[str, Any] = {
        "path": str(data.resolve()),
        "id_column": "customer_id",
        "outside_config_dir": True,  # the data may be kept apart from the config
    }
    if engine == "spark":
        source["engine"] = "spark"
    doc: dict[str, Any] = {
        "version": 1,
        "targets": {
            TARGET: {
                "type": "epsilon",
                # a closed local port: any request would fail the plan loudly
                "base_url": "http://127.0.0.1:9/never-used",
                "retailer_team_id": RETAILER,
                "bearer_token": "${BENCH_EPSILON_BEARER_TOKEN}",
                "api_key": "${BENCH_EPSILON_API_KEY}",
            }
        },
        "customer_sources": {"customers": source},
        "segments": [
            {
                "id": seg.segment_id,
                "name": seg.segment_id.replace("-", " ").capitalize(),
                "description": f"Customers matching: {seg.segment_id}.",
                "members": {"rule": {"source": "customers", **rule_data(seg.include)}},
            }
            for seg in rules()
        ],
    }
    if engine == "spark":
        doc["spark"] = {"master": "local[*]", **({"conf": spark_conf} if spark_conf else {})}
    path = folder / f"audiences-{engine}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _last_applied_sql(data: Path, customers: int) -> tuple[str, list[Any]]:
    """``(customer_id, segments)`` of every customer: its desired segments (sorted, joined by
    ``\\x1f``, '' for none), one of them toggled for every ``stride``-th customer."""
    q = members_query(DUCKDB_SQL, f"read_parquet('{data}')", "customer_id", COLUMNS, rules())
    ids = [seg.segment_id for seg in rules()]
    step = stride(customers)
    return (
        f"""WITH m AS ({q.sql}),
            d AS (SELECT customer_id, list(segment_id) AS segs FROM m GROUP BY customer_id),
            c AS (SELECT customer_id, coalesce(d.segs, []::VARCHAR[]) AS segs,
                         CAST(substr(customer_id, 2) AS BIGINT) AS i
                  FROM read_parquet('{data}') LEFT JOIN d USING (customer_id)),
            -- a perturbed customer's toggled segment: in turn over the 10
            p AS (SELECT customer_id, segs, CASE WHEN i % {step} = 0
                         THEN list_extract(?::VARCHAR[], ((i // {step}) % {len(ids)}) + 1)
                         END AS t FROM c),
            x AS (SELECT customer_id, CASE WHEN t IS NULL THEN segs
                         WHEN list_contains(segs, t) THEN list_filter(segs, lambda s: s <> t)
                         ELSE list_append(segs, t) END AS segs FROM p)
            SELECT customer_id, array_to_string(list_sort(segs), chr(31)) FROM x""",
        [*q.params, ids],
    )


def prepare(folder: Path, data: Path, customers: int) -> dict[str, Any]:
    """The state store of size ``customers`` (cached in ``folder/plan-<customers>``)."""
    from reconciler.config import load
    from reconciler.model import Segment, StateBuilder
    from reconciler.statestore import StateStore

    kept = folder / f"plan-{customers}"
    stamp = {"data": data.name, "bytes": data.stat().st_size, "mtime_ns": data.stat().st_mtime_ns}
    info_path = kept / "info.json"
    if info_path.exists():
        info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("stamp") == stamp and info.get("changed") == len(perturbed(customers)):
            info["reused"] = True
            return info
    shutil.rmtree(kept, ignore_errors=True)
    staging = folder / f".plan-{customers}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    info = {"stamp": stamp, "changed": len(perturbed(customers)), "reused": False}

    start = time.perf_counter()
    config = load(write_config(staging, data, "duckdb", {}))
    builder = StateBuilder()
    for seg in config.segments:
        builder.add_segment(Segment(seg.id, seg.name, seg.description))
        if seg.access is not None:
            builder.set_access(seg.id, seg.access)
    sql, params = _last_applied_sql(data, customers)
    con = duckdb.connect()
    try:
        cursor = con.execute(sql, params)
        while rows := cursor.fetchmany(200_000):
            builder.add_customers(cid for cid, _ in rows)
            builder.set_links_many(rows, lambda joined: joined.split(_SEP) if joined else ())
    finally:
        con.close()
    state = builder.build()
    del builder
    info["state_s"] = round(time.perf_counter() - start, 1)
    info["customers"] = len(state.customers)
    info["linked"] = len(state.links)
    info["links"] = state.link_count()

    start = time.perf_counter()
    store = StateStore(staging / "state.db")
    try:
        store.replace(TARGET, state)
    finally:
        store.close()
    info["replace_s"] = round(time.perf_counter() - start, 1)
    info["state_db_mb"] = round((staging / "state.db").stat().st_size / 2**20)
    (staging / "audiences-duckdb.yaml").unlink()
    info_path = staging / "info.json"
    info_path.write_text(json.dumps(info), encoding="utf-8")
    staging.rename(kept)
    return info


def _copy_store(kept: Path, into: Path) -> Path:
    """A fresh copy of the prepared ``state.db`` and its ``state.snapshots`` folder."""
    shutil.copy2(kept / "state.db", into / "state.db")
    shutil.copytree(kept / "state.snapshots", into / "state.snapshots")
    for extra in ("state.db-wal", "state.db-shm"):
        (into / extra).unlink(missing_ok=True)
    return into / "state.db"


def run_plan(
    engine_name: str, folder: Path, data: Path, customers: int, spark_conf: dict[str, str]
) -> dict[str, Any]:
    """``Reconciler.plan(Refresh.NONE)`` once in this process; returns the figures."""
    for var, value in CREDENTIALS.items():
        os.environ.setdefault(var, value)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        work = Path(tmp)
        state_db = _copy_store(folder / f"plan-{customers}", work)
        config_path = write_config(work, data, engine_name, spark_conf)

        started = time.perf_counter()
        import httpx

        from reconciler.config import load
        from reconciler.manager import Reconciler
        from reconciler.membership import duckdb as on_duckdb
        from reconciler.membership import spark as on_spark
        from reconciler.plan import Refresh
        from reconciler.plan.changes import LinkChange
        from reconciler.runtime import run
        from reconciler.statestore import StateStore

        config = load(config_path)
        rec = Reconciler(config, StateStore(state_db))
        ready = time.perf_counter()

        # instruments (this process only): HTTP requests sent, and time in the engine's diff
        requests = [0]
        send = httpx.AsyncClient.send

        async def counted(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> Any:
            requests[0] += 1
            return await send(self, *args, **kwargs)

        spent = {"diff": 0.0, "stream": 0.0}

        def timed(label: str, call: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return call(*args, **kwargs)
                finally:
                    spent[label] += time.perf_counter() - t0

            return wrapper

        httpx.AsyncClient.send = counted  # type: ignore[method-assign]
        # the engine's diff: Spark's (and its changed rows), or DuckDB's two steps
        for module, function, label in (
            (on_spark, "spark_diff", "diff"),
            (on_spark, "_rows", "stream"),
            (on_duckdb, "desired_table", "diff"),
            (on_duckdb, "_diff", "diff"),
        ):
            setattr(module, function, timed(label, getattr(module, function)))

        plan = run(rec.plan(Refresh.NONE))
        done = time.perf_counter()
        jvm = jvm_peak_mb() if engine_name == "spark" else None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec.store.close()

    (tp,) = plan.targets
    kinds = Counter(type(c).__name__ for c in tp.changes)
    changed = {c.key for c in tp.changes if isinstance(c, LinkChange)}
    expected = set(perturbed(customers))
    assert requests[0] == 0, f"{requests[0]} HTTP requests sent"
    assert set(kinds) == {"LinkChange"}, f"changes other than link changes: {dict(kinds)}"
    assert len(tp.changes) == len(changed), "more than one link change for a customer"
    assert changed == expected, (
        f"{len(changed)} customers changed, {len(expected)} perturbed: "
        f"{len(changed - expected)} unexpected, {len(expected - changed)} missed"
    )
    from reconciler.plan import changes_digest

    scale = 1024 if sys.platform != "darwin" else 1
    return {
        "engine": engine_name,
        "customers": customers,
        "changed": len(changed),
        "changes": len(tp.changes),
        "kinds": dict(kinds),
        "digest": changes_digest(plan),
        "existing": dict(tp.existing),
        "warnings": list(tp.warnings),
        "requests": requests[0],
        "startup_s": round(ready - started, 2),
        "plan_s": round(done - ready, 2),
        "diff_s": round(spent["diff"], 2),
        "stream_s": round(spent["stream"], 2) if engine_name == "spark" else None,
        "peak_rss_mb": round(peak * scale / 2**20),
        "jvm_peak_mb": jvm,
    }


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (Linux ``/proc``), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def jvm_peak_mb() -> int | None:
    """The peak RSS (``VmHWM``) of the largest java process under this one, in MB."""
    peaks = []
    for pid in _descendants(os.getpid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"java" not in cmdline.split(b"\0", 1)[0]:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) // 1024)
    return max(peaks) if peaks else None


# -- orchestration ------------------------------------------------------------------------------
def setup(mode: str, folder: Path, size: int) -> dict[str, Any]:
    """The data and the plan's state store of one size.

    Run in a child process of its own, like every measure: Linux carries a process's peak RSS
    over to the children it starts (``ru_maxrss`` survives fork and exec), so the parent must
    stay small or every child would report the parent's peak as its own."""
    start = time.perf_counter()
    data = generate(folder, size)
    generated = round(time.perf_counter() - start, 1)
    return {**prepare(folder, data, size), "data": str(data), "generate_s": generated}


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.engines", *args],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"the child {' '.join(args)} failed (exit {out.returncode})")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _conf_args(spark_conf: dict[str, str]) -> list[str]:
    return [a for k, v in spark_conf.items() for a in ("--spark-conf", f"{k}={v}")]


def main_plan(args: argparse.Namespace, folder: Path, spark_conf: dict[str, str]) -> None:
    results: list[dict[str, Any]] = []
    for size in args.sizes:
        info = _child(["--prepare", "plan", str(folder), str(size)])
        data = Path(info["data"])
        if info["reused"]:
            print(f"{size:,} customers: reusing the state store in {folder}", flush=True)
        else:
            print(
                f"{size:,} customers: data {info['generate_s']} s; state store: memberships into a "
                f"State {info['state_s']} s, StateStore.replace {info['replace_s']} s "
                f"({info['customers']:,} customers, {info['links']:,} links, "
                f"{info['changed']:,} perturbed, state.db {info['state_db_mb']} MB)",
                flush=True,
            )
        for name in args.engines:
            r = _child(
                ["--run-plan", name, str(folder), str(data), str(size), *_conf_args(spark_conf)]
            )
            results.append(r)
            print(json.dumps(r), flush=True)
    print()
    print(
        f"{'engine':8} {'customers':>11} {'changed':>8} {'changes':>8} {'startup s':>9} "
        f"{'plan s':>7} {'diff s':>7} {'stream s':>8} {'peak MB':>8} {'JVM MB':>7}"
    )
    for r in results:
        jvm = r["jvm_peak_mb"] if r["jvm_peak_mb"] is not None else "-"
        stream = r["stream_s"] if r["stream_s"] is not None else "-"
        print(
            f"{r['engine']:8} {r['customers']:>11,} {r['changed']:>8,} {r['changes']:>8,} "
            f"{r['startup_s']:>9} {r['plan_s']:>7} {r['diff_s']:>7} {stream:>8} "
            f"{r['peak_rss_mb']:>8} {jvm:>7}"
        )
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(peak MB carries this parent's peak, {floor} MB, the floor of every child's)")
    for size in args.sizes:
        digests = {r["engine"]: r["digest"] for r in results if r["customers"] == size}
        same = len(set(digests.values())) == 1
        print(f"{size:,}: same changes on {', '.join(digests)}: {same}")
        if not same:
            raise SystemExit(f"the engines planned different changes at {size:,} customers")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument(
        "--data", type=Path, default=None, help="keep generated files (and state stores) here"
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the plan's Spark session (the config's spark.conf), repeatable",
    )
    parser.add_argument("--prepare", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--run-plan", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    spark_conf = dict(item.split("=", 1) for item in args.spark_conf)
    if args.prepare:
        mode, folder, size = args.prepare[0], Path(args.prepare[1]), int(args.prepare[2])
        print(json.dumps(setup(mode, folder, size)))
        return
    if args.run_plan:
        engine, folder, data, size = args.run_plan
        print(json.dumps(run_plan(engine, Path(folder), Path(data), int(size), spark_conf)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        folder = (args.data or Path(tmp)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        main_plan(args, folder, spark_conf)


if __name__ == "__main__":
    main()
