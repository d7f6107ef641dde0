"""Batches: a step's changes packed into write requests, each sent (and split in halves when the
platform refuses it whole), and what an earlier failure keeps from being sent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .._logging import fields, logger
from ..exceptions import BatchRejected, RemoteError
from ..plan.changes import Action, Change, LinkChange, Phase
from ..providers.base import ItemResult, Provider

__all__ = ["Batch", "blocked_by", "pack", "send"]

log = logger("apply")


@dataclass(frozen=True, slots=True)
class Batch:
    """One write request's changes (``parts``), each the whole or a part of the change of the
    step at the same place in ``origins``."""

    parts: list[Change]
    origins: list[int]


def pack(provider: Provider, changes: Sequence[Change], size: int) -> Iterator[Batch]:
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
                    yield Batch(parts, origins)
                    parts, origins, room = [], [], size
                    continue
                # the part that fills this batch; alone and unsplittable, the whole of it
                parts.append(rest if cut is None else cut[0])
                origins.append(index)
                rest = None if cut is None else cut[1]
                room = 0
            if room <= 0:
                yield Batch(parts, origins)
                parts, origins, room = [], [], size
    if parts:
        yield Batch(parts, origins)


async def send(provider: Provider, phase: Phase, batch: Sequence[Change]) -> list[ItemResult]:
    """Write a batch; split it when the platform refuses it whole."""
    try:
        results = await provider.write(phase, batch)
    except BatchRejected as exc:
        if len(batch) == 1:
            log.info(
                "%s %s: %s refused: %s",
                provider.name,
                phase.value,
                batch[0].key,
                exc,
                extra=fields("refused", target=provider.name, phase=phase.value, size=1),
            )
            return [ItemResult(batch[0].key, False, str(exc))]
        mid = len(batch) // 2
        log.info(
            "%s %s: a batch of %d refused whole, sent again in halves",
            provider.name,
            phase.value,
            len(batch),
            extra=fields("split", target=provider.name, phase=phase.value, size=len(batch)),
        )
        return await send(provider, phase, batch[:mid]) + await send(provider, phase, batch[mid:])
    except RemoteError as exc:
        log.warning(
            "%s %s: a batch of %d failed: %s",
            provider.name,
            phase.value,
            len(batch),
            exc,
            extra=fields(
                "batch", target=provider.name, phase=phase.value, size=len(batch), status="failed"
            ),
        )
        return [ItemResult(c.key, False, str(exc)) for c in batch]
    if len(results) != len(batch):  # pragma: no cover - provider contract
        raise RemoteError(f"{provider.name}: {len(results)} results for {len(batch)} changes")
    return results


def blocked_by(change: Change, failed: dict[Phase, set[str]]) -> str:
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
