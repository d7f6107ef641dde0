"""desired x remote → changes. Pure: no I/O, no provider calls, set algebra over ids.

Ownership rules (DESIGN.md): the diff touches only segments the config manages — those it
declares, plus those the state store says this reconciler applied earlier (removing one from the
YAML deletes it). Remote segments that are neither are *unmanaged*: listed, never touched, unless
the target sets ``prune`` and the platform marks the segment as ours (and its id has the prune
prefix). A customer's links to unmanaged segments are always carried over unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from ..model import EMPTY, Segment, State
from .changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    SegmentChange,
    step_of,
)

__all__ = ["Diff", "Ownership", "diff", "segment_fields"]


@dataclass(frozen=True, slots=True)
class Ownership:
    """What the reconciler may touch on one target, besides what the config declares."""

    #: segment ids this reconciler applied before (from the state store)
    managed: frozenset[str] = EMPTY
    #: segment ids to stop managing without deleting (``removed: destroy: false``)
    forget: frozenset[str] = EMPTY
    #: remote segment ids the platform marks as created by us (Epsilon ``sourceId``,
    #: Talon.One ``integration``)
    marked: frozenset[str] = EMPTY
    prune: bool = False
    prune_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...]
    #: remote segments the config does not manage, left alone
    unmanaged: tuple[str, ...]
    #: link changes left unchanged, counted rather than listed
    unchanged_links: int


def segment_fields(before: Segment, after: Segment) -> tuple[str, ...]:
    """The names of the fields that differ between two versions of a segment."""
    if before == after:
        return ()
    return tuple(
        sorted(f.name for f in fields(before) if getattr(before, f.name) != getattr(after, f.name))
    )


def _sorted(changes: Iterable[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda c: (step_of(c), c.key)))


def diff(
    desired: State,
    remote: State,
    ownership: Ownership = Ownership(),
    *,
    access: bool = True,
    customers: bool = True,
    compare: tuple[str, ...] = ("name", "description"),
) -> Diff:
    """Compute the changes that make ``remote`` look like ``desired``.

    ``access`` and ``customers`` say whether the target has those kinds at all (Talon.One has
    no access control and creates customers implicitly); ``compare`` names the segment fields
    the target carries (Talon.One audiences have no description).
    """
    changes: list[Change] = []
    unmanaged: list[str] = []

    # -- segments
    deleted: set[str] = set()
    for seg_id, want_seg in desired.segments.items():
        have_seg = remote.segments.get(seg_id)
        if have_seg is None:
            changes.append(SegmentChange(Action.CREATE, seg_id, None, want_seg))
        elif any(getattr(have_seg, f) != getattr(want_seg, f) for f in compare):
            fields = tuple(f for f in segment_fields(have_seg, want_seg) if f in compare)
            changes.append(SegmentChange(Action.UPDATE, seg_id, have_seg, want_seg, fields))
    for seg_id in sorted(remote.segments.keys() - desired.segments.keys()):
        old = remote.segments[seg_id]
        if seg_id in ownership.forget:
            # released: forgotten once while still managed, then unmanaged (never pruned)
            if seg_id in ownership.managed:
                changes.append(SegmentChange(Action.FORGET, seg_id, old, None))
            else:
                unmanaged.append(seg_id)
        elif seg_id in ownership.managed or (
            ownership.prune
            and seg_id in ownership.marked
            and seg_id.startswith(ownership.prune_prefix or "")
        ):
            changes.append(SegmentChange(Action.DELETE, seg_id, old, None))
            deleted.add(seg_id)
        else:
            unmanaged.append(seg_id)
    managed_now = frozenset(desired.segments) | deleted

    # -- access (a segment without a declared list wants none)
    if access:
        for seg_id in desired.segments:
            want_teams = desired.access.get(seg_id, EMPTY)
            have_teams = remote.access.get(seg_id, EMPTY)
            if want_teams != have_teams:
                action = Action.UPDATE if seg_id in remote.access else Action.CREATE
                changes.append(AccessChange(action, seg_id, have_teams, want_teams))
        for seg_id in deleted:
            have_teams = remote.access.get(seg_id, EMPTY)
            if have_teams:
                changes.append(AccessChange(Action.DELETE, seg_id, have_teams, EMPTY))

    # -- customers (created before they are linked; never deleted: customers are shared)
    if customers:
        changes.extend(
            CustomerChange(Action.CREATE, c) for c in desired.customers - remote.customers
        )

    # -- links: every customer that has, or should have, a managed segment. Both states share
    # one frozenset per distinct membership, so the outcome is computed once per distinct
    # (have, want) pair and looked up for every other customer with the same pair.
    unchanged = 0
    want_links = desired.links
    have_get = remote.links.get
    outcome: dict[tuple[frozenset[str], frozenset[str]], frozenset[str] | None] = {}
    for customer, want in want_links.items():
        have = have_get(customer, EMPTY)
        if have is want:
            unchanged += 1
            continue
        pair = (have, want)
        if pair in outcome:
            new = outcome[pair]
        else:
            after = (have - managed_now) | want if have else want
            # None: unchanged; otherwise the same frozenset object for every such customer
            new = outcome[pair] = None if after == have else after
        if new is None:
            unchanged += 1
        else:
            changes.append(LinkChange(customer, have, new))
    touched: dict[frozenset[str], frozenset[str] | None] = {}
    for customer, have in remote.links.items():
        if customer in want_links:
            continue
        if have in touched:
            rest = touched[have]
        else:
            rest = touched[have] = None if have.isdisjoint(managed_now) else have - managed_now
        if rest is not None:
            changes.append(LinkChange(customer, have, rest))

    return Diff(_sorted(changes), tuple(sorted(unmanaged)), unchanged)
