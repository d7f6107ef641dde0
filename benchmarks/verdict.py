"""What judging a plan costs at plan time, against the plan's own counts:

    python -m benchmarks.verdict [--changes 1000000] [--segments 10] [--repeat 3]

Builds one target's plan of ``--changes`` link changes (each customer leaves one of two
segments) and a review of ``--segments`` segments, each past its removal guard, then times
:func:`reconciler.plan.judge` (every rule: prevent_destroy, the target's delete shares, each
segment's guards) and :attr:`TargetPlan.counts` over the same plan. Prints the best of
``--repeat`` runs of each and their ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from reconciler.plan import Guards, SegmentReview, SegmentStatus, TargetPlan, judge
from reconciler.plan.changes import LinkChange


def _plan(changes: int, segments: int) -> TargetPlan:
    before, after = frozenset({"s0", "s1"}), frozenset({"s0"})
    links = tuple(LinkChange(f"c{i:08d}", before, after) for i in range(changes))
    review = tuple(
        SegmentReview(f"s{i}", f"S{i}", SegmentStatus.MEMBERS, 2 * changes, changes, 0, changes)
        for i in range(segments)
    )
    existing = {"links": 3 * changes, "customers": changes, "segments": segments}
    return TargetPlan("bench", "epsilon", links, existing=existing, review=review)


def _best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    plan = _plan(args.changes, args.segments)
    refusals = len(judge(plan, Guards()).refusals)
    judged = _best(lambda: judge(plan, Guards()), args.repeat)
    counted = _best(lambda: plan.counts, args.repeat)
    print(f"plan: {args.changes:,} link changes, {args.segments} segments, {refusals} refusals")
    print(f"judge (the verdict):    {judged:8.3f} s")
    print(f"TargetPlan.counts:      {counted:8.3f} s")
    print(f"ratio counts / judge:   {counted / judged:8.1f}x")


if __name__ == "__main__":
    main()
