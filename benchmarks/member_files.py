"""A large member file, one id per line, against the same ids as a CSV column: time and memory.

    python -m benchmarks.member_files [--mib 200] [--repeat 1]

Writes the same seeded ids (DuckDB ``COPY``, no Python loop) twice — ``ids.txt`` (one per line,
``files: [ids.txt]``) and ``ids.csv`` (a header, ``files: [{path: ids.csv, column: id}]``) — and
a one-segment config for each, then runs what ``reconcile validate`` runs (load, then resolve:
the member checks — bad ids located by line, duplicates — and the membership), each in its own
process so that its peak RSS is its own. Prints both side by side and the ratio line/CSV.
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

#: bytes of one line: ``c`` + 10 digits + newline
_LINE = 12

_CONFIG = """version: 1
targets:
  feed:
    type: epsilon-feed
    directory: feed
segments:
  - id: big
    name: Big
    members:
      files: [{entry}]
"""


def generate(directory: Path, ids: int) -> dict[str, Path]:
    import duckdb

    con = duckdb.connect()
    query = f"SELECT 'c' || lpad(i::VARCHAR, 10, '0') AS id FROM range({ids}) t(i)"
    txt, csv = directory / "ids.txt", directory / "ids.csv"
    con.execute(f"COPY ({query}) TO '{txt}' (FORMAT csv, HEADER false)")
    con.execute(f"COPY ({query}) TO '{csv}' (FORMAT csv, HEADER true)")
    con.close()
    configs = {}
    for form, entry in (("lines", "ids.txt"), ("csv", "{path: ids.csv, column: id}")):
        path = directory / f"{form}.yaml"
        path.write_text(_CONFIG.format(entry=entry), encoding="utf-8")
        configs[form] = path
    return configs


def phase(config_path: Path) -> dict[str, Any]:
    """load + resolve in this process: wall time, peak RSS, members found."""
    from reconciler.config import load, resolve

    start = time.perf_counter()
    states = resolve(load(config_path))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "members": sum(len(s.customers) for s in states.values()),
    }


def _child(config_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.member_files", "--phase", str(config_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=float, default=200.0, help="size of the id file")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:
        print(json.dumps(phase(Path(args.phase))))
        return

    ids = int(args.mib * 2**20) // _LINE
    with tempfile.TemporaryDirectory(prefix="member-files-") as tmp:
        started = time.perf_counter()
        configs = generate(Path(tmp), ids)
        size = (Path(tmp) / "ids.txt").stat().st_size
        print(
            f"{ids:,} ids: ids.txt {size / 2**20:.1f} MiB, written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for form, path in configs.items():
                result = _child(path)
                if form not in best or result["seconds"] < best[form]["seconds"]:
                    best[form] = result
        print(f"load + resolve, best of {args.repeat} (each in its own process):")
        for form in ("lines", "csv"):
            r = best[form]
            print(
                f"  {form:<6} {r['seconds']:8.2f} s  peak RSS {r['peak_mib']:8.1f} MiB  "
                f"{r['members']:,} members"
            )
        lines, csv = best["lines"], best["csv"]
        print(
            f"  lines / csv: time {lines['seconds'] / csv['seconds']:.2f}x, "
            f"peak RSS {lines['peak_mib'] / csv['peak_mib']:.2f}x"
        )


if __name__ == "__main__":
    main()
