"""The plan: a value. Ordered changes per target, warnings, counts, and JSON both ways.

A plan records the digest of the config it came from and a fingerprint of each remote state it
was computed against, so a saved plan can be refused when either has moved on. A saved plan
also records where its config is (relative to the plan file) and where each target was planned
(the sandbox, or the target's base URLs: never credentials), so it is applied with that config
and nowhere else.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._hashing import MASK, SEP, customer_item, hash_sum
from .changes import (
    STEPS,
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
    Step,
    step_of,
)
from .diff import Ownership, diff
from .exceptions import PlanError, StalePlanError, UnsafePlanError
from .model import Segment, State
from .providers.base import Capabilities, RemoteState

__all__ = [
    "FORMAT_VERSION",
    "LOCAL_SANDBOX",
    "Counts",
    "Endpoint",
    "Overview",
    "Plan",
    "Safety",
    "TargetPlan",
    "build_target_plan",
    "check_config",
    "check_endpoints",
    "check_safety",
    "endpoint_of",
    "fingerprint",
    "fingerprint_sum",
    "format_fingerprint",
    "planned_config",
    "read_plan_file",
]

#: 2: each target records where it was planned (``planned_at``), and a saved plan's
#: ``config.path`` is relative to the plan file. 1 (still read, by ``show``): neither.
FORMAT_VERSION = 2
_READABLE = (1, 2)

#: the sandbox started by the command itself (``--sandbox``): its port changes every run
LOCAL_SANDBOX = "local"


def _location(value: Any) -> str:
    """A setting's value as a location: a URL without user info, query or fragment (which
    could carry a credential), anything else as written."""
    text = str(value)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return text.split("?", 1)[0].split("#", 1)[0]
    netloc = (f"[{host}]" if ":" in host else host) + port
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _is_location(key: str) -> bool:
    return key.endswith(("_url", "_host")) or key == "directory"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a target was planned: ``sandbox`` is '' for the platform itself, ``local`` for
    the sandbox a command starts (``--sandbox``), else the URL of a running sandbox
    (``--sandbox-url``); ``urls``: the target's locations (base URLs, a feed's directory),
    leaving out those the local sandbox supplies (its port is new every run)."""

    sandbox: str = ""
    urls: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        own = ", ".join(f"{k}={v}" for k, v in sorted(self.urls.items()))
        if self.sandbox == LOCAL_SANDBOX:
            where = "the local sandbox (--sandbox)"
        elif self.sandbox:
            where = f"the sandbox at {self.sandbox} (--sandbox-url)"
        else:
            return own or "its configured location"
        return f"{where}, {own}" if own else where

    def how(self) -> str:
        """How an apply gets here."""
        if self.sandbox == LOCAL_SANDBOX:
            return "apply it with --sandbox"
        if self.sandbox:
            return f"apply it with --sandbox-url {self.sandbox}"
        return "apply it without --sandbox or --sandbox-url, with the config it was planned from"

    def as_dict(self) -> dict[str, Any]:
        return {"sandbox": self.sandbox, "urls": dict(sorted(self.urls.items()))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Endpoint:
        urls = d.get("urls", {})
        if not isinstance(d.get("sandbox", ""), str) or not isinstance(urls, Mapping):
            raise TypeError("planned_at: expected {sandbox: string, urls: object}")
        return cls(d.get("sandbox", ""), {str(k): str(v) for k, v in urls.items()})


def endpoint_of(
    settings: Mapping[str, Any], *, sandbox: str = "", supplied: Iterable[str] = ()
) -> Endpoint:
    """The :class:`Endpoint` of a target with these (effective) settings; ``supplied``: the
    settings a local sandbox put there (not recorded)."""
    skip = set(supplied) if sandbox == LOCAL_SANDBOX else set()
    urls = {
        k: _location(v)
        for k, v in settings.items()
        if _is_location(k) and k not in skip and v not in (None, "")
    }
    return Endpoint(sandbox, urls)


@dataclass(frozen=True, slots=True)
class Counts:
    create: int = 0
    update: int = 0
    delete: int = 0
    forget: int = 0
    links_add: int = 0
    links_remove: int = 0
    #: per phase → action → count
    by_phase: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return (
            self.create
            + self.update
            + self.delete
            + self.forget
            + self.links_add
            + (self.links_remove)
        )

    def __add__(self, other: Counts) -> Counts:
        phases: dict[str, dict[str, int]] = {}
        for src in (self.by_phase, other.by_phase):
            for ph, acts in src.items():
                for act, n in acts.items():
                    phases.setdefault(ph, {})[act] = phases.get(ph, {}).get(act, 0) + n
        return Counts(
            self.create + other.create,
            self.update + other.update,
            self.delete + other.delete,
            self.forget + other.forget,
            self.links_add + other.links_add,
            self.links_remove + other.links_remove,
            phases,
        )


def count(changes: Iterable[Change]) -> Counts:
    tally = {a: 0 for a in Action}
    phases: dict[str, dict[str, int]] = {}
    add = remove = 0
    for c in changes:
        if isinstance(c, LinkChange):
            n_add, n_rem = len(c.added), len(c.removed)
            add += n_add
            remove += n_rem
            ph = phases.setdefault(Phase.LINKS.value, {})
            ph["add"] = ph.get("add", 0) + n_add
            ph["remove"] = ph.get("remove", 0) + n_rem
            ph["customers"] = ph.get("customers", 0) + 1
        else:
            tally[c.action] += 1
            ph = phases.setdefault(c.phase.value, {})
            ph[c.action.value] = ph.get(c.action.value, 0) + 1
    return Counts(
        tally[Action.CREATE],
        tally[Action.UPDATE],
        tally[Action.DELETE],
        tally[Action.FORGET],
        add,
        remove,
        phases,
    )


@dataclass(frozen=True, slots=True)
class Safety:
    """octoDNS-style limits on how much of a target one plan may remove."""

    max_delete_share: float = 0.30
    min_existing: int = 10


@dataclass(frozen=True, slots=True)
class TargetPlan:
    target: str
    type: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    #: phase → where the remote facts came from
    sources: Mapping[str, str] = field(default_factory=dict)
    remote_fingerprint: str = ""
    #: size of the remote before the plan: segments, customers, links
    existing: Mapping[str, int] = field(default_factory=dict)
    unchanged_links: int = 0
    #: segment ids that may never be deleted (prevent_destroy, now or when last applied)
    protected: tuple[str, ...] = ()
    #: where it was planned (None: a plan of format version 1, which did not record it)
    planned_at: Endpoint | None = None

    @property
    def counts(self) -> Counts:
        return count(self.changes)

    def by_step(self) -> list[tuple[Step, list[Change]]]:
        """The changes grouped by execution step, in execution order, empty steps left out
        (one pass; a plan file edited out of order still groups right)."""
        buckets: dict[int, list[Change]] = {}
        for change in self.changes:
            buckets.setdefault(step_of(change), []).append(change)
        return [(STEPS[i], buckets[i]) for i in sorted(buckets)]


@dataclass(frozen=True, slots=True)
class Plan:
    config_path: str
    config_digest: str
    targets: tuple[TargetPlan, ...]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    refresh: str = "full"
    format_version: int = FORMAT_VERSION

    @property
    def counts(self) -> Counts:
        total = Counts()
        for t in self.targets:
            total = total + t.counts
        return total

    @property
    def has_changes(self) -> bool:
        return any(t.changes for t in self.targets)

    def target(self, name: str) -> TargetPlan:
        for t in self.targets:
            if t.target == name:
                return t
        raise PlanError(f"the plan has no target {name!r}")

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "created": self.created,
            "config": {"path": self.config_path, "digest": self.config_digest},
            "refresh": self.refresh,
            "summary": _counts_dict(self.counts),
            "targets": [_target_dict(t) for t in self.targets],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, ensure_ascii=False)

    def save(self, path: Path, config: Path) -> None:
        """Write the plan to ``path`` (whole or not at all), its config's path recorded
        relative to the plan file, so that it is found from wherever the plan is applied."""
        relative = os.path.relpath(os.path.abspath(config), os.path.abspath(path.parent))
        data = self.to_dict()
        data["config"]["path"] = Path(relative).as_posix()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise PlanError(f"cannot write the plan to {path}: {exc.strerror or exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        try:
            version = data["format_version"]
            if type(version) is not int or version not in _READABLE:
                raise PlanError(
                    f"plan format version {version!r:.20} is not supported (expected "
                    f"{FORMAT_VERSION}): it was saved by another version of audience-reconciler; "
                    "run `reconcile plan --out` again"
                )
            config = data["config"]
            return cls(
                config_path=_text(config["path"], "config.path"),
                config_digest=_text(config["digest"], "config.digest"),
                created=_text(data["created"], "created"),
                refresh=_text(data.get("refresh", "full"), "refresh"),
                targets=tuple(_target_from(t) for t in data["targets"]),
                format_version=version,
            )
        except KeyError as exc:
            raise PlanError(f"not a valid plan file: missing field {exc}") from exc
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise PlanError(f"not a valid plan file: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = _parse(text)
        if not isinstance(data, dict):
            raise PlanError("not a valid plan file: expected a JSON object")
        return cls.from_dict(data)

    def changes_digest(self) -> str:
        """A digest of the changes alone (what would be done), independent of timestamps."""
        h = hashlib.sha256()
        for t in self.targets:
            h.update(t.target.encode())
            for c in t.changes:
                h.update(json.dumps(_change_dict(c), sort_keys=True).encode())
        return h.hexdigest()


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


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, not {type(value).__name__}")
    return value


def _count(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise TypeError(f"{name}: expected a count (an integer >= 0), not {value!r:.40}")
    return value


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
        plan = Plan.from_dict(data)
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


def check_endpoints(
    saved: Plan, plan_file: Path, now: Mapping[str, Endpoint], *, given: str = ""
) -> None:
    """Refuse to apply ``saved`` anywhere else than where each target was planned; ``now``:
    target → where this apply would go; ``given``: the config this apply uses, if named."""
    for t in saved.targets:
        here = now.get(t.target)
        if here is None or t.planned_at is None or here == t.planned_at:
            continue
        raise StalePlanError(
            f"{plan_file}: target {t.target!r} was planned against {t.planned_at.describe()}, "
            f"but this apply would go to {here.describe()}; {t.planned_at.how()} "
            "(or run `reconcile plan --out` again for where it should go)"
        )


def check_config(saved: Plan, plan_file: Path, config: Path, digest: str) -> None:
    """Refuse a config given explicitly (``--config``) that is not the one planned from."""
    if digest != saved.config_digest:
        raise StalePlanError(
            f"{plan_file}: {config} is not the config the plan was made from (digest "
            f"{digest[:12]}, the plan's {saved.config_digest[:12]}, recorded as "
            f"{saved.config_path}); apply with that config, or run `reconcile plan --out` again"
        )


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


def _change_dict(c: Change) -> dict[str, Any]:
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
        "sources": dict(t.sources),
        "existing": dict(t.existing),
        "summary": _counts_dict(t.counts),
        "unchanged_links": t.unchanged_links,
        "warnings": list(t.warnings),
        "unmanaged": list(t.unmanaged),
        "protected": list(t.protected),
        "changes": [_change_dict(c) for c in t.changes],
    }


def _target_from(d: Mapping[str, Any]) -> TargetPlan:
    where = d.get("planned_at")
    name = _text(d["target"], "target")
    return TargetPlan(
        target=name,
        type=_text(d["type"], f"targets.{name}.type"),
        changes=tuple(_change_from(c) for c in d["changes"]),
        warnings=tuple(map(str, d.get("warnings", ()))),
        unmanaged=tuple(map(str, d.get("unmanaged", ()))),
        sources={str(k): str(v) for k, v in dict(d.get("sources", {})).items()},
        remote_fingerprint=_text(d.get("remote_fingerprint", ""), f"{name}.remote_fingerprint"),
        existing={
            str(k): _count(v, f"{name}.existing.{k}")
            for k, v in dict(d.get("existing", {})).items()
        },
        unchanged_links=_count(d.get("unchanged_links", 0), f"{name}.unchanged_links"),
        protected=tuple(map(str, d.get("protected", ()))),
        planned_at=None if where is None else Endpoint.from_dict(where),
    )


# -- building ---------------------------------------------------------------------------------
def fingerprint_sum(state: State) -> int:
    """The unmasked sum behind :func:`fingerprint` (a sum: it can be updated item by item)."""
    acc = hash_sum(SEP.join(("s", s.id, s.name, s.description)) for s in state.segments.values())
    acc += hash_sum(SEP.join(("a", k, *sorted(v))) for k, v in state.access.items())
    acc += hash_sum(map(customer_item, state.customers))
    links = state.links
    distinct = {id(segs): segs for segs in links.values()}
    tails = {k: SEP + SEP.join(sorted(segs)) for k, segs in distinct.items()}
    keys = map(("l" + SEP).__add__, links.keys())
    acc += hash_sum(map(str.__add__, keys, map(tails.__getitem__, map(id, links.values()))))
    return acc


def fingerprint(state: State) -> str:
    """An order-independent digest of a state (a sum of per-item hashes: no sorting needed).

    Each item is hashed as its parts joined by ``\x1f`` (sorted ids for sets). Customers that
    share a segment set share its sorted, joined text, built once per distinct set.
    """
    return format_fingerprint(fingerprint_sum(state))


def format_fingerprint(total: int) -> str:
    return f"{total & MASK:032x}"


def _group(kind: str, keys: Sequence[str], message: str, limit: int = 8) -> str:
    shown = ", ".join(keys[:limit]) + (
        f" and {len(keys) - limit} more" if len(keys) > limit else ""
    )
    noun = kind if len(keys) == 1 else f"{kind}s"
    return f"{message} ({len(keys)} {noun}: {shown})"


@dataclass(frozen=True, slots=True)
class Overview:
    """What a plan says of the WHOLE remote when it diffed only part of the customers (the
    rest known unchanged): its fingerprint, its sizes, the unchanged links left out."""

    fingerprint: str
    existing: Mapping[str, int]
    unchanged_links: int


def build_target_plan(
    target: str,
    type_name: str,
    capabilities: Capabilities,
    desired: State,
    remote: RemoteState,
    ownership: Ownership,
    *,
    protected: Iterable[str] = (),
    overview: Overview | None = None,
) -> TargetPlan:
    """Diff, then let the target's capabilities turn what it cannot do into warnings.

    ``overview``: ``desired`` and ``remote`` hold only some of the customers (the ones that can
    change); the overview describes the rest of the remote."""
    phases = capabilities.phases
    result = diff(
        desired,
        remote.state,
        ownership,
        access=Phase.ACCESS in phases,
        customers=Phase.CUSTOMERS in phases,
        compare=capabilities.segment_fields,
    )
    warnings: list[str] = list(remote.warnings)
    kept: list[Change] = []
    dropped: dict[tuple[Phase, Action], list[str]] = {}
    caveated: dict[tuple[Phase, Action], list[str]] = {}
    for change in result.changes:
        k = (change.phase, change.action)
        if k in capabilities.unsupported:
            dropped.setdefault(k, []).append(change.key)
            continue
        if k in capabilities.caveats:
            caveated.setdefault(k, []).append(change.key)
        kept.append(change)
    for k, keys in dropped.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.unsupported[k]))
    for k, keys in caveated.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.caveats[k]))
    if "description" not in capabilities.segment_fields:
        described = sorted(s.id for s in desired.segments.values() if s.description)
        if described:
            warnings.append(
                _group(
                    "segment",
                    described,
                    "this target has no segment descriptions: the descriptions are not sent",
                )
            )
    if Phase.ACCESS not in phases:
        asked = sorted(s for s, teams in desired.access.items() if teams)
        if asked:
            note = capabilities.unsupported.get(
                (Phase.ACCESS, Action.UPDATE), "this target has no access control"
            )
            warnings.append(_group("segment", asked, f"{note}: access lists are not applied"))
    remote_state = remote.state
    if overview is None:
        overview = Overview(
            fingerprint(remote_state),
            {
                "segments": len(remote_state.segments),
                "customers": len(remote_state.customers),
                "links": remote_state.link_count(),
            },
            0,
        )
    return TargetPlan(
        target=target,
        type=type_name,
        changes=tuple(kept),
        warnings=tuple(warnings),
        unmanaged=result.unmanaged,
        sources={p.value: s.value for p, s in remote.sources.items()},
        remote_fingerprint=overview.fingerprint,
        existing=dict(overview.existing),
        unchanged_links=result.unchanged_links + overview.unchanged_links,
        protected=tuple(sorted(set(protected))),
    )


def check_safety(plan: TargetPlan, safety: Safety, *, force: bool = False) -> list[str]:
    """Raise :class:`UnsafePlanError` when the plan removes too much; return notes otherwise.

    ``prevent_destroy`` holds even with ``force``.
    """
    blocked = sorted(
        c.key
        for c in plan.changes
        if isinstance(c, SegmentChange) and c.action is Action.DELETE and c.key in plan.protected
    )
    if blocked:
        raise UnsafePlanError(
            f"target {plan.target!r}: the plan deletes segment(s) with prevent_destroy: "
            f"{', '.join(blocked)}; remove prevent_destroy first (--force does not override it)"
        )
    counts = plan.counts
    removed = {
        "segments": counts.by_phase.get("segments", {}).get("delete", 0),
        "customers": counts.by_phase.get("customers", {}).get("delete", 0),
        "links": counts.links_remove,
    }
    problems: list[str] = []
    for kind, n in removed.items():
        existing = int(plan.existing.get(kind, 0))
        if existing < safety.min_existing or n == 0:
            continue
        share = n / existing
        if share > safety.max_delete_share:
            problems.append(
                f"removes {n:,} of {existing:,} {kind} ({share:.1%}), over the "
                f"{safety.max_delete_share:.0%} limit by {share - safety.max_delete_share:.1%}"
            )
    if problems and not force:
        raise UnsafePlanError(
            f"target {plan.target!r}: unsafe plan: {'; '.join(problems)}. "
            "Re-run with --force if this is intended."
        )
    return [f"target {plan.target!r}: forced: {p}" for p in problems]
