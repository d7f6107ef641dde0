"""What ``reconcile refresh`` records in place of the last-applied state, and what that
rewrites. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ..model import Segment, State
from ..plan import RemoteState, Source
from ..plan.changes import Phase

__all__ = ["RefreshResult", "refreshed_state", "store_changes"]


def refreshed_state(
    last: State, live: RemoteState, *, segment_fields: Sequence[str] = ("name", "description")
) -> State:
    """What ``reconcile refresh`` records: the live read for every phase the platform can read,
    the last-applied state for the others.

    Segments stay those the state store manages (recording every audience on the platform would
    make the reconciler manage, and delete, segments it never made): a managed segment gone
    from the platform is dropped, the others take the platform's values of the fields it
    carries and keep the rest (a description the platform does not hold).
    """
    read = {p for p, src in live.sources.items() if src is Source.LIVE}
    now = live.state
    segments: Mapping[str, Segment] = last.segments
    access: Mapping[str, frozenset[str]] = last.access
    if Phase.SEGMENTS in read:
        kept: dict[str, Segment] = {}
        for seg_id, seg in last.segments.items():
            there = now.segments.get(seg_id)
            if there is not None:
                values = {f: getattr(there, f) for f in segment_fields}
                kept[seg_id] = Segment(
                    seg_id,
                    values.get("name", seg.name),
                    values.get("description", seg.description),
                )
        segments = MappingProxyType(kept)
        access = MappingProxyType({k: v for k, v in access.items() if k in kept})
    if Phase.ACCESS in read:
        access = MappingProxyType({k: v for k, v in now.access.items() if k in segments})
    return State(
        segments=segments,
        access=access,
        customers=now.customers if Phase.CUSTOMERS in read else last.customers,
        links=now.links if Phase.LINKS in read else last.links,
    )


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh did to the state store of one target."""

    target: str
    #: what the rewrite changed, per kind (see :func:`store_changes`); empty: nothing did
    changes: Mapping[str, int]
    #: phases the platform cannot read, kept as last applied
    kept: tuple[str, ...] = ()
    #: whether the membership snapshot was rewritten from the database instead (its file
    #: could not be read, and nothing else changed)
    rewritten: bool = False


def _changed_keys(
    before: Mapping[str, object], after: Mapping[str, object]
) -> tuple[int, int, int]:
    """(added, removed, changed) keys between two mappings."""
    added = sum(1 for k in after if k not in before)
    removed = sum(1 for k in before if k not in after)
    changed = sum(1 for k, v in before.items() if k in after and after[k] != v)
    return added, removed, changed


def store_changes(before: State, after: State) -> dict[str, int]:
    """What rewriting the state store from ``before`` to ``after`` changes, per kind (only the
    kinds that change): ``segments added|removed|updated``, ``access rewritten``, ``customers
    added|removed``, ``links rewritten`` (customers whose recorded segments change)."""
    out: dict[str, int] = {}

    def put(kind: str, n: int) -> None:
        if n:
            out[kind] = n

    added, removed, updated = _changed_keys(before.segments, after.segments)
    put("segments added", added)
    put("segments removed", removed)
    put("segments updated", updated)
    put("access rewritten", sum(_changed_keys(before.access, after.access)))
    put("customers added", len(after.customers - before.customers))
    put("customers removed", len(before.customers - after.customers))
    put("links rewritten", sum(_changed_keys(before.links, after.links)))
    return out
