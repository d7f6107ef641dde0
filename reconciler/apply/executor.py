"""The executor: runs a target's plan step by step, in batches, with bounded concurrency.

- Steps run in :data:`~reconciler.changes.STEPS` order; within a step, batches of the provider's
  size (in its :meth:`~reconciler.providers.base.Provider.cost` of a change) are filled across
  the whole step — a change split over two batches where the platform allows it — and sent by
  a pool of workers (``provider.max_concurrency``), as many at once as the HTTP client's
  limit lets through (``concurrency``, growing while the platform keeps its pace). A change
  split in parts is confirmed, and recorded, when its last part is; it fails whole if any
  part fails.
- Retries live in the HTTP layer (every write is idempotent). A batch the platform rejects as a
  whole is split in halves until the bad items are isolated; they are reported, and the rest goes
  through. The next run retries them, since their change is still in the plan.
- A change that depends on a failed one (a link to a segment or customer that could not be
  created) is not sent, and is reported as skipped.
- Every acknowledged batch is written to the state store and the journal at once, so a run that
  dies halfway loses nothing: the next run re-reads the remote, re-plans, and does only the rest.
- A :class:`Stop` asked for (the CLI asks on SIGINT/SIGTERM) ends the run between batches: no
  new batch is sent, the batches in flight are awaited (up to ``Stop.grace`` seconds, or until
  it is asked again), then cancelled; the run is journalled as ``interrupted`` and its result
  says how many changes were not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from .._limit import NotSent, may_send
from .._logging import fields, logger
from ..exceptions import StateStoreError
from ..plan import TargetPlan
from ..plan.changes import Change, Phase, Step
from ..providers.base import ItemResult, Provider
from ..statestore import StateStore
from .batches import Batch, blocked_by, pack, send
from .results import ApplyEvent, ApplyResult, ItemFailure, Reporter
from .stop import Stop

__all__ = ["apply_target"]

log = logger("apply")


async def apply_target(
    provider: Provider,
    plan: TargetPlan,
    store: StateStore,
    *,
    plan_digest: str = "",
    reporter: Reporter | None = None,
    lock_wait: float = 0.0,
    locked: bool = False,
    stop: Stop | None = None,
) -> ApplyResult:
    """Apply ``plan`` to its target through ``provider``; never raises for per-item failures.

    ``locked``: the caller already holds the target's lock (and planned under it). ``stop``:
    see :class:`Stop`; the result then says ``interrupted`` and how many changes were not sent.
    """
    report = reporter or (lambda _e: None)
    result = ApplyResult(plan.target)
    started = time.monotonic()
    target = plan.target
    with contextlib.nullcontext() if locked else store.lock(target, wait=lock_wait):
        _resume(store, result, report)
        run_id = store.start_run(target, plan_digest)
        status = "failed"
        log.info(
            "%s: apply run %d starts: %d change(s)",
            target,
            run_id,
            len(plan.changes),
            extra=fields("run_start", target=target, run=run_id, changes=len(plan.changes)),
        )

        def finish() -> None:
            _finish(provider, store, run_id, status, result, started)

        try:
            failed: dict[Phase, set[str]] = {}
            for step, changes in plan.by_step():
                if stop is not None and stop.requested:
                    result.unsent += len(changes)
                    continue
                await _run_step(
                    provider, step, changes, store, run_id, failed, result, report, stop
                )
            # what was acknowledged is published (the file feed) and recorded, stopped or not
            await provider.commit()
            result.interrupted = stop is not None and stop.requested
            status = "interrupted" if result.interrupted else "failed" if result.failures else "ok"
            store.checkpoint(target)  # the columnar membership the next plan diffs against
            store.record_sizes(target, run_id)  # each managed segment's members, for history
        except BaseException:
            # the journal may be what cannot be written (a full disk): the error that stopped
            # the run is the one to report; a run left unfinished is reported by the next
            with contextlib.suppress(StateStoreError):
                finish()
            raise
        finish()
    log.info(
        "%s: apply run %d ends %s: %d applied, %d failed, %d unsent, %d requests, %d retries "
        "in %.2f s",
        target,
        run_id,
        status,
        result.applied,
        len(result.failures),
        result.unsent,
        result.requests,
        result.retries,
        result.seconds,
        extra=fields(
            "run_end",
            target=target,
            run=run_id,
            status=status,
            applied=result.applied,
            failed=len(result.failures),
            unsent=result.unsent,
            requests=result.requests,
            retries=result.retries,
            seconds=round(result.seconds, 3),
        ),
    )
    return result


def _finish(
    provider: Provider,
    store: StateStore,
    run_id: int,
    status: str,
    result: ApplyResult,
    started: float,
) -> None:
    """Count the run's requests and time into ``result``, and journal its end."""
    for stats in provider.http_stats():
        result.requests += stats.requests
        result.retries += stats.retries
    result.seconds = time.monotonic() - started
    store.finish_run(
        run_id,
        status,
        {
            "applied": result.applied,
            "failed": len(result.failures),
            "requests": result.requests,
            "retries": result.retries,
            "unsent": result.unsent,
        },
    )


def _resume(store: StateStore, result: ApplyResult, report: Reporter) -> None:
    """Close the runs on the target an earlier process left unfinished, and say so."""
    target = result.target
    result.resumed = store.interrupted_runs(target)
    store.close_interrupted(target)
    for run in result.resumed:
        report(
            ApplyEvent(
                target,
                "",
                "note",
                message=f"an earlier apply (run {run.id}) was interrupted after "
                f"{run.batches} batches ({run.items_ok} changes confirmed); "
                "this run re-read the remote and does only what is left",
            )
        )


async def _run_step(
    provider: Provider,
    step: Step,
    changes: list[Change],
    store: StateStore,
    run_id: int,
    failed: dict[Phase, set[str]],
    result: ApplyResult,
    report: Reporter,
    stop: Stop | None = None,
) -> None:
    target = provider.name
    phase = step.phase
    sendable = _sendable(phase, changes, failed, result)
    total = len(sendable)
    began = time.monotonic()
    log.info(
        "%s: step %s starts: %d change(s) to send, %d skipped",
        target,
        step.name,
        total,
        len(changes) - total,
        extra=fields(
            "phase_start", target=target, step=step.name, size=total, skipped=len(changes) - total
        ),
    )
    report(ApplyEvent(target, step.name, "start", 0, total))
    size = provider.capabilities.batch_size.get(phase, 1)
    batches = list(pack(provider, sendable, size))
    #: per change of the step: parts not answered yet, and the first error of one
    left = [0] * total
    for batch in batches:
        for origin in batch.origins:
            left[origin] += 1
    errors: dict[int, str] = {}
    queue = iter(batches)
    done = 0
    #: the state store could not record: (acknowledged changes not recorded, first error)
    unrecorded: list[tuple[int, StateStoreError]] = []

    async def worker() -> None:
        nonlocal done
        for batch in queue:
            if unrecorded:  # the state store cannot record: send nothing more
                return
            if stop is not None and stop.requested:
                break
            # asked again once the batch holds a connection: it may have waited for one
            may_send.set(lambda: not unrecorded and not (stop is not None and stop.requested))
            try:
                results = await send(provider, phase, batch.parts)
            except NotSent:
                break
            # from here to the record, nothing awaits: a cancellation cannot fall between the
            # platform's acknowledgement and the state store's record of it
            ok, bad = _settle(phase, batch, results, sendable, left, errors)
            try:
                store.record(target, ok)
            except StateStoreError as exc:
                unrecorded.append((len(ok), exc))
                return
            result.applied += len(ok)
            result.batches += 1
            for failure in bad:
                result.failures.append(failure)
                failed.setdefault(phase, set()).add(failure.key)
            done += len(ok) + len(bad)
            try:
                store.record_batch(run_id, step.name, len(batch.parts), len(ok), len(bad))
            except StateStoreError as exc:  # the changes are recorded, the journal is not
                unrecorded.append((0, exc))
                return
            log.debug(
                "%s: step %s: a batch of %d: %d ok, %d failed",
                target,
                step.name,
                len(batch.parts),
                len(ok),
                len(bad),
                extra=fields(
                    "batch",
                    target=target,
                    step=step.name,
                    size=len(batch.parts),
                    ok=len(ok),
                    failed=len(bad),
                    status="ok" if not bad else "failed" if not ok else "partial",
                ),
            )
            report(ApplyEvent(target, step.name, "advance", done, total))

    # as many workers as the client may grow to: its limit decides how many send at once
    workers = max(1, min(provider.max_concurrency, total))
    # every worker finishes the batch it has in flight (and records it if it can) before an
    # error is raised: nothing the platform acknowledged is left to a cancelled task, unless a
    # second signal abandons the batches in flight
    await _join([asyncio.ensure_future(worker()) for _ in range(workers)], stop)
    result.unsent += total - done
    if unrecorded:
        _raise_unrecorded(target, unrecorded)
    log.info(
        "%s: step %s ends: %d of %d answered in %.2f s",
        target,
        step.name,
        done,
        total,
        time.monotonic() - began,
        extra=fields(
            "phase_end",
            target=target,
            step=step.name,
            done=done,
            size=total,
            seconds=round(time.monotonic() - began, 3),
        ),
    )
    report(ApplyEvent(target, step.name, "end", done, total))


def _sendable(
    phase: Phase, changes: list[Change], failed: dict[Phase, set[str]], result: ApplyResult
) -> list[Change]:
    """The changes of a step that earlier failures do not block; the others are reported as
    skipped (and count as failed for the steps after)."""
    sendable: list[Change] = []
    for change in changes:
        why = blocked_by(change, failed)
        if why:
            result.failures.append(ItemFailure(phase.value, change.key, f"skipped: {why}"))
            failed.setdefault(phase, set()).add(change.key)
        else:
            sendable.append(change)
    return sendable


def _settle(
    phase: Phase,
    batch: Batch,
    results: list[ItemResult],
    sendable: list[Change],
    left: list[int],
    errors: dict[int, str],
) -> tuple[list[Change], list[ItemFailure]]:
    """The changes of the step a batch's answers complete: (acknowledged, failed). ``left``
    (parts not answered yet, per change) and ``errors`` (the first error of one) are updated."""
    ok: list[Change] = []
    bad: list[ItemFailure] = []
    for origin, res in zip(batch.origins, results, strict=True):
        if not res.ok:
            errors.setdefault(origin, res.error)
        left[origin] -= 1
        if left[origin]:
            continue  # a part of a change: it counts when its last part is answered
        change = sendable[origin]
        if origin in errors:
            bad.append(ItemFailure(phase.value, change.key, errors[origin]))
        else:
            ok.append(change)
    return ok, bad


def _raise_unrecorded(target: str, unrecorded: list[tuple[int, StateStoreError]]) -> None:
    """The error of a step the state store could not record all of."""
    lost = sum(n for n, _ in unrecorded)
    first = unrecorded[0][1]
    if lost:
        raise StateStoreError(
            f"target {target!r}: {lost} change(s) the platform acknowledged could not be "
            f"recorded: {first}. Nothing more was sent. Free space, then `reconcile "
            "refresh` records what the platform holds, and `reconcile apply` sends what is "
            "left (what the platform cannot read back, again)"
        ) from first
    raise StateStoreError(
        f"target {target!r}: {first}. The changes acknowledged are recorded; nothing more "
        "was sent. Free space, then `reconcile apply` sends what is left"
    ) from first


async def _join(tasks: list[asyncio.Future[None]], stop: Stop | None) -> None:
    """Wait for the workers; when ``stop`` is abandoned (or one fails), cancel the others."""
    if stop is None:
        await asyncio.gather(*tasks)
        return
    abandon = asyncio.ensure_future(stop.wait_abandoned())
    try:
        pending: set[asyncio.Future[None]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(
                [*pending, abandon], return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(abandon)
            failed = any(t is not abandon and not t.cancelled() and t.exception() for t in done)
            if abandon in done or failed:
                break
    finally:
        abandon.cancel()
    for task in tasks:
        task.cancel()  # those still sending; a finished one is left as it is
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome
