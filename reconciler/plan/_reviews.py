"""A target's review in audiences (:class:`~reconciler.plan.review.SegmentReview` per managed
segment), assembled from what the plan already holds: the per-segment sizes of the whole
target (:mod:`._sizes`), its changes (the status of each segment, and a few of the customers
that enter and leave it) and each segment's definitions, applied and declared.

The samples are the customers of lowest salted hash among those entering (or leaving) a
segment; the salt is the target and the segment id, so planning the same change again shows
the same customers, and two segments do not show the same few.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..model import State
from ._sizes import Sizes, Tally
from .changes import AccessChange, Action, Change, LinkChange, SegmentChange
from .review import Definition, SegmentReview, SegmentStatus

__all__ = ["SAMPLE", "reviewed_segments", "samples", "segment_reviews", "statuses"]

#: how many customers entering, and how many leaving, a review shows per segment
SAMPLE = 5

_SEGMENT = {
    Action.CREATE: SegmentStatus.CREATED,
    Action.DELETE: SegmentStatus.DELETED,
    Action.FORGET: SegmentStatus.FORGOTTEN,
}


def statuses(changes: Iterable[Change]) -> dict[str, SegmentStatus]:
    """What happens to each segment a change touches, as a whole: its segment change first,
    then an access change (updated), then its members alone."""
    found: dict[str, SegmentStatus] = {}
    members: set[str] = set()
    for change in changes:
        match change:
            case SegmentChange(action=Action.UPDATE, key=seg, fields=fields):
                found[seg] = SegmentStatus.RENAMED if "name" in fields else SegmentStatus.UPDATED
            case SegmentChange(action=action, key=seg):
                found[seg] = _SEGMENT[action]
            case AccessChange(key=seg):
                found.setdefault(seg, SegmentStatus.UPDATED)
            case LinkChange():
                members |= change.added | change.removed
    for seg in members:
        found.setdefault(seg, SegmentStatus.MEMBERS)
    return found


class _Lowest:
    """The ``SAMPLE`` customers of lowest salted hash seen, for one segment and side."""

    def __init__(self, target: str, segment: str) -> None:
        self.key = hashlib.blake2b(f"{target}\x1f{segment}".encode(), digest_size=32).digest()
        self.heap: list[tuple[int, str]] = []  # the largest kept hash first (negated)

    def offer(self, customer: str) -> None:
        digest = hashlib.blake2b(customer.encode(), key=self.key, digest_size=8).digest()
        h = -int.from_bytes(digest, "big")
        if len(self.heap) < SAMPLE:
            heapq.heappush(self.heap, (h, customer))
        elif h > self.heap[0][0]:
            heapq.heapreplace(self.heap, (h, customer))

    def picked(self) -> tuple[str, ...]:
        return tuple(cid for _, cid in sorted(self.heap, reverse=True))


def samples(
    target: str, changes: Iterable[Change]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Per segment, a few of the customers entering it and a few leaving it (lowest salted
    hash first), from the plan's link changes."""
    sides: tuple[dict[str, _Lowest], dict[str, _Lowest]] = ({}, {})
    for change in changes:
        if not isinstance(change, LinkChange):
            continue
        for side, segs in zip(sides, (change.added, change.removed), strict=True):
            for seg in segs:
                lowest = side.get(seg)
                if lowest is None:
                    lowest = side[seg] = _Lowest(target, seg)
                lowest.offer(change.key)
    entering, leaving = ({seg: low.picked() for seg, low in side.items()} for side in sides)
    return entering, leaving


def reviewed_segments(desired: State, changes: Iterable[Change]) -> list[str]:
    """The managed segments a review covers, in id order: the desired ones, and the ones a
    change deletes or forgets."""
    ids = set(desired.segments)
    ids.update(c.key for c in changes if isinstance(c, SegmentChange))
    return sorted(ids)


@dataclass(frozen=True, slots=True)
class _Names:
    desired: State
    remote: State

    def __call__(self, seg: str) -> str:
        found = self.desired.segments.get(seg) or self.remote.segments.get(seg)
        return found.name if found is not None else ""


def segment_reviews(
    target: str,
    desired: State,
    remote: State,
    changes: tuple[Change, ...],
    tally: Tally,
    definitions: Mapping[str, Definition] | None = None,
) -> tuple[SegmentReview, ...]:
    """The review of every managed segment of one target, in segment id order. A forgotten
    segment keeps its members (the platform keeps them; the reconciler stops managing it)."""
    found = statuses(changes)
    sizes = tally.sizes()
    entering, leaving = samples(target, changes)
    ids = reviewed_segments(desired, changes)
    name = _Names(desired, remote)
    reviews: list[SegmentReview] = []
    for seg in ids:
        size = sizes.get(seg, Sizes())
        status = found.get(seg, SegmentStatus.UNCHANGED)
        if status is SegmentStatus.FORGOTTEN:
            size = Sizes(size.before, size.before)
        reviews.append(
            SegmentReview(
                seg,
                name(seg),
                status,
                size.before,
                size.after,
                size.added,
                size.removed,
                entering=entering.get(seg, ()),
                leaving=leaving.get(seg, ()),
                definition=(definitions or {}).get(seg),
            )
        )
    changing = [r.id for r in reviews if r.changes and r.status is not SegmentStatus.DELETED]
    overlap = tally.overlap(changing)
    return tuple(
        r if r.id not in overlap else _with_overlap(r, overlap[r.id], ids) for r in reviews
    )


def _with_overlap(
    review: SegmentReview, counts: Mapping[str, int], ids: list[str]
) -> SegmentReview:
    managed = set(ids)
    return replace(review, overlap={seg: n for seg, n in counts.items() if seg in managed})
