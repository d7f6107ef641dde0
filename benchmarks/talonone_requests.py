"""Write requests for Talon.One membership changes of uneven size per customer.

Run: ``python -m benchmarks.talonone_requests [--customers N]``.

Scenario (``--customers N``, 100,000 by default): eight audiences ``bench-0`` .. ``bench-7``;
customer ``i`` was yesterday in ``bench-0`` .. ``bench-(i mod 3 - 1)`` and should be today in
``bench-3`` .. ``bench-(2 + i mod 6)`` instead, so customers carry 0 to 7 membership changes
each (3.5 on average, 7 x N / 2 in all) — uneven sizes are what a packer that fills
requests customer by customer, or batch by batch, gets wrong. The sandbox runs in its own
process (``Sandbox(subprocess=True)``) with its Management API rate limit off; the audiences and
yesterday's memberships are seeded. Then, as the reconciler does it: the provider reads the
remote (the CSV exports), ``build_target_plan`` diffs, and the real executor (``apply_target``)
writes. Write requests are counted from the sandbox's request log; the floor is
``ceil(changes / 1000)`` (1000 adds + deletes per request), and the run fails (exit 1) above
it. A verify read then checks that a second plan is empty.

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

from reconciler.apply import ApplyResult, apply_target
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import RemoteState, TargetPlan, build_target_plan
from reconciler.plan.diff import Ownership
from reconciler.providers.base import ProviderContext, ReadScope
from reconciler.providers.talonone import MAX_ACTIONS, TalonOneProvider
from reconciler.sandbox import Sandbox, seed_state
from reconciler.statestore import StateStore

TARGET = "talonone-bench"
PLATFORM = "audience-reconciler-bench"
WRITES = ("POST", "PUT", "DELETE")


def _provider(sandbox: Sandbox, store: StateStore, tmp: Path) -> TalonOneProvider:
    settings, credentials = TalonOneProvider.sandbox_overrides(sandbox)
    return TalonOneProvider(
        TARGET,
        {**settings, "platform_name": PLATFORM, "management_rps": 1_000_000.0},
        credentials,
        ProviderContext(store, tmp),
    )


AUDIENCES = [f"bench-{j}" for j in range(8)]


def _yesterday(i: int) -> list[str]:
    return AUDIENCES[: i % 3]


def _today(i: int) -> list[str]:
    return AUDIENCES[3 : 3 + i % 6]


def _desired(customers: list[str]) -> State:
    builder = StateBuilder()
    for seg in AUDIENCES:
        builder.add_segment(Segment(seg, seg.title()))
    for i, cid in enumerate(customers):
        if _today(i):
            builder.set_links(cid, builder.share(_today(i)))
    return builder.build()


def _seed(customers: list[str]) -> list[dict[str, object]]:
    members: dict[str, list[str]] = {seg: [] for seg in AUDIENCES}
    for i, cid in enumerate(customers):
        for seg in _yesterday(i):
            members[seg].append(cid)
    return [
        {"integrationId": seg, "name": seg.title(), "integration": PLATFORM, "members": ids}
        for seg, ids in members.items()
    ]


async def _read(provider: TalonOneProvider, desired: State) -> RemoteState:
    try:
        return await provider.read(ReadScope(segments=frozenset(desired.segments)))
    finally:
        await provider.aclose()


async def _apply(provider: TalonOneProvider, plan: TargetPlan, store: StateStore) -> ApplyResult:
    try:
        return await apply_target(provider, plan, store)
    finally:
        await provider.aclose()


def _plan(remote: RemoteState, desired: State, store: StateStore) -> TargetPlan:
    ownership = Ownership(managed=store.managed_segments(TARGET), marked=remote.marked)
    caps = TalonOneProvider.capabilities
    return build_target_plan(TARGET, "talonone", caps, desired, remote, ownership)


def run(n_customers: int, tmp: Path) -> int:
    customers = [f"cust-{i:07d}" for i in range(n_customers)]
    desired = _desired(customers)
    store = StateStore(tmp / "state.db")
    with Sandbox(tmp / "sandbox.db", subprocess=True, talonone_rate_limit=0.0) as sandbox:
        seed_state(sandbox, {"talonone": {"audiences": _seed(customers)}})
        started = time.perf_counter()
        remote = asyncio.run(_read(_provider(sandbox, store, tmp), desired))
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        plan = _plan(remote, desired, store)
        plan_s = time.perf_counter() - started
        changes = plan.counts.links_add + plan.counts.links_remove
        log = sandbox.requests()
        since = log[-1]["id"] if log else 0
        started = time.perf_counter()
        result = asyncio.run(_apply(_provider(sandbox, store, tmp), plan, store))
        apply_s = time.perf_counter() - started
        writes = [r for r in sandbox.requests(since) if r["method"] in WRITES]
        statuses = sorted({r["status"] for r in writes})
        verify = _plan(asyncio.run(_read(_provider(sandbox, store, tmp), desired)), desired, store)
    floor = math.ceil(changes / MAX_ACTIONS)
    print(f"customers            {n_customers:>12,}")
    print(
        f"membership changes   {changes:>12,}  ({plan.counts.links_add:,} adds, "
        f"{plan.counts.links_remove:,} deletes)"
    )
    exports = f"audience list + {len(AUDIENCES)} CSV exports"
    print(f"read remote          {read_s:>12.2f} s  ({exports})")
    print(f"diff + plan          {plan_s:>12.2f} s")
    print(
        f"apply                {apply_s:>12.2f} s  ({changes / apply_s:,.0f} changes/s, "
        f"{result.batches} batches)"
    )
    print(f"write requests       {len(writes):>12,}  (floor {floor}; statuses {statuses})")
    print(f"failures             {len(result.failures):>12,}")
    print(f"changes left after   {len(verify.changes):>12,}")
    ok = len(writes) <= floor and not result.failures and not verify.changes
    print("OK" if ok else "FAILED: more requests than the floor, failures, or not converged")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="talonone-bench-") as tmp:
        code = run(args.customers, Path(tmp))
    sys.exit(code)


if __name__ == "__main__":
    main()
