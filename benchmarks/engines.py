"""Plan 10 segments over N customers from Parquet on DuckDB and on Spark (local mode): the rules
and the membership diff run in the engine, only the changed ids stream back in Arrow batches.

    python -m benchmarks.engines [--sizes 1000000 10000000] [--engines duckdb spark]

For each size, a seeded Parquet table of customers is generated with DuckDB, and a snapshot of
"last confirmed" memberships is written from slightly different rules (so a few % of pairs
change). Each (engine, size) plans in its own process: wall time (split into the counted diff
and the streaming of its rows), the rows that stream back, and the peak RSS of the reconciler's
Python process, read from ``ru_maxrss``; for Spark, the JVM's peak apart (``VmHWM`` of the java
process under ours, read before the session stops). The point: the reconciler's peak must not
grow with the table, only with the batch; DuckDB's own working set is capped by
``--memory-limit`` (it spills beyond it).

    python -m benchmarks.engines --sizes 1000000 10000000 --memory-limit 256MB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from reconciler.config._rules import AllOf, Compare, Not, Rule
from reconciler.engines import DuckDBEngine, SegmentRule, SourceRef, SparkEngine
from reconciler.engines._sql import DUCKDB_SQL, members_query

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


def generate(folder: Path, customers: int) -> tuple[Path, Path]:
    data = folder / f"customers-{customers}.parquet"
    snapshot = folder / f"snapshot-{customers}.parquet"
    con = duckdb.connect()
    con.execute(f"SELECT setseed({SEED})")
    if not data.exists():
        con.execute(
            f"""COPY (SELECT 'c' || i AS customer_id,
                   (random() * 100)::BIGINT AS spend,
                   round(random() * 7, 1) AS visits,
                   ['north', 'south', 'east', 'west'][1 + (i % 4)] AS region,
                   ['bronze', 'silver', 'gold', 'platinum', 'none'][1 + ((i * 7919) % 5)::BIGINT]
                     AS tier,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 'c' || i || '@example.com' END AS email,
                   DATE '2015-01-01' + (i % 3000)::INTEGER AS signup_date
                 FROM range({customers}) AS t(i)) TO '{data}' (FORMAT parquet)"""
        )
    if not snapshot.exists():
        q = members_query(DUCKDB_SQL, f"read_parquet('{data}')", "customer_id", COLUMNS, rules(1))
        con.execute(f"COPY ({q.sql}) TO '{snapshot}' (FORMAT parquet)", list(q.params))
    con.close()
    return data, snapshot


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


def run(engine_name: str, data: Path, snapshot: Path, memory_limit: str) -> dict[str, Any]:
    """Plan once in this process; returns the figures."""
    source = SourceRef("customers", "customer_id", COLUMNS, path=data, format="parquet")
    started = time.perf_counter()
    engine = (
        DuckDBEngine(memory_limit=memory_limit)
        if engine_name == "duckdb"
        else SparkEngine("local[*]")
    )
    jvm: int | None = None
    try:
        if isinstance(engine, SparkEngine):
            _ = engine.session  # start-up apart from the plan
        ready = time.perf_counter()
        delta = engine.diff(source, rules(), snapshot)
        counted = time.perf_counter()
        rows = max_batch = 0
        for batch in delta:
            rows += batch.num_rows
            max_batch = max(max_batch, batch.num_rows)
        done = time.perf_counter()
        if engine_name == "spark":
            jvm = jvm_peak_mb()
    finally:
        engine.close()
    scale = 1024 if sys.platform != "darwin" else 1
    return {
        "engine": engine_name,
        "startup_s": round(ready - started, 2),
        "plan_s": round(done - ready, 2),
        "count_s": round(counted - ready, 2),
        "stream_s": round(done - counted, 2),
        "desired": delta.counts.desired,
        "snapshot": delta.counts.snapshot,
        "adds": delta.counts.adds,
        "removes": delta.counts.removes,
        "streamed": rows,
        "max_batch": max_batch,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20),
        "jvm_peak_mb": jvm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--data", type=Path, default=None, help="keep generated files here")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's memory_limit")
    parser.add_argument(
        "--run", nargs=3, metavar=("ENGINE", "DATA", "SNAPSHOT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.run[0], Path(args.run[1]), Path(args.run[2]), args.memory_limit)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        folder = args.data or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"{'engine':8} {'customers':>11} {'pairs':>11} {'delta':>9} {'startup s':>9} "
            f"{'plan s':>8} {'count s':>8} {'stream s':>8} {'peak MB':>8} {'JVM MB':>7}"
        )
        for size in args.sizes:
            data, snapshot = generate(folder, size)
            for name in args.engines:
                out = (
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.engines",
                            "--memory-limit",
                            args.memory_limit,
                            "--run",
                            name,
                            str(data),
                            str(snapshot),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                r = json.loads(out)
                jvm = r["jvm_peak_mb"] if r["jvm_peak_mb"] is not None else "-"
                print(
                    f"{name:8} {size:>11,} {r['desired']:>11,} {r['streamed']:>9,} "
                    f"{r['startup_s']:>9} {r['plan_s']:>8} {r['count_s']:>8} {r['stream_s']:>8} "
                    f"{r['peak_rss_mb']:>8} {jvm:>7}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
