"""Resolve rule-based segments over a large customer CSV: wall time and peak memory.

    python -m benchmarks.resolve_rules [--customers 1000000] [--segments 10] [--repeat 3]

Generates a seeded CSV of customers with DuckDB (vectorised, no Python loop), writes a config of
rule-based segments over it, then measures — each phase in its own process so its peak RSS is its
own:
  - parse:   DuckDB reading every column of the file into a table (the floor)
  - scan:    DuckDB evaluating every segment's predicate in one pass (no Python)
  - load:    reconciler.config.load (schema, semantic checks, DESCRIBE, digest)
  - resolve: reconciler.config.resolve (DuckDB + building the State of every target)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._data import RULES, generate_customers


def write_config(directory: Path, segments: int, targets: int = 1) -> Path:
    import yaml

    doc = {
        "version": 1,
        "targets": {
            ("feed" if t == 0 else f"feed-{t + 1}"): {
                "type": "epsilon-feed",
                "directory": f"feed-{t + 1}",
            }
            for t in range(targets)
        },
        "customer_sources": {
            "shoppers": {"path": "customers.csv", "id_column": "customer_id"},
        },
        "segments": [
            {
                "id": f"segment-{i + 1}",
                "name": f"Segment {i + 1}",
                "members": {"rule": RULES[i % len(RULES)]},
                # with several targets, odd segments go to the first target only
                **({"targets": ["feed"]} if targets > 1 and i % 2 else {}),
            }
            for i in range(segments)
        ],
    }
    path = directory / "audiences.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, config_path: Path) -> dict[str, Any]:
    """Run one phase in this process; return its wall time, peak RSS and a result summary."""
    import duckdb

    from reconciler.config import load, resolve
    from reconciler.config._contributions import _contributions

    csv_path = config_path.parent / "customers.csv"
    start = time.perf_counter()
    summary: Any = None
    if name == "parse":
        con = duckdb.connect()
        con.execute(
            f"CREATE TABLE t AS SELECT * FROM read_csv('{csv_path}', header=true)"
        ).fetchall()
        summary = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
        con.close()
    elif name == "scan":
        config = load(config_path)
        start = time.perf_counter()
        con = duckdb.connect()
        (query,) = _contributions(config, list(config.segments), con)
        summary = con.execute(f"SELECT count(*) FROM ({query.sql})", list(query.params)).fetchall()
        summary = summary[0][0]
        con.close()
    elif name == "load":
        summary = len(load(config_path).segments)
    elif name == "resolve":
        config = load(config_path)
        start = time.perf_counter()
        states = resolve(config)
        summary = {t: [len(s.customers), s.link_count()] for t, s in states.items()}
    return {
        "phase": name,
        "seconds": time.perf_counter() - start,
        "peak_mib": _peak_mib(),
        "result": summary,
    }


def _child(name: str, config_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.resolve_rules", "--phase", name, str(config_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("config", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.config))))
        return

    with tempfile.TemporaryDirectory(prefix="resolve-rules-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        generate_customers(directory / "customers.csv", args.customers)
        size = (directory / "customers.csv").stat().st_size
        print(
            f"generated {args.customers:,} customers ({size / 2**20:.1f} MiB CSV) "
            f"in {time.perf_counter() - started:.2f} s"
        )
        config_path = write_config(directory, args.segments, args.targets)
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for name in ("parse", "scan", "load", "resolve"):
                result = _child(name, config_path)
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
        floor = best["parse"]["seconds"]
        print(
            f"{args.segments} rule-based segments, {args.targets} target(s), best of {args.repeat}:"
        )
        for name in ("parse", "scan", "load", "resolve"):
            r = best[name]
            print(
                f"  {name:<8} {r['seconds']:7.3f} s  {r['seconds'] / floor:5.2f}x parse  "
                f"peak RSS {r['peak_mib']:7.1f} MiB  {r['result']}"
            )


if __name__ == "__main__":
    main()
