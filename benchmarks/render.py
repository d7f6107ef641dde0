"""Render a plan of many membership changes as a pull-request comment and for the terminal.

    python -m benchmarks.render [--customers 1000000] [--segments 10] [--repeat 3]

Builds in memory a plan in which every customer enters one of ``--segments`` segments (one link
change each), with the per-segment review filled, then measures the best of ``--repeat``:
  - floor:    grouping the changes by step (``TargetPlan.by_step``), which every renderer does
  - markdown: ``render_markdown`` (the comment, held to GitHub's budget)
  - text:     ``render_text`` (the terminal plan, 50 record lines per step)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from reconciler.plan import Plan, SegmentReview, SegmentStatus, TargetPlan
from reconciler.plan.changes import LinkChange
from reconciler.render import render_markdown, render_text


def build(customers: int, segments: int) -> Plan:
    ids = [f"segment-{s + 1}" for s in range(segments)]
    changes = tuple(
        LinkChange(f"cust_{i:08d}", frozenset(), frozenset({ids[i % segments]}))
        for i in range(customers)
    )
    review = tuple(
        SegmentReview(
            sid,
            f"Segment {s + 1}",
            SegmentStatus.MEMBERS,
            1_000,
            1_000 + customers // segments,
            customers // segments,
            0,
            entering=tuple(c.key for c in changes[s : s + 5 * segments : segments]),
            history=(900, 950, 1_000),
        )
        for s, sid in enumerate(ids)
    )
    target = TargetPlan("epsilon", "epsilon", changes, review=review)
    return Plan("audiences.yaml", "0" * 64, (target,))


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    plan = build(args.customers, args.segments)
    (target,) = plan.targets
    floor = best(target.by_step, args.repeat)
    markdown = best(lambda: render_markdown(plan), args.repeat)
    text = best(lambda: render_text(plan), args.repeat)
    size = len(render_markdown(plan))
    print(f"{args.customers:,} link changes, {args.segments} segments (best of {args.repeat})")
    print(f"  floor (by_step): {floor:.2f} s")
    print(f"  markdown:        {markdown:.2f} s ({markdown / floor:.1f}x), {size:,} characters")
    print(f"  text:            {text:.2f} s ({text / floor:.1f}x)")


if __name__ == "__main__":
    main()
