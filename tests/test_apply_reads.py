"""An apply's reads follow the change: its plan reads what ``plan --refresh=auto`` reads (the
customers that change and the drift sample), and its verification reads back, by id, the
customers it wrote (and the sample); ``full`` keeps the full reads. Counted in the sandbox's
request log."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from _scenario import cli, one_segment_config
from hostile.remote import FAST_RETRY, FAULT_DELAY, fast_overrides

from reconciler.apply import ApplyEvent
from reconciler.config import load
from reconciler.exceptions import StalePlanError
from reconciler.manager import Reconciler
from reconciler.model import Segment, StateBuilder
from reconciler.plan import Refresh
from reconciler.runtime import Overrides
from reconciler.statestore import StateStore

RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
#: customers that leave the segment, and new customers that join it
CHURN = 10


def cid(i: int) -> str:
    return f"k{i:06d}"


def setup(folder: Path, sandbox: Any, size: int, *, faults: bool = False) -> Reconciler:
    """A target of ``size`` customers, all in one segment yesterday (on the platform and in
    the state store); today the first ``CHURN`` leave it and ``CHURN`` new ones join."""
    today = [cid(i) for i in range(CHURN, size + CHURN)]
    one_segment_config(folder, today, RETAILER)
    ids = [cid(i) for i in range(size)]
    sandbox.seed(
        {
            "epsilon": {
                "segments": [{"segmentId": "big", "name": "Big", "description": "Many shoppers."}],
                "customers": [{"id": c, "segmentIds": ["big"]} for c in ids],
            }
        }
    )
    store = StateStore(folder / "state.db")
    b = StateBuilder().add_segment(Segment("big", "Big", "Many shoppers.")).set_access("big", [])
    b.add_customers(ids)
    for c in ids:
        b.set_links(c, ["big"])
    store.replace("eps", b.build())
    overrides = fast_overrides(sandbox) if faults else Overrides.for_sandbox(sandbox)
    rec = Reconciler(
        load(folder / "audiences.yaml"),
        store,
        overrides=overrides,
        retry=FAST_RETRY if faults else None,
    )
    rec.sample, rec.sample_seed = 40, 3
    return rec


def mark(sandbox: Any) -> int:
    log = sandbox.requests()
    return int(log[-1]["id"]) if log else 0


def gets(sandbox: Any, since: int) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests(since=since) if r["method"] == "GET" and r["status"] == 200]


def asked(requests: list[dict[str, Any]]) -> set[str]:
    """The customer ids the filtered reads among ``requests`` asked for."""
    ids: set[str] = set()
    for r in requests:
        ids.update(urllib.parse.parse_qs(r["query"] or "").get("customerIds", []))
    return ids


def apply_reads(sandbox: Any, rec: Reconciler, **apply: Any) -> tuple[int, int, set[str]]:
    """An apply as `reconcile apply` makes it (auto): the GET requests of its plan and of its
    verification, and the customers the verification asked for."""
    since = mark(sandbox)
    plan = asyncio.run(rec.plan(Refresh.AUTO))
    planned = len(gets(sandbox, since))
    since = mark(sandbox)
    (result,) = asyncio.run(rec.apply(plan, **apply))
    assert result.ok
    assert result.remaining == 0
    verify = gets(sandbox, since)
    return planned, len(verify), asked(verify)


@pytest.mark.parametrize("size", [3_000, 30_000])
def test_an_apply_reads_what_the_change_costs_not_the_audience(
    fresh_sandbox: Any, tmp_path: Path, size: int
) -> None:
    rec = setup(tmp_path, fresh_sandbox, size)
    planned, verified, verify_asked = apply_reads(fresh_sandbox, rec)
    # one filtered read each: the 2 x CHURN customers that change, with the sample of 40
    assert (planned, verified) == (1, 1)
    written = {cid(i) for i in range(CHURN)} | {cid(i) for i in range(size, size + CHURN)}
    assert written <= verify_asked  # every customer written is read back
    assert len(verify_asked - written) == rec.sample  # and the sample, no more
    rec.store.close()


def test_full_refresh_and_full_verify_keep_the_full_reads(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    size = 5_000
    rec = setup(tmp_path, fresh_sandbox, size)
    since = mark(fresh_sandbox)
    plan = asyncio.run(rec.plan(Refresh.FULL))
    assert len(gets(fresh_sandbox, since)) == size // 1000
    since = mark(fresh_sandbox)
    (result,) = asyncio.run(rec.apply(plan, verify=Refresh.FULL))
    assert result.ok
    assert result.remaining == 0
    pages = gets(fresh_sandbox, since)
    assert len(pages) == (size + CHURN) // 1000 + 1  # every page, the customers now held
    assert asked(pages) == set()  # paged, not filtered
    rec.store.close()


def test_verification_reads_back_a_written_customer_the_platform_lost(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    """A write undone on the platform between the apply and its verification (the snapshot
    says it is applied, and no sample picks it) is still found: its customer is read back."""
    rec = setup(tmp_path, fresh_sandbox, 3_000)
    rec.sample = 0
    lost = cid(2)

    def undo(event: ApplyEvent) -> None:
        if event.step == "links" and event.kind == "end":
            fresh_sandbox.seed({"epsilon": {"customers": [{"id": lost, "segmentIds": ["big"]}]}})

    plan = asyncio.run(rec.plan(Refresh.AUTO))
    assert lost in plan.targets[0].customers_written
    (result,) = asyncio.run(rec.apply(plan, reporter=undo))
    assert result.failures == []
    assert result.remaining == 1  # so the result is not ok: run apply again
    assert not result.ok
    rec.store.close()


def test_an_apply_keeps_what_the_platform_added_to_a_customer_it_writes(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    """Epsilon sets a customer's whole segment list: a customer apply writes is read live
    first, so a segment the platform added behind the reconciler's back is carried over."""
    rec = setup(tmp_path, fresh_sandbox, 3_000)
    rec.sample = 0
    theirs = {"segmentId": "x", "name": "X", "description": "Not managed here."}
    fresh_sandbox.seed(
        {
            "epsilon": {
                "segments": [theirs],
                "customers": [{"id": cid(4), "segmentIds": ["big", "x"]}],
            }
        }
    )
    plan = asyncio.run(rec.plan(Refresh.AUTO))
    (result,) = asyncio.run(rec.apply(plan))
    assert result.ok
    assert result.remaining == 0
    held = {c["id"]: c["segmentIds"] for c in fresh_sandbox.state()["epsilon"]["customers"]}
    assert held[cid(4)] == ["x"]
    rec.store.close()


def test_a_plan_from_the_state_store_alone_is_read_live_before_it_is_applied(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    """``refresh: none`` plans from the record: applying it would overwrite what the platform
    changed since. The apply plans again, live, and refuses it when the changes moved."""
    rec = setup(tmp_path, fresh_sandbox, 3_000)
    offline = asyncio.run(rec.plan(Refresh.NONE))
    theirs = {"segmentId": "x", "name": "X", "description": "Not managed here."}
    fresh_sandbox.seed(
        {
            "epsilon": {
                "segments": [theirs],
                "customers": [{"id": cid(4), "segmentIds": ["big", "x"]}],
            }
        }
    )
    with pytest.raises(StalePlanError):
        asyncio.run(rec.apply(offline))
    held = {c["id"]: c["segmentIds"] for c in fresh_sandbox.state()["epsilon"]["customers"]}
    assert held[cid(4)] == ["big", "x"]  # nothing was written
    rec.store.close()


@pytest.mark.parametrize("seed", [3, 11])
def test_an_apply_that_reads_the_change_alone_converges_under_faults(
    fresh_sandbox: Any, tmp_path: Path, seed: int
) -> None:
    """The auto plan and verification, under 20% of requests failing (reads and writes):
    the runs converge to the remote a full read plans nothing against."""
    rec = setup(tmp_path, fresh_sandbox, 3_000, faults=True)
    kinds = "429+500+502+503+timeout+drop+applied500"
    fresh_sandbox.set_faults(f"seed={seed},rate=0.2,kinds={kinds},delay={FAULT_DELAY},route=*")
    for _ in range(3):
        plan = asyncio.run(rec.plan(Refresh.AUTO))
        if not plan.has_changes:
            break
        (result,) = asyncio.run(rec.apply(plan, force=True))
        if result.ok:
            break
    fresh_sandbox.set_faults(None)
    assert not asyncio.run(rec.plan(Refresh.FULL)).has_changes
    held = {c["id"]: c["segmentIds"] for c in fresh_sandbox.state()["epsilon"]["customers"]}
    assert all(held[cid(i)] == [] for i in range(CHURN))
    assert all(held[cid(i)] == ["big"] for i in range(CHURN, 3_000 + CHURN))
    rec.store.close()


def test_apply_refuses_to_plan_from_the_state_store_alone(tmp_path: Path) -> None:
    (tmp_path / "audiences.yaml").write_text("version: 1\n")
    done = cli("apply", str(tmp_path / "audiences.yaml"), "--refresh=false", cwd=tmp_path)
    assert done.returncode == 1
    assert "every customer it writes is read live first" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("apply", str(tmp_path / "audiences.yaml"), "--verify=some", cwd=tmp_path)
    assert done.returncode == 1
    assert "--verify takes 'auto', 'full' or 'false'" in done.stderr
