"""``reconcile plan --refresh=false`` against a script that only reads the CSV, as commands, and
what separates them: ``python -m benchmarks.startup [--customers N] [--pairs 5]``.

A seeded dataset (1,000,000 customers by default, 10 rule-based segments, one Epsilon target)
and a state store holding yesterday's apply (its snapshot included). Then:

- the split, in one child process, each step timed as the plan runs it: the imports of the
  command and of the plan (``reconciler.cli``, the config, the manager and all they import;
  DuckDB's too), the config's load (YAML, the JSON Schema's compilation and check, the
  meaning checks), the DuckDB connection, the desired members (the rules over the CSV: the
  work the parse floor does too), the snapshot join, and the plan built from it. The parse
  of the command line is in the commands' figures only;
- the two commands run in turn, A B A B ...: each pair's ratio, and their median (pairing
  keeps a ratio fair while the machine's speed drifts).

The plan runs as a user's would: the config's own targets (nothing is read live with
``--refresh=false``), credentials from the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

from benchmarks import _data

ENV = {"BENCH_EPSILON_BEARER_TOKEN": "bench-token", "BENCH_EPSILON_API_KEY": "bench-key"}


def prepare(directory: Path, customers: int, segments: int = 10) -> None:
    """The CSV, the config and the state store of yesterday's apply (with its snapshot)."""
    from reconciler.config import load, resolve
    from reconciler.statestore import StateStore

    _data.generate_customers(directory / "customers.csv", customers)
    config = load(_data.write_config(directory, segments))
    (desired,) = resolve(config).values()
    remote = _data.yesterday(desired.links, _data.segment_ids(segments))
    del desired
    _data.seed_statestore(directory / "state.db", config, remote)
    store = StateStore(directory / "state.db")
    try:
        store.checkpoint(_data.TARGET)  # the snapshot a plan --refresh=false joins
    finally:
        store.close()


class _Clock:
    """Wall and CPU seconds (this process's, all threads) spent in named steps."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {}

    def start(self) -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def add(self, name: str, began: tuple[float, float]) -> None:
        wall, cpu = self.spent.setdefault(name, [0.0, 0.0])
        now = self.start()
        self.spent[name] = [wall + now[0] - began[0], cpu + now[1] - began[1]]

    def wrap(self, name: str, fn: Any) -> Any:
        def timed(*args: Any, **kw: Any) -> Any:
            began = self.start()
            try:
                return fn(*args, **kw)
            finally:
                self.add(name, began)

        self.spent.setdefault(name, [0.0, 0.0])
        return timed


def _split(directory: Path) -> dict[str, Any]:
    """Each step of a plan --refresh=false in this (fresh) process: [wall, CPU] seconds."""
    clock = _Clock()
    began = clock.start()
    import duckdb

    import reconciler.cli  # noqa: F401 - what the command imports before it parses its line
    from reconciler.config import _schema, load
    from reconciler.manager import Reconciler
    from reconciler.membership.duckdb import DuckDBDiff
    from reconciler.plan import Refresh
    from reconciler.runtime import run
    from reconciler.statestore import StateStore

    clock.add("imports (the command's, and those of the plan)", began)
    began = clock.start()
    _schema._compiled(_schema.schema_text())  # what a valid config is checked by
    clock.add("schema compilation (jsonschema-rs, its import included)", began)
    with (
        patch.object(duckdb, "connect", clock.wrap("duckdb connections", duckdb.connect)),
        patch.object(DuckDBDiff, "desired", clock.wrap("desired members", DuckDBDiff.desired)),
        patch.object(DuckDBDiff, "rows", clock.wrap("snapshot join", DuckDBDiff.rows)),
    ):
        began = clock.start()
        config = load(directory / "audiences.yaml")
        clock.add("config load (schema check, imports it needs)", began)
        loading = list(clock.spent["duckdb connections"])
        store = StateStore(directory / "state.db")
        began = clock.start()
        plan = run(Reconciler(config, store).plan(Refresh.NONE))  # as the command runs it
        clock.add("plan", began)
    # each connection is counted once, on its own line: taken out of the load and the plan
    steps = clock.spent
    connected = steps["duckdb connections"]
    plan_s = steps.pop("plan")
    for i in (0, 1):
        steps["config load (schema check, imports it needs)"][i] -= loading[i]
        plan_s[i] -= connected[i] - loading[i] + steps["desired members"][i]
        plan_s[i] -= steps["snapshot join"][i]
    steps["plan build, the state store and the rest"] = plan_s
    return {"steps": clock.spent, "changes": len(plan.targets[0].changes)}


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``, the CPU being the child's own accounting."""
    cpu, start = _cpu_children(), time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start, _cpu_children() - cpu


def commands(directory: Path) -> tuple[list[str], list[str]]:
    """The plan command and the parse script, as argv lists."""
    csv = str(directory / "customers.csv").replace("'", "''")
    parse = [
        sys.executable,
        "-c",
        "import duckdb; duckdb.connect().execute("
        f"\"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', header=true)\")",
    ]
    plan = [sys.executable, "-m", "reconciler", "plan", str(directory / "audiences.yaml")]
    plan += ["--state", str(directory / "state.db"), "--refresh=false"]
    return plan, parse


def paired(directory: Path, pairs: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """((wall, CPU) of the plan, (wall, CPU) of the parse), run in turn after one warm-up."""
    plan, parse = commands(directory)
    env = {**os.environ, **ENV}
    _run(plan, env)
    _run(parse, env)
    return [(_run(plan, env), _run(parse, env)) for _ in range(pairs)]


def report(customers: int = 1_000_000, pairs: int = 5, segments: int = 10) -> None:
    """Print the plan-vs-floor section (what ``python -m benchmarks.scale`` ends with)."""
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        directory = Path(tmp)
        prepare(directory, customers, segments)
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.startup", "--split", str(directory)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **ENV},
        )
        split: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        runs = paired(directory, pairs)
    print()
    print(
        f"plan --refresh=false vs a script that only reads the CSV, as commands: {customers:,} "
        f"customers, {segments} segments, {pairs} pairs run in turn (wall / CPU seconds)"
    )
    for (a, a_cpu), (b, b_cpu) in runs:
        print(
            f"  plan {a:6.2f} / {a_cpu:5.2f}   parse {b:6.2f} / {b_cpu:5.2f}   "
            f"ratio {a / b:.2f} wall, {a_cpu / b_cpu:.2f} CPU"
        )
    wall = statistics.median(a[0] / b[0] for a, b in runs)
    cpu = statistics.median(a[1] / b[1] for a, b in runs)
    print(f"  median of the pairs' ratios: {wall:.2f}x wall, {cpu:.2f}x CPU (floor <= 2x)")
    print(f"  where one plan's time goes ({split['changes']:,} changes planned; wall / CPU):")
    for name, (wall_s, cpu_s) in split["steps"].items():
        print(f"    {name:<48} {wall_s:6.3f} / {cpu_s:6.3f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--split", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.split:
        print(json.dumps(_split(args.split)))
        return
    report(args.customers, args.pairs, args.segments)


if __name__ == "__main__":
    main()
