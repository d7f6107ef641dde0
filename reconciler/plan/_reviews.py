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
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..model import State
from ._sizes import Sizes, Tally
from .changes import AccessChange, Action, Change, LinkChange, SegmentChange
from .review import Definition, SegmentReview, SegmentStatus

__all__ = ["SAMPLE", "Links", "links", "reviewed_segments", "segment_reviews", "statuses"]

#: how many customers entering, and how many leaving, a review shows per segment
SAMPLE = 5

_SEGMENT = {
    Action.CREATE: SegmentStatus.CREATED,
    Action.DELETE: SegmentStatus.DELETED,
    Action.FORGET: SegmentStatus.FORGOTTEN,
}


def statuses(changes: Iterable[Change], moved: Links) -> dict[str, SegmentStatus]:
    """What happens to each segment a change touches, as a whole: its segment change first,
    then an access change (updated), then its members alone (``moved``: :func:`links` of
    ``changes``, which counted the memberships each link change adds and removes)."""
    found: dict[str, SegmentStatus] = {}
    for change in changes:
        match change:
            case SegmentChange(action=Action.UPDATE, key=seg, fields=fields):
                found[seg] = SegmentStatus.RENAMED if "name" in fields else SegmentStatus.UPDATED
            case SegmentChange(action=action, key=seg):
                found[seg] = _SEGMENT[action]
            case AccessChange(key=seg):
                found.setdefault(seg, SegmentStatus.UPDATED)
    for seg in sorted(moved.added.keys() | moved.removed.keys()):
        found.setdefault(seg, SegmentStatus.MEMBERS)
    return found


def _salt(target: str, segment: str) -> int:
    digest = hashlib.blake2b(f"{target}\x1f{segment}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(slots=True)
class Links:
    """What the plan's link changes do to each segment: how many memberships they add and
    remove, and a few of the customers entering and leaving it."""

    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    entering: dict[str, tuple[str, ...]] = field(default_factory=dict)
    leaving: dict[str, tuple[str, ...]] = field(default_factory=dict)


def links(target: str, changes: Iterable[Change]) -> Links:
    """The link changes per segment, in ONE pass. The samples are the ``SAMPLE`` customers of
    lowest key: a 64-bit hash of their id (blake2b, once per customer) XOR the segment's salt
    (a hash of the target and the segment id), which orders the customers differently for
    every segment, and the same way on every re-plan."""
    out = Links()
    salts: dict[str, int] = {}
    # per side, segment → a heap of (-key, customer): the largest key kept on top
    sides: tuple[dict[str, list[tuple[int, str]]], ...] = ({}, {})
    counts = (out.added, out.removed)
    # customers with the same segments before and after share the two sets: their differences
    # are taken once per distinct pair
    moves: dict[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]] = {}
    blake2b, from_bytes, push, swap = (
        hashlib.blake2b,
        int.from_bytes,
        heapq.heappush,
        heapq.heapreplace,
    )
    for change in changes:
        if not isinstance(change, LinkChange):
            continue
        pair = (change.before, change.after)
        moved = moves.get(pair)
        if moved is None:
            before, after = pair
            moved = moves[pair] = (after - before, before - after)
        cid = change.key
        h = from_bytes(blake2b(cid.encode(), digest_size=8).digest(), "big")
        for side, count, segs in zip(sides, counts, moved, strict=True):
            for seg in segs:
                count[seg] += 1
                salt = salts.get(seg)
                if salt is None:
                    salt = salts[seg] = _salt(target, seg)
                key = -(h ^ salt)
                heap = side.get(seg)
                if heap is None:
                    side[seg] = [(key, cid)]
                elif len(heap) < SAMPLE:
                    push(heap, (key, cid))
                elif key > heap[0][0]:
                    swap(heap, (key, cid))
    out.entering, out.leaving = (
        {seg: tuple(cid for _, cid in sorted(heap, reverse=True)) for seg, heap in side.items()}
        for side in sides
    )
    return out


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
    moved: Links,
    definitions: Mapping[str, Definition] | None = None,
) -> tuple[SegmentReview, ...]:
    """The review of every managed segment of one target, in segment id order (``moved``:
    :func:`links` of ``changes``). A forgotten segment keeps its members (the platform keeps
    them; the reconciler stops managing it)."""
    found = statuses(changes, moved)
    sizes = tally.sizes()
    entering, leaving = moved.entering, moved.leaving
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
