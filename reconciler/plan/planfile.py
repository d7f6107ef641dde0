"""The plan file: a :class:`~reconciler.plan.definition.Plan` as JSON and back, the format
version, the one reader of plan files, and where a saved plan's config is.

A saved plan records where its config is (relative to the plan file) and where each target was
planned (``planned_at``: the sandbox, or the target's base URLs, never credentials), so it is
applied with that config and nowhere else (:mod:`reconciler.plan.safety` refuses otherwise).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import PlanError
from ..model import Segment
from ._reviewfile import count as _count
from ._reviewfile import review_dict, review_from, verdict_dict, verdict_from
from ._reviewfile import text as _text
from .changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from .definition import FORMAT_VERSION, Counts, Plan, TargetPlan
from .endpoint import Endpoint
from .inputs import Refresh, Source
from .review import Verdict

__all__ = [
    "FORMAT_VERSION",
    "change_dict",
    "changes_digest",
    "plan_dict",
    "plan_from_dict",
    "plan_from_json",
    "plan_json",
    "planned_config",
    "read_plan_file",
    "save_plan",
]

#: the versions this release reads (1 by ``show`` alone: it cannot be applied)
_READABLE = (1, 2, 3)


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": plan.format_version,
        "created": plan.created,
        "config": {"path": plan.config_path, "digest": plan.config_digest},
        "refresh": plan.refresh.value,
        "summary": _counts_dict(plan.counts),
        "verdict": verdict_dict(plan.verdict, targets=True),
        "targets": [_target_dict(t) for t in plan.targets],
    }


def plan_json(plan: Plan, indent: int | None = 2) -> str:
    """The plan as the JSON of its file (stable key order)."""
    return json.dumps(plan_dict(plan), indent=indent, sort_keys=False, ensure_ascii=False)


def changes_digest(plan: Plan) -> str:
    """A digest of the changes alone (what would be done), independent of timestamps."""
    h = hashlib.sha256()
    for t in plan.targets:
        h.update(t.target.encode())
        for c in t.changes:
            h.update(json.dumps(change_dict(c), sort_keys=True).encode())
    return h.hexdigest()


def save_plan(plan: Plan, path: Path, config: Path) -> None:
    """Write ``plan`` to ``path`` (whole or not at all), its config's path recorded relative to
    the plan file, so that it is found from wherever the plan is applied."""
    relative = os.path.relpath(os.path.abspath(config), os.path.abspath(path.parent))
    data = plan_dict(plan)
    data["config"]["path"] = Path(relative).as_posix()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PlanError(f"cannot write the plan to {path}: {exc.strerror or exc}") from exc


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    try:
        version = data["format_version"]
        if type(version) is not int or version not in _READABLE:
            raise PlanError(
                f"plan format version {version!r:.20} is not supported (expected "
                f"{FORMAT_VERSION}): it was saved by another version of audience-reconciler; "
                "run `reconcile plan --out` again"
            )
        config = data["config"]
        return Plan(
            config_path=_text(config["path"], "config.path"),
            config_digest=_text(config["digest"], "config.digest"),
            created=_text(data["created"], "created"),
            refresh=Refresh(_text(data.get("refresh", "full"), "refresh")),
            targets=tuple(_target_from(t) for t in data["targets"]),
            format_version=version,
        )
    except KeyError as exc:
        raise PlanError(f"not a valid plan file: missing field {exc}") from exc
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise PlanError(f"not a valid plan file: {exc}") from exc


def plan_from_json(text: str) -> Plan:
    data = _parse(text)
    if not isinstance(data, dict):
        raise PlanError("not a valid plan file: expected a JSON object")
    return plan_from_dict(data)


def _parse(text: str) -> Any:
    """JSON, with every way it can fail as a PlanError (json's own errors, nesting beyond the
    recursion limit, an integer beyond Python's 4300 digits)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"not a valid plan file: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise PlanError("not a valid plan file: JSON nested too deeply") from exc
    except ValueError as exc:  # int('1' * 5000): beyond sys.get_int_max_str_digits()
        raise PlanError(f"not a valid plan file: {exc}") from exc


def read_plan_file(path: Path) -> Plan | None:
    """The one reader of plan files: the plan saved at ``path``, or ``None`` when the file is
    not a plan (an audiences file, YAML or JSON: it has no ``format_version``).

    Raises :class:`PlanError`, naming the file, for a plan that cannot be read: not UTF-8,
    not JSON, nested too deeply, an integer too long to convert, a field of the wrong type.
    A saved plan's config path (relative to the plan file) is returned relative to here.
    """
    json_name = path.suffix.lower() == ".json"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        if not json_name:
            return None  # an audiences file, perhaps: the config loader says what is wrong
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if not json_name and not raw.lstrip().startswith(b"{"):
        return None
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"not a valid plan file: not UTF-8 (byte {exc.start})") from exc
        data = _parse(text)
        if not isinstance(data, dict):
            raise PlanError("not a valid plan file: expected a JSON object")
        if "format_version" not in data:
            if not json_name or "targets" in data or "version" in data:
                return None  # an audiences file: the config loader reads (and reports) it
            raise PlanError("not a valid plan file: missing field 'format_version'")
        plan = plan_from_dict(data)
    except PlanError as exc:
        if not json_name:
            return None
        raise PlanError(f"{path}: {exc}") from exc
    if plan.format_version >= 2 and not os.path.isabs(plan.config_path):
        config = os.path.normpath(os.path.join(path.parent, plan.config_path))
        plan = dataclasses.replace(plan, config_path=config)
    return plan


def planned_config(saved: Plan, plan_file: Path, given: Path | None = None) -> Path:
    """The config to apply a saved plan with: ``given`` (``--config``), else the one the plan
    records. Refuses a plan of format version 1 (it does not record where it was planned) and
    a recorded config that is missing."""
    if saved.format_version < 2 or any(t.planned_at is None for t in saved.targets):
        raise PlanError(
            f"{plan_file}: this plan (format version {saved.format_version}) was saved by an "
            "older audience-reconciler: it does not record where it was planned, so it cannot "
            "be applied safely; run `reconcile plan --out` again"
        )
    if given is not None:
        return given
    config = Path(saved.config_path)
    if not config.is_file():
        raise PlanError(
            f"{plan_file}: the config it was planned from, {config}, is missing; restore it, "
            "or pass --config FILE (its digest must match the plan's)"
        )
    return config


def _counts_dict(c: Counts) -> dict[str, Any]:
    return {
        "create": c.create,
        "update": c.update,
        "delete": c.delete,
        "forget": c.forget,
        "links_add": c.links_add,
        "links_remove": c.links_remove,
        "by_phase": {k: dict(v) for k, v in c.by_phase.items()},
    }


def _seg(s: Segment | None) -> dict[str, str] | None:
    return None if s is None else {"id": s.id, "name": s.name, "description": s.description}


def change_dict(c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"phase": c.phase.value, "action": c.action.value, "key": c.key}
    match c:
        case SegmentChange():
            out |= {"before": _seg(c.before), "after": _seg(c.after), "fields": list(c.fields)}
        case AccessChange():
            out |= {"before": sorted(c.before), "after": sorted(c.after)}
        case LinkChange():
            out |= {
                "before": sorted(c.before),
                "after": sorted(c.after),
                "add": sorted(c.added),
                "remove": sorted(c.removed),
            }
        case CustomerChange():
            pass
    return out


def _change_from(d: Mapping[str, Any]) -> Change:
    phase, action, key = Phase(d["phase"]), Action(d["action"]), str(d["key"])
    if phase is Phase.SEGMENTS:
        b, a = d.get("before"), d.get("after")
        return SegmentChange(
            action,
            key,
            Segment(b["id"], b["name"], b["description"]) if b else None,
            Segment(a["id"], a["name"], a["description"]) if a else None,
            tuple(d.get("fields", ())),
        )
    if phase is Phase.ACCESS:
        return AccessChange(action, key, frozenset(d["before"]), frozenset(d["after"]))
    if phase is Phase.CUSTOMERS:
        return CustomerChange(action, key)
    return LinkChange(key, frozenset(d["before"]), frozenset(d["after"]))


def _target_dict(t: TargetPlan) -> dict[str, Any]:
    where = {} if t.planned_at is None else {"planned_at": t.planned_at.as_dict()}
    return {
        "target": t.target,
        "type": t.type,
        **where,
        "remote_fingerprint": t.remote_fingerprint,
        "sources": {p.value: s.value for p, s in t.sources.items()},
        "existing": dict(t.existing),
        "summary": _counts_dict(t.counts),
        "unchanged_links": t.unchanged_links,
        "warnings": list(t.warnings),
        "caveats": list(t.caveats),
        "unmanaged": list(t.unmanaged),
        "protected": list(t.protected),
        "verdict": verdict_dict(t.verdict),
        "segments": review_dict(t.review),
        "changes": [change_dict(c) for c in t.changes],
    }


def _target_from(d: Mapping[str, Any]) -> TargetPlan:
    where = d.get("planned_at")
    name = _text(d["target"], "target")
    return TargetPlan(
        target=name,
        type=_text(d["type"], f"targets.{name}.type"),
        changes=tuple(_change_from(c) for c in d["changes"]),
        warnings=tuple(map(str, d.get("warnings", ()))),
        caveats=tuple(map(str, d.get("caveats", ()))),
        unmanaged=tuple(map(str, d.get("unmanaged", ()))),
        sources={Phase(k): Source(v) for k, v in dict(d.get("sources", {})).items()},
        remote_fingerprint=_text(d.get("remote_fingerprint", ""), f"{name}.remote_fingerprint"),
        existing={
            str(k): _count(v, f"{name}.existing.{k}")
            for k, v in dict(d.get("existing", {})).items()
        },
        unchanged_links=_count(d.get("unchanged_links", 0), f"{name}.unchanged_links"),
        protected=tuple(map(str, d.get("protected", ()))),
        planned_at=None if where is None else Endpoint.from_dict(where),
        review=review_from(d["segments"], name) if "segments" in d else (),
        verdict=verdict_from(d["verdict"], name) if "verdict" in d else Verdict(),
    )
