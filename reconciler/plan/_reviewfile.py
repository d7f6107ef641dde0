"""The review and the verdict in the plan file: JSON both ways (see :mod:`.planfile`).

Per target, ``segments`` holds each managed segment's review (``members_before`` ..
``members_removed`` beside its ``id``) and ``verdict`` what apply would refuse; the plan
carries the aggregated ``verdict`` too. A plan of format version 2 has neither: it reads back
with an empty review and a safe verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .review import Definition, Refusal, SegmentReview, SegmentStatus, Verdict

__all__ = ["count", "review_dict", "review_from", "text", "verdict_dict", "verdict_from"]


def text(value: Any, name: str) -> str:
    """``value`` as a plan file's string field ``name`` (TypeError naming it otherwise)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, not {type(value).__name__}")
    return value


def count(value: Any, name: str) -> int:
    """``value`` as a plan file's count field ``name``: an integer, 0 or more."""
    if type(value) is not int or value < 0:
        raise TypeError(f"{name}: expected a count (an integer >= 0), not {value!r:.40}")
    return value


def _ids(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{name}: expected a list, not {type(value).__name__}")
    return tuple(text(v, name) for v in value)


def _segment_dict(r: SegmentReview) -> dict[str, Any]:
    definition = (
        None
        if r.definition is None
        else {"applied": r.definition.applied, "declared": r.definition.declared}
    )
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "members_before": r.before,
        "members_after": r.after,
        "members_added": r.added,
        "members_removed": r.removed,
        "entering": list(r.entering),
        "leaving": list(r.leaving),
        "definition": definition,
        "overlap": dict(r.overlap),
        "history": list(r.history),
    }


def review_dict(review: Iterable[SegmentReview]) -> list[dict[str, Any]]:
    return [_segment_dict(r) for r in review]


def _segment_from(d: Mapping[str, Any], where: str) -> SegmentReview:
    seg = text(d["id"], f"{where}.id")
    at = f"{where}.{seg}"
    definition = d.get("definition")
    return SegmentReview(
        id=seg,
        name=text(d.get("name", ""), f"{at}.name"),
        status=SegmentStatus(text(d["status"], f"{at}.status")),
        before=count(d["members_before"], f"{at}.members_before"),
        after=count(d["members_after"], f"{at}.members_after"),
        added=count(d["members_added"], f"{at}.members_added"),
        removed=count(d["members_removed"], f"{at}.members_removed"),
        entering=_ids(d.get("entering", []), f"{at}.entering"),
        leaving=_ids(d.get("leaving", []), f"{at}.leaving"),
        definition=None
        if definition is None
        else Definition(
            text(definition["applied"], f"{at}.definition.applied"),
            text(definition["declared"], f"{at}.definition.declared"),
        ),
        overlap={
            text(k, f"{at}.overlap"): count(v, f"{at}.overlap.{k}")
            for k, v in dict(d.get("overlap", {})).items()
        },
        history=tuple(count(n, f"{at}.history") for n in d.get("history", [])),
    )


def review_from(data: Any, where: str) -> tuple[SegmentReview, ...]:
    """A target's review from its plan file's ``segments`` (``where``: the target, for
    messages)."""
    if not isinstance(data, list):
        raise TypeError(f"{where}.segments: expected a list, not {type(data).__name__}")
    return tuple(_segment_from(d, f"{where}.segments") for d in data)


def verdict_dict(verdict: Verdict, *, targets: bool = False) -> dict[str, Any]:
    """The verdict as JSON; ``targets``: each refusal names its target (the plan's
    aggregated verdict)."""
    return {
        "safe": verdict.safe,
        "forced": verdict.forced,
        "refusals": [
            {
                **({"target": r.target} if targets else {}),
                "segment": r.segment,
                "rule": r.rule,
                "message": r.message,
                "accept": r.accept,
                "forceable": r.forceable,
            }
            for r in verdict.refusals
        ],
    }


def verdict_from(data: Any, target: str) -> Verdict:
    """A target's verdict from its plan file (``safe`` is derived, so not read back)."""
    if not isinstance(data, dict):
        raise TypeError(f"{target}.verdict: expected an object, not {type(data).__name__}")
    forced = data.get("forced", False)
    if not isinstance(forced, bool):
        raise TypeError(f"{target}.verdict.forced: expected true or false")
    refusals = []
    for r in data.get("refusals", []):
        segment = r.get("segment")
        forceable = r.get("forceable", True)
        if not isinstance(forceable, bool):
            raise TypeError(f"{target}.verdict.refusals.forceable: expected true or false")
        refusals.append(
            Refusal(
                target=target,
                segment=None if segment is None else text(segment, f"{target}.verdict"),
                rule=text(r["rule"], f"{target}.verdict.rule"),
                message=text(r["message"], f"{target}.verdict.message"),
                accept=text(r.get("accept", ""), f"{target}.verdict.accept"),
                forceable=forceable,
            )
        )
    return Verdict(tuple(refusals), forced=forced)
