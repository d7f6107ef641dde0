"""A segment's definition as the YAML a reviewer compares: what the config declares for it
(name, description, access, ``prevent_destroy``, and its members' rule, customer source,
files and ids), rendered deterministically (keys sorted), so the text recorded at an apply and
the text declared now differ exactly where the definition does.

::

    print(declared_definitions(config, "epsilon")["general-segment-3"])
    # description: Shoppers that shop every week on average.
    # id: general-segment-3
    # members:
    #   rule:
    #     attribute: visits_per_week
    #     gte: 1
    #   source: shoppers
    # name: Recurring Shoppers
"""

from __future__ import annotations

from typing import Any

import yaml

from ..config import Config, SegmentConfig
from ..config._located import target_segments
from ..config._model import Selection
from ..plan import Definition
from ..rules.language import AllOf, AnyOf, Compare, Not, Rule
from ..statestore import StateStore

__all__ = ["declared_definitions", "definition_yaml", "definitions", "record_definitions"]


def _rule(rule: Rule) -> Any:
    """A rule as the YAML language writes it."""
    match rule:
        case AllOf(items=items):
            return {"all": [_rule(i) for i in items]}
        case AnyOf(items=items):
            return {"any": [_rule(i) for i in items]}
        case Not(item=item):
            return {"not": _rule(item)}
        case Compare(attribute=attribute, op=op, value=value):
            return {"attribute": attribute, op: list(value) if isinstance(value, tuple) else value}
    raise TypeError(f"not a rule: {rule!r}")  # pragma: no cover - exhaustive above


def _selection(sel: Selection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sel.rule is not None:
        out["rule"] = _rule(sel.rule.rule)
        out["source"] = sel.rule.source
    if sel.files:
        out["files"] = [
            f.display if f.column is None else {"path": f.display, "column": f.column}
            for f in sel.files
        ]
    if sel.ids:
        out["ids"] = sorted(sel.ids)
    return out


def definition_yaml(segment: SegmentConfig) -> str:
    """``segment``'s definition as YAML, keys sorted (the same text for the same definition)."""
    members = _selection(segment.members.include)
    exclude = _selection(segment.members.exclude)
    if exclude:
        members["exclude"] = exclude
    data: dict[str, Any] = {
        "id": segment.id,
        "name": segment.name,
        "description": segment.description,
        "members": members,
    }
    if segment.access is not None:
        data["access"] = sorted(segment.access)
    if segment.prevent_destroy:
        data["prevent_destroy"] = True
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False)


def declared_definitions(config: Config, target: str) -> dict[str, str]:
    """Each segment of ``target`` → its definition as declared now."""
    return {seg.id: definition_yaml(seg) for seg in target_segments(config, target)}


def definitions(config: Config, store: StateStore, target: str) -> dict[str, Definition]:
    """Each segment of ``target`` declared or last applied → its definition, as recorded at
    the last apply (``""``: none recorded) and as declared now (``""``: no longer declared)."""
    applied = store.definitions(target)
    declared = declared_definitions(config, target)
    return {
        seg: Definition(applied.get(seg, ""), declared.get(seg, ""))
        for seg in sorted(applied.keys() | declared.keys())
    }


def record_definitions(config: Config, store: StateStore, target: str) -> None:
    """Record the definitions declared now as ``target``'s applied ones (after an apply that
    left nothing of its plan undone)."""
    store.set_definitions(target, declared_definitions(config, target))
