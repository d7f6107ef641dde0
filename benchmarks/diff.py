"""The membership diff the plan runs, against DeepDiff and a naive Python loop:
``python -m benchmarks.diff [--customers 100000 1000000]``.

The same two states at each size: the desired members of a seeded config (10 rule-based
segments over generated customers) and "yesterday's" remote (1% churn, one customer in twenty
also holding a segment the config does not manage). Three ways to find what changes:

- ours: the snapshot join of ``reconcile plan`` (:mod:`reconciler.membership.duckdb`): the
  last-applied snapshot (a Parquet file, as the state store writes it) read as the view
  ``last`` and joined in DuckDB with the desired members' masks, only the changing customers
  (and the drift sample's candidates) coming back to Python. The desired members are computed
  into DuckDB first, untimed (the rules' evaluation, not the diff; printed beside);
- DeepDiff over the two states as plain dicts (customer id → sorted segment ids);
- the naive loop: every customer of either side, its managed segments compared as sets.

Each is timed best of ``--repeat``, alternating (the machine's speed drifts), in wall time and
in this process's CPU time (all its threads: DuckDB's included), the figure to read on a
machine other work shares; the counts of changing customers are compared (ours and the loop
must agree; DeepDiff counts items).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _data

#: the segment ids of a snapshot row are joined by this (as the state store writes them)
SEP = "\x1f"
#: the drift sample a plan --refresh=auto draws (its candidates come back with the changes)
SAMPLE = 1000


#: (wall seconds, CPU seconds of this process)
Times = tuple[float, float]


def _timed(fn: Callable[[], Any]) -> tuple[Any, Times]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(frozen=True, slots=True)
class Case:
    """The two states of one size, and the snapshot file of the remote one."""

    config: Any
    desired: Mapping[str, frozenset[str]]
    remote: Mapping[str, list[str]]
    managed: frozenset[str]
    snapshot: Path


def prepare(directory: Path, customers: int, segments: int = 10) -> Case:
    """Customers, a config and yesterday's remote in ``directory``, the remote also written
    as a last-applied snapshot."""
    import pyarrow as pa

    from reconciler.config import load, resolve
    from reconciler.statestore.snapshot import write_file

    _data.generate_customers(directory / "customers.csv", customers)
    config = load(_data.write_config(directory, segments))
    (desired,) = resolve(config).values()
    remote = _data.yesterday(desired.links, _data.segment_ids(segments)).links
    snapshot = directory / "last.parquet"
    table = pa.table(
        {
            "customer_id": pa.array(list(remote), pa.string()),
            "known": pa.array([True] * len(remote), pa.bool_()),
            "segments": pa.array([SEP.join(sorted(s)) for s in remote.values()], pa.string()),
        }
    )
    write_file(table, snapshot)  # as the state store writes it
    return Case(config, dict(desired.links), remote, frozenset(desired.segments), snapshot)


def ours(case: Case) -> tuple[Times, Times, int]:
    """(times of the join, times of the desired members before it, changing customers)."""
    from reconciler.membership import DuckDBDiff
    from reconciler.membership.snapshot import LastApplied
    from reconciler.statestore import Snapshot

    snapshot = Snapshot(case.snapshot, len(case.remote), 0, 0, 0, {})
    frame = LastApplied(snapshot)
    try:
        diff = DuckDBDiff(case.config, _data.TARGET)
        skeleton, desired_t = _timed(lambda: diff.desired(frame.con))
        managed = sorted(set(skeleton.segments) | case.managed)

        def join() -> Any:
            frame.frame()
            return diff.rows(frame.con, managed, SAMPLE, 7, snapshot.customers)

        rows, join_t = _timed(join)
    finally:
        frame.close()
    return join_t, desired_t, len(rows.needed)


def deepdiff(case: Case) -> tuple[Times, int]:
    """(times, items DeepDiff reports) over the two states as plain dicts."""
    from deepdiff import DeepDiff

    remote = {c: sorted(s) for c, s in case.remote.items()}
    desired = {c: sorted(s) for c, s in case.desired.items()}
    found, times = _timed(lambda: DeepDiff(remote, desired))
    return times, sum(len(v) for v in found.values())


def _loop(case: Case) -> int:
    none: frozenset[str] = frozenset()
    changed = 0
    for cid in case.desired.keys() | case.remote.keys():
        want = case.desired.get(cid, none)
        have = case.remote.get(cid)
        if have is None:
            changed += bool(want)  # a new customer is created and linked
        elif set(have) & case.managed != want:
            changed += 1
    return changed


def naive(case: Case) -> tuple[Times, int]:
    """(times, changing customers): every customer of either side, in a Python loop."""
    changed, times = _timed(lambda: _loop(case))
    return times, changed


def measure(customers: int, repeat: int = 3, segments: int = 10) -> dict[str, Any]:
    """The three diffs at one size, best of ``repeat`` each (alternating), wall and CPU."""
    inf = (float("inf"), float("inf"))
    with tempfile.TemporaryDirectory(prefix="diff-bench-") as tmp:
        case = prepare(Path(tmp), customers, segments)
        best: dict[str, Times] = {"ours": inf, "desired": inf, "deepdiff": inf, "naive": inf}
        counts: dict[str, int] = {}

        def keep(name: str, times: Times) -> None:
            best[name] = (min(best[name][0], times[0]), min(best[name][1], times[1]))

        for _ in range(repeat):
            join_t, desired_t, counts["ours"] = ours(case)
            keep("ours", join_t)
            keep("desired", desired_t)
            times, counts["deepdiff"] = deepdiff(case)
            keep("deepdiff", times)
            times, counts["naive"] = naive(case)
            keep("naive", times)
    return {"customers": customers, "seconds": best, "counts": counts}


def report(sizes: tuple[int, ...] = (100_000, 1_000_000), repeat: int = 3) -> None:
    """Print the diff section (what ``python -m benchmarks.scale`` ends with)."""
    print()
    print(
        "membership diff: the plan's snapshot join (DuckDB) / DeepDiff / a naive Python loop, "
        f"same two states (best of {repeat}; wall, and this process's CPU)"
    )
    for size in sizes:
        m = measure(size, repeat)
        s, c = m["seconds"], m["counts"]
        agree = "agree" if c["ours"] == c["naive"] else f"DISAGREE (loop: {c['naive']:,})"
        print(
            f"  {size:>9,} customers: ours {s['ours'][0] * 1000:,.1f} ms wall, "
            f"{s['ours'][1] * 1000:,.1f} ms CPU ({c['ours']:,} changing, the loop's count "
            f"{agree}; the desired members before it: {s['desired'][0]:.2f} s)"
        )
        for name, label in (("deepdiff", "DeepDiff"), ("naive", "naive loop")):
            wall, cpu = s[name]
            floor = " (floor >= 200x)" if name == "deepdiff" else ""
            print(
                f"  {'':>20} {label} {wall:.2f} s wall, {cpu:.2f} s CPU: "
                f"{wall / s['ours'][0]:,.1f}x ours in wall, {cpu / s['ours'][1]:,.1f}x in "
                f"CPU{floor}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    report(tuple(args.customers), args.repeat)


if __name__ == "__main__":
    main()
