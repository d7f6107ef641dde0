"""``reconcile explain``: why a customer is where it is — the rule, file or ids that put it
in each segment, the values its rules read, and per target whether it is a member now (as last
applied) and once the config is applied."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from .._printable import literal
from ._common import (
    EnvOpt,
    FileArg,
    SandboxOpt,
    StateOpt,
    ValidateFormat,
    out,
    state_path,
    write_json,
)

__all__ = ["explain"]


def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer id to explain.")],
    file: FileArg = Path("audiences.yaml"),
    state: StateOpt = None,
    sandbox: SandboxOpt = False,
    format: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.text,
    env: EnvOpt = None,
) -> None:
    """Which segments a customer is in, on which targets, and which rule or file put them there;
    the values its rules read; per target, whether it is a member now and after the plan."""
    from ..config import explain_customer, load

    config = load(file, env=env)
    found = explain_customer(config, customer_id)
    path = state_path(config.path, state, sandbox, env)
    targets = _targets(config, found, path)
    if format is ValidateFormat.json:
        write_json({**_as_json(found, targets, config), "applied": path.is_file()})
        return
    _print(found, targets, config)
    if not path.is_file():
        out.print(f"  (no state store at {literal(path)}: nothing applied yet with it)")


def _targets(config: Any, found: Any, path: Path) -> dict[str, dict[str, Any]]:
    """Per target: the managed segments the customer is in now (as last applied; None when
    the record knows no such customer or no store exists), after the plan, and the moves."""
    from ..statestore import StateStore

    members = found.members()
    store = StateStore(path) if path.is_file() else None
    try:
        result: dict[str, dict[str, Any]] = {}
        for name in config.targets:
            declared = {s.id for s in config.segments if name in s.targets}
            after = sorted(seg for seg, on in members.items() if name in on)
            now: list[str] | None = None
            if store is not None:
                managed = declared | store.managed_segments(name)
                applied = store.segments_of(name, found.customer_id)
                now = None if applied is None else sorted(applied & managed)
            was = set(now or ())
            result[name] = {
                "now": now,
                "after": after,
                "entering": sorted(set(after) - was),
                "leaving": sorted(was - set(after)),
            }
        return result
    finally:
        if store is not None:
            store.close()


def _plain(value: Any) -> Any:
    """A source value as JSON can hold it (dates and decimals as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal | dt.date | dt.datetime | dt.time):
        return str(value)
    return repr(value)


def _as_json(found: Any, targets: dict[str, Any], config: Any) -> dict[str, Any]:
    return {
        "customer": found.customer_id,
        "known": found.known,
        "values": {
            src: None if row is None else {k: _plain(v) for k, v in row.items()}
            for src, row in found.values.items()
        },
        "reasons": [
            {
                "segment": r.segment_id,
                "targets": list(r.targets),
                "via": r.via,
                "detail": r.detail,
                "line": r.location[0],
                "column": r.location[1],
                "excluded": r.excluded,
            }
            for r in found.reasons
        ],
        "targets": targets,
    }


def _print(found: Any, targets: dict[str, Any], config: Any) -> None:
    cid = literal(found.customer_id)
    if not found.known:
        sources = ", ".join(sorted(config.customer_sources)) or "none"
        out.print(
            f"[yellow]{cid} is not a known customer[/yellow]: no customer source "
            f"({literal(sources)}), member file or ids list of this config holds that id."
        )
    else:
        members = found.members()
        out.print(f"{cid} is in {len(members)} segment(s)" + (":" if found.reasons else "."))
    by_segment: dict[str, list[Any]] = {}
    for r in found.reasons:
        by_segment.setdefault(r.segment_id, []).append(r)
    for seg_id, rs in by_segment.items():
        head = "excluded from" if any(r.excluded for r in rs) else "in"
        out.print(f"  {head} [bold]{literal(seg_id)}[/bold] on {literal(', '.join(rs[0].targets))}")
        for r in rs:
            verb = "excluded by" if r.excluded else "by"
            out.print(
                f"    {verb} {literal(r.via)}: {literal(r.detail)} "
                f"({literal(config.path.name)}:{r.location[0]}:{r.location[1]})"
            )
    for src, row in found.values.items():
        if row is None:
            out.print(f"  source {literal(src)}: no row with this id")
        elif row:
            shown = ", ".join(f"{k}={v!r}" for k, v in row.items())
            out.print(f"  source {literal(src)} holds: {literal(shown)}")
    out.print("Per target (now: as last applied; after: once this config is applied):")
    _print_targets(targets)


def _print_targets(targets: dict[str, Any]) -> None:
    for name, t in targets.items():
        now = t["now"]
        was = "not in the record" if now is None else ", ".join(now) or "no managed segment"
        after = ", ".join(t["after"]) or "no segment"
        moves = [f"enters {s}" for s in t["entering"]] + [f"leaves {s}" for s in t["leaving"]]
        tail = f" ({'; '.join(moves)})" if moves and now is not None else ""
        out.print(f"  {literal(name)}: now {literal(was)}; after {literal(after)}{literal(tail)}")
