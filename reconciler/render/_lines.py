"""One line per change, shared by the text and Markdown renderers (plain text, no markup)."""

from __future__ import annotations

from .._printable import printable
from ..plan.changes import AccessChange, Action, Change, CustomerChange, LinkChange, SegmentChange

MARKS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.FORGET: "=",
}

__all__ = ["describe", "mark", "printable"]


def _ids(ids: frozenset[str], limit: int = 6) -> str:
    items = sorted(ids)
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def mark(change: Change) -> str:
    if isinstance(change, LinkChange):
        if not change.removed:
            return "+"
        return "-" if not change.added else "~"
    return MARKS[change.action]


def describe(change: Change) -> str:
    """``key  details`` for one change, without its marker."""
    match change:
        case SegmentChange(action=Action.CREATE, after=seg) if seg is not None:
            return f'segment {seg.id}  name="{seg.name}"'
        case SegmentChange(action=Action.UPDATE, before=old, after=new) if old and new:
            parts = [f'{f}: "{getattr(old, f)}" → "{getattr(new, f)}"' for f in change.fields]
            return f"segment {change.key}  " + "; ".join(parts)
        case SegmentChange(action=Action.FORGET):
            return f"segment {change.key}  (forget: stop managing it, leave it on the platform)"
        case SegmentChange():
            return f"segment {change.key}"
        case AccessChange(before=old, after=new):
            added, removed = new - old, old - new
            parts = []
            if added:
                parts.append(f"+ {_ids(added)}")
            if removed:
                parts.append(f"- {_ids(removed)}")
            what = "cleared" if not new else f"{len(new)} team(s)"
            return f"access {change.key}  {what}: " + "  ".join(parts)
        case CustomerChange():
            return f"customer {change.key}"
        case LinkChange():
            parts = []
            if change.added:
                parts.append(f"+ {_ids(change.added)}")
            if change.removed:
                parts.append(f"- {_ids(change.removed)}")
            return f"customer {change.key}  " + "  ".join(parts)
    return change.key  # pragma: no cover
