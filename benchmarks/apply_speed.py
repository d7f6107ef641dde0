"""The apply sections of ``python -m benchmarks.scale``: what an apply reads, and its throughput
against a naive script, measured side by side in one run.

- **reads**: the GET requests of ``reconcile apply`` (its plan, ``--refresh=auto``, then its
  verification, which reads back the customers written, by id, with the drift sample) against
  the pages of one full read (``--refresh=full`` and ``--verify=full`` each make one);
- **throughput**: the apply's changes/s and requests/s per phase (plan, each write step,
  verification), with where the time goes (this process's CPU, the sandbox's, the requests
  in flight), against a naive sequential script (one request per change, no batching, no
  concurrency) run on a copy of the same remote, at the same round trip.

The apply runs in a fresh process (:func:`phase_apply`), the sandbox in its own; the phases
are told apart in the sandbox's request log by the times the apply process records.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _data

__all__ = ["Bench", "Section", "apply_sections", "naive", "phase_apply"]


@dataclass
class Bench:
    """What a section of the scale benchmark measures against: the dataset's folder, the
    running sandbox (its round trip added), the dataset's facts, the options, and how to run
    a phase in a fresh process (``child(name, *args)``)."""

    directory: Path
    sandbox: Any
    info: dict[str, Any]
    args: Any
    child: Callable[..., dict[str, Any]]
    #: the sandbox's fault spec (the round trip it adds), for a second sandbox alike
    faults: str | None = None
    #: the GET requests of one full read (a ``--refresh=full`` plan), once measured
    full_read_gets: int = 0


#: a section measures (given the Bench) and returns what prints its rows, once every section
#: has measured: the figures of one run, side by side
Section = Callable[[Bench], Callable[[], None]]


def _cpu_of(pid: int) -> float:
    """Seconds of CPU process ``pid`` has used (user + system), from ``/proc``."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the apply, in a fresh process ------------------------------------------------------------
def phase_apply(directory: Path, url: str) -> dict[str, Any]:
    """``reconcile apply`` as the library runs it: the auto plan, the writes, the verification;
    each phase's wall and CPU time, with the times (``time.time()``) between them."""
    import gc

    from benchmarks.scale import _reconciler
    from reconciler.plan import Refresh, plan_json
    from reconciler.providers.epsilon import EpsilonProvider
    from reconciler.runtime import run

    marks: list[tuple[str, float, float]] = [("start", time.time(), time.process_time())]
    limits: list[tuple[int, int]] = []
    close = EpsilonProvider.aclose

    async def aclose(self: Any) -> None:  # the integration client's limit, as it ended
        limits.append((self._integration.slots.limit, self._integration.slots.peak))
        await close(self)

    EpsilonProvider.aclose = aclose  # type: ignore[method-assign]
    rec = _reconciler(directory, url)
    # the width may grow from 16 to 64 while the round trip holds (the target's max_concurrency)
    settings = {k: dict(v) for k, v in rec.overrides.settings.items()}
    settings.setdefault("epsilon", {})["max_concurrency"] = 64
    rec.overrides = dataclasses.replace(rec.overrides, settings=settings)
    plan = run(rec.plan(Refresh.AUTO))
    marks.append(("plan", time.time(), time.process_time()))
    (directory / "plan.json").write_text(plan_json(plan, indent=None), encoding="utf-8")

    def report(event: Any) -> None:
        if event.kind == "end":
            marks.append((event.step, time.time(), time.process_time()))

    marks.append(("saved", time.time(), time.process_time()))
    gc.freeze()  # as `reconcile apply` does around an apply
    try:
        (result,) = run(rec.apply(plan, reporter=report))
    finally:
        gc.unfreeze()
    marks.append(("verify", time.time(), time.process_time()))
    (tp,) = plan.targets
    steps = {step.name: len(changes) for step, changes in tp.by_step()}
    return {
        "marks": marks,
        "steps": steps,
        "changes": len(tp.changes),
        "applied": result.applied,
        "failures": len(result.failures),
        "retries": result.retries,
        "remaining": result.remaining,
        "written": len(tp.customers_written),
        "limit": limits[1],  # the plan's client closes first, then the apply's
    }


# -- the naive script -------------------------------------------------------------------------
def naive(url: str, plan_path: Path, sample: int) -> dict[str, Any]:
    """One request per change, in order, one at a time, no batching: creates, then links."""
    import httpx

    from reconciler.plan import plan_from_json
    from reconciler.plan.changes import CustomerChange, LinkChange
    from reconciler.sandbox import EPSILON_API_KEY

    (tp,) = plan_from_json(plan_path.read_text(encoding="utf-8")).targets
    links = [c for c in tp.changes if isinstance(c, LinkChange)]
    new = {c.key for c in tp.changes if isinstance(c, CustomerChange)}
    ratio = len(links) / (len(links) + len(new))
    stride = max(1, round(len(links) / (sample * ratio)))
    picked = links[::stride]
    creates = [c.key for c in picked if c.key in new]
    headers = {"Authorization": f"Basic {EPSILON_API_KEY}", "accept": "application/json"}
    sent = 0
    with httpx.Client(base_url=f"{url}/epsilon", headers=headers, trust_env=False) as client:
        start = time.perf_counter()
        for cid in creates:
            client.post("/v1/customers", json={"customers": [{"id": cid}]}).raise_for_status()
            sent += 1
        for change in picked:
            body = {
                "customerId": change.key,
                "teamId": _data.RETAILER,
                "segments": {"segmentIds": sorted(change.after)},
            }
            client.post("/v1/customers/manage-segments", json=body).raise_for_status()
            sent += 1
        seconds = time.perf_counter() - start
    return {"changes": sent, "seconds": seconds, "rate": sent / seconds}


# -- the sections -----------------------------------------------------------------------------
def _phases(apply: dict[str, Any], log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per phase of the apply: its wall and CPU time, its requests (GET / others) from the
    sandbox's log."""
    phases = []
    for (_, t0, c0), (name, t1, c1) in itertools.pairwise(apply["marks"]):
        if name == "saved":  # the plan written to a file, for the naive script
            continue
        inside = [r for r in log if t0 <= r["time"] < t1]
        phases.append(
            {
                "name": name,
                "wall": t1 - t0,
                "cpu": c1 - c0,
                "gets": sum(1 for r in inside if r["method"] == "GET"),
                "writes": sum(1 for r in inside if r["method"] != "GET"),
                "changes": apply["steps"].get(name, 0),
            }
        )
    return phases


def _row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>16}  {note}")


def apply_sections(bench: Bench) -> Callable[[], None]:
    """Measure the apply and the naive script; return what prints the two sections."""
    import shutil

    from reconciler.sandbox import Sandbox

    sb, big = bench.sandbox, bench.directory
    shutil.copy(big / "sandbox.db", big / "naive.db")  # the remote before the apply
    since = sb.requests()[-1]["id"] if sb.requests() else 0
    pid = sb._proc.pid if sb._proc is not None else None
    before = _cpu_of(pid) if pid else 0.0
    apply = bench.child("apply", str(big), sb.url)
    sandbox_cpu = (_cpu_of(pid) - before) if pid else 0.0
    log = sb.requests(since=since)
    phases = _phases(apply, log)
    with Sandbox(
        big / "naive.db", subprocess=True, talonone_rate_limit=0, faults=bench.faults
    ) as other:
        slow = naive(other.url, big / "plan.json", bench.args.naive_sample)

    def show() -> None:
        _print_reads(bench, phases, apply)
        _print_throughput(bench, phases, apply, slow, sandbox_cpu)

    return show


def _print_reads(bench: Bench, phases: list[dict[str, Any]], apply: dict[str, Any]) -> None:
    plan, *_, verify = phases
    full = bench.full_read_gets
    print()
    print(f"apply's reads ({bench.info['desired_customers']:,} customers desired)")
    _row(
        "apply's plan (--refresh=auto): GET requests",
        f"{plan['gets']:,}",
        f"the customers that change + the sample; a full read: {full:,} pages",
    )
    _row(
        "apply's verification: GET requests",
        f"{verify['gets']:,}",
        f"reads back the {apply['written']:,} customers written + the sample, by id",
    )
    both = plan["gets"] + verify["gets"]
    _row(
        "apply's reads / --refresh=full --verify=full",
        f"{both:,} / {2 * full:,}",
        f"{2 * full / max(1, both):.0f}x fewer requests (they follow the change)",
    )


def _print_throughput(
    bench: Bench,
    phases: list[dict[str, Any]],
    apply: dict[str, Any],
    slow: dict[str, Any],
    sandbox_cpu: float,
) -> None:
    print()
    print(f"apply vs a naive script ({bench.args.latency_ms:g} ms round trip, sandbox apart)")
    for p in phases:
        requests = p["gets"] + p["writes"]
        rate = f"{p['changes'] / p['wall']:,.0f} changes/s, " if p["changes"] else ""
        _row(
            f"  {p['name']}: {requests:,} requests in {p['wall']:.2f} s",
            f"{requests / p['wall']:,.0f} req/s",
            f"{rate}this process's CPU {p['cpu']:.2f} s ({p['cpu'] / p['wall']:.0%} of it)",
        )
    writes = [p for p in phases[1:-1] if p["changes"]]
    wall = sum(p["wall"] for p in writes)
    cpu = sum(p["cpu"] for p in writes)
    requests = sum(p["writes"] for p in writes)
    rate = apply["changes"] / wall
    limit, peak = apply["limit"]
    minimal = bench.info["churn"]["minimal_writes"]
    _row(
        "apply write requests / minimal",
        f"{requests:,} / {minimal:,}",
        f"ratio {requests / minimal:.2f} (must be 1.00)",
    )
    _row(
        "apply throughput (reconciler, the writes)",
        f"{rate:,.0f} changes/s",
        f"{apply['changes']:,} changes in {wall:.2f} s, {requests:,} requests, "
        f"{apply['failures']} failures, {apply['retries']} retries",
    )
    _row(
        "apply throughput (naive sequential)",
        f"{slow['rate']:,.0f} changes/s",
        f"{slow['changes']:,} sampled in {slow['seconds']:.1f} s; the reconciler "
        f"{rate / slow['rate']:.1f}x faster (target >= 20x)",
    )
    _row(
        "  where the writes' time goes",
        f"{wall:.2f} s",
        f"this process's CPU {cpu / max(1, requests) * 1000:.2f} ms a request; the "
        f"sandbox's CPU {sandbox_cpu:.2f} s over the whole apply; in flight: limit "
        f"{limit} at the end, {peak} at most",
    )
    _row("plan after apply (its verification)", f"{apply['remaining']} changes", "(must be 0)")
