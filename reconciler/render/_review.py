"""The review of a plan in words and numbers, shared by the text and Markdown renderers (plain
text, no markup): the headline that names each object for what it is, the rows of the
per-segment table, its bars and sparklines, and the definition diffs."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..plan import Refusal, SegmentReview, SegmentStatus, TargetPlan
from ..plan.changes import AccessChange, Action, CustomerChange, LinkChange, SegmentChange

__all__ = [
    "MINUS",
    "Row",
    "bar",
    "definition_diff",
    "headline",
    "refusal_parts",
    "renamed_from",
    "rows",
    "sparkline",
    "tally",
    "words",
]

#: the sign of a count or a share that goes down (ASCII, so a copied figure reads as a number)
MINUS = "-"
_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"
#: (noun, plural, [(counter key, verb)]) in the order the headline says them
_GROUPS = (
    (
        "segment",
        "segments",
        [("s+", "create"), ("s>", "rename"), ("s~", "update"), ("s-", "delete"), ("s=", "forget")],
    ),
    ("access list", "access lists", [("a~", "change")]),
    ("customer record", "customer records", [("c+", "create"), ("c-", "delete")]),
    ("membership", "memberships", [("m+", "add"), ("m-", "remove")]),
)
_SEGMENT_KEYS = {
    Action.CREATE: "s+",
    Action.UPDATE: "s~",
    Action.DELETE: "s-",
    Action.FORGET: "s=",
}


def tally(tp: TargetPlan) -> Counter[str]:
    """What a target's plan does, by kind of object and action (one pass over its changes)."""
    n: Counter[str] = Counter()
    # customers with the same segments before and after share the sets: sized once per pair
    moved: dict[tuple[frozenset[str], frozenset[str]], tuple[int, int]] = {}
    added = removed = 0
    for c in tp.changes:
        if isinstance(c, LinkChange):
            pair = (c.before, c.after)
            sizes = moved.get(pair)
            if sizes is None:
                sizes = moved[pair] = (len(c.after - c.before), len(c.before - c.after))
            added += sizes[0]
            removed += sizes[1]
        elif isinstance(c, SegmentChange):
            renamed = c.action is Action.UPDATE and "name" in c.fields
            n["s>" if renamed else _SEGMENT_KEYS[c.action]] += 1
        elif isinstance(c, AccessChange):
            n["a~"] += 1
        elif isinstance(c, CustomerChange):
            n["c+" if c.action is Action.CREATE else "c-"] += 1
    if added:
        n["m+"] += added
    if removed:
        n["m-"] += removed
    return n


def words(n: Mapping[str, int]) -> str:
    """``2 segments to create, 1 to rename; 5,238 customer records to create; 5,240
    memberships to add`` — each object named for what it is, the groups with nothing to do left
    out; ``no changes`` when there is nothing at all."""
    groups = []
    for noun, plural, actions in _GROUPS:
        said = [(n[key], verb) for key, verb in actions if n.get(key)]
        if said:
            first, verb = said[0]
            told = [f"{first:,} {noun if first == 1 else plural} to {verb}"]
            told += [f"{count:,} to {verb}" for count, verb in said[1:]]
            groups.append(", ".join(told))
    return "; ".join(groups) if groups else "no changes"


def headline(targets: Iterable[TargetPlan]) -> str:
    """The :func:`words` of every target's changes together."""
    return words(sum(map(tally, targets), Counter()))


def _share(r: SegmentReview) -> str:
    share = r.share
    if share is None:
        return "new" if r.after else "—"
    if share == 0:
        return "0%"
    pct = abs(share) * 100
    digits = f"{pct:.1f}" if pct < 10 else f"{pct:,.0f}"
    return ("+" if share > 0 else MINUS) + digits + "%"


def renamed_from(tp: TargetPlan) -> dict[str, str]:
    """Segment id → its name before the plan, for the segments the plan renames."""
    return {
        c.key: c.before.name
        for c in tp.changes
        if isinstance(c, SegmentChange)
        and c.action is Action.UPDATE
        and "name" in c.fields
        and c.before is not None
    }


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the per-segment table, every cell as plain text."""

    review: SegmentReview
    segment: str
    before: str
    after: str
    added: str
    removed: str
    change: str
    status: str


def rows(tp: TargetPlan) -> list[Row]:
    """The rows of the segments that change (in the review's order, segment id)."""
    old_names = renamed_from(tp)
    out = []
    for r in tp.review:
        if not r.changes:
            continue
        status = r.status.value
        if r.status is SegmentStatus.RENAMED and r.id in old_names:
            status = f'renamed from "{old_names[r.id]}"'
        out.append(
            Row(
                r,
                f"{r.id} ({r.name})" if r.name and r.name != r.id else r.id,
                f"{r.before:,}",
                f"{r.after:,}",
                f"+{r.added:,}" if r.added else "0",
                f"{MINUS}{r.removed:,}" if r.removed else "0",
                _share(r),
                status,
            )
        )
    return out


def bar(n: int, largest: int, width: int) -> str:
    """``n`` as a bar of block characters, ``largest`` filling ``width`` cells (in eighths
    of a cell; anything above zero shows at least one eighth)."""
    if n <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(n * width * 8 / largest))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def sparkline(values: Iterable[int]) -> str:
    """One character per value, from ``▁`` (the smallest) to ``█`` (the largest)."""
    vs = list(values)
    if not vs:
        return ""
    low, high = min(vs), max(vs)
    if high == low:
        return _SPARKS[3] * len(vs)
    return "".join(_SPARKS[round((v - low) * (len(_SPARKS) - 1) / (high - low))] for v in vs)


def definition_diff(r: SegmentReview) -> list[str]:
    """The unified diff of the definition last applied against the one declared (lines
    without their ends); ``[]`` when it did not change."""
    d = r.definition
    if d is None or not d.changed:
        return []
    if d.applied:
        before = f"{r.id} (last applied)"
    elif r.status is SegmentStatus.CREATED:
        before = f"{r.id} (new segment)"
    else:
        before = f"{r.id} (applied before definitions were kept)"
    after = f"{r.id} (deleted)" if not d.declared else f"{r.id} (declared)"
    return list(
        difflib.unified_diff(
            d.applied.splitlines(), d.declared.splitlines(), before, after, lineterm=""
        )
    )


def refusal_parts(r: Refusal) -> tuple[str | None, str]:
    """(the segment to name beside the target, the message): a message that already names its
    target (``target 'eps': …``) or its segment is not told them twice."""
    message = r.message.removeprefix(f"target {r.target!r}: ")
    segment = r.segment if r.segment and r.segment not in message else None
    return segment, message
