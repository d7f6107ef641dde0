"""The executor: runs a target's plan step by step, in batches, with bounded concurrency.

- Steps run in :data:`~reconciler.changes.STEPS` order; within a step, batches of the provider's
  size (in its :meth:`~reconciler.providers.base.Provider.cost` of a change) are filled across
  the whole step — a change split over two batches where the platform allows it — and sent by
  a fixed pool of workers (``provider.concurrency``). A change split in parts is confirmed, and
  recorded, when its last part is; it fails whole if any part fails.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ._logging import logger
from .exceptions import BatchRejected, RemoteError, StateStoreError
from .plan import TargetPlan
from .plan.changes import Action, Change, LinkChange, Phase, Step
from .providers.base import ItemResult, Provider
from .statestore import RunRecord, StateStore

__all__ = ["ApplyEvent", "ApplyResult", "ItemFailure", "Stop", "apply_target"]

log = logger("apply")


class Stop:
    """A request to stop an apply between batches, made from outside it (a signal handler).

    The first :meth:`request` stops new batches; the batches in flight are waited for, at most
    ``grace`` seconds from then. A second request (or the end of the grace) abandons them: they
    are cancelled, and whatever they changed on the platform unacknowledged is found and
    finished by the next run, which re-reads the remote. Call it from the event loop's thread
    (``loop.add_signal_handler`` does).
    """

    def __init__(self, grace: float = 10.0) -> None:
        self.grace = grace
        self.reason = ""
        self._asked: asyncio.Event | None = None
        self._abandoned: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def requested(self) -> bool:
        return bool(self.reason)

    @property
    def abandoned(self) -> bool:
        return self._abandoned is not None and self._abandoned.is_set()

    def _event(self) -> asyncio.Event:
        if self._abandoned is None:
            self._abandoned = asyncio.Event()
        return self._abandoned

    def _asked_event(self) -> asyncio.Event:
        if self._asked is None:
            self._asked = asyncio.Event()
        return self._asked

    def request(self, reason: str = "stop") -> None:
        if self.requested:
            self.abandon()
            return
        self.reason = reason
        self._asked_event().set()
        event = self._event()
        self._timer = asyncio.get_running_loop().call_later(self.grace, event.set)

    def abandon(self) -> None:
        self._event().set()
        if self._timer is not None:
            self._timer.cancel()

    async def wait_abandoned(self) -> None:
        await self._event().wait()

    async def wait_requested(self) -> None:
        await self._asked_event().wait()


@dataclass(frozen=True, slots=True)
class ApplyEvent:
    """Progress, for the CLI to render (the library never prints)."""

    target: str
    step: str
    kind: str  # "start" | "advance" | "end" | "note"
    done: int = 0
    total: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    phase: str
    key: str
    error: str


@dataclass(slots=True)
class ApplyResult:
    target: str
    applied: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    batches: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    resumed: list[RunRecord] = field(default_factory=list)
    #: changes still pending after the verify read (None: not verified)
    remaining: int | None = None
    #: changes never sent, or sent and abandoned unacknowledged, because a Stop was asked for
    unsent: int = 0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and not self.remaining and not self.unsent and not self.interrupted


Reporter = Callable[[ApplyEvent], None]


@dataclass(frozen=True, slots=True)
class _Batch:
    """One write request's changes (``parts``), each the whole or a part of the change of the
    step at the same place in ``origins``."""

    parts: list[Change]
    origins: list[int]


def _pack(provider: Provider, changes: Sequence[Change], size: int) -> Iterator[_Batch]:
    """Cut a step's changes into batches of at most ``size`` (in :meth:`Provider.cost`),
    filled in order across the whole step: a change that does not fit in what is left of a
    batch is split (:meth:`Provider.split`) when the platform allows it, else it opens the
    next batch. A change costing more than ``size`` on its own, and unsplittable, goes alone
    (the platform answers for it). Every batch but the last is full when every change splits,
    so a step takes ``ceil(total cost / size)`` batches."""
    size = max(1, size)
    parts: list[Change] = []
    origins: list[int] = []
    room = size
    for index, change in enumerate(changes):
        rest: Change | None = change
        while rest is not None:
            cost = provider.cost(rest)
            if cost <= room:
                parts.append(rest)
                origins.append(index)
                room -= cost
                rest = None
            else:
                cut = provider.split(rest, room)
                if cut is None and parts:  # it starts the next batch
                    yield _Batch(parts, origins)
                    parts, origins, room = [], [], size
                    continue
                # the part that fills this batch; alone and unsplittable, the whole of it
                parts.append(rest if cut is None else cut[0])
                origins.append(index)
                rest = None if cut is None else cut[1]
                room = 0
            if room <= 0:
                yield _Batch(parts, origins)
                parts, origins, room = [], [], size
    if parts:
        yield _Batch(parts, origins)


async def _send(provider: Provider, phase: Phase, batch: Sequence[Change]) -> list[ItemResult]:
    """Write a batch; split it when the platform refuses it whole."""
    try:
        results = await provider.write(phase, batch)
    except BatchRejected as exc:
        if len(batch) == 1:
            log.info("%s %s: %s refused: %s", provider.name, phase.value, batch[0].key, exc)
            return [ItemResult(batch[0].key, False, str(exc))]
        mid = len(batch) // 2
        log.info(
            "%s %s: a batch of %d refused whole, sent again in halves",
            provider.name,
            phase.value,
            len(batch),
        )
        return await _send(provider, phase, batch[:mid]) + await _send(provider, phase, batch[mid:])
    except RemoteError as exc:
        log.warning("%s %s: a batch of %d failed: %s", provider.name, phase.value, len(batch), exc)
        return [ItemResult(c.key, False, str(exc)) for c in batch]
    if len(results) != len(batch):  # pragma: no cover - provider contract
        raise RemoteError(f"{provider.name}: {len(results)} results for {len(batch)} changes")
    return results


def _blocked_by(change: Change, failed: dict[Phase, set[str]]) -> str:
    """Why ``change`` cannot be sent after earlier failures ('' when it can)."""
    if isinstance(change, LinkChange):
        if change.key in failed.get(Phase.CUSTOMERS, ()):
            return f"customer {change.key} could not be created"
        bad = change.added & failed.get(Phase.SEGMENTS, set())
        if bad:
            return f"segment {sorted(bad)[0]} could not be created"
    elif change.phase is Phase.ACCESS and change.key in failed.get(Phase.SEGMENTS, ()):
        return f"segment {change.key} could not be created"
    elif (
        change.phase is Phase.SEGMENTS
        and change.action is Action.DELETE
        and change.key in failed.get(Phase.ACCESS, ())
    ):
        return f"the access list of {change.key} could not be cleared"
    return ""


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
        run_id = store.start_run(target, plan_digest)
        status = "failed"
        log.info("%s: apply run %d starts: %d change(s)", target, run_id, len(plan.changes))

        def finish() -> None:
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
    )
    return result


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
    sendable: list[Change] = []
    for change in changes:
        why = _blocked_by(change, failed)
        if why:
            result.failures.append(ItemFailure(phase.value, change.key, f"skipped: {why}"))
            failed.setdefault(phase, set()).add(change.key)
        else:
            sendable.append(change)
    total = len(sendable)
    began = time.monotonic()
    log.info(
        "%s: step %s starts: %d change(s) to send, %d skipped",
        target,
        step.name,
        total,
        len(changes) - total,
    )
    report(ApplyEvent(target, step.name, "start", 0, total))
    size = provider.capabilities.batch_size.get(phase, 1)
    batches = list(_pack(provider, sendable, size))
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
            results = await _send(provider, phase, batch.parts)
            # from here to the record, nothing awaits: a cancellation cannot fall between the
            # platform's acknowledgement and the state store's record of it
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
            )
            report(ApplyEvent(target, step.name, "advance", done, total))

    workers = max(1, min(provider.concurrency, total))
    # every worker finishes the batch it has in flight (and records it if it can) before an
    # error is raised: nothing the platform acknowledged is left to a cancelled task, unless a
    # second signal abandons the batches in flight
    await _join([asyncio.ensure_future(worker()) for _ in range(workers)], stop)
    result.unsent += total - done
    if unrecorded:
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
    log.info(
        "%s: step %s ends: %d of %d answered in %.2f s",
        target,
        step.name,
        done,
        total,
        time.monotonic() - began,
    )
    report(ApplyEvent(target, step.name, "end", done, total))


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
