"""The drift report: terminal text and Markdown for a pull-request comment (the plan's own
Markdown follows it there)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._printable import literal
from ._markdown import COMMENT_BUDGET, md_code, md_text, render_markdown

if TYPE_CHECKING:  # the values only: a plan's rendering does not load the drift module
    from ..drift import DriftCheck, DriftReport, SnapshotReport

#: target → the command that refreshes its state store (the CLI's carries the run's flags)
RefreshCommand = Callable[[str], str]

_SNAPSHOT_KINDS = (
    ("segments", "missing", "managed segment(s) in the state store, gone from the platform"),
    ("segments", "differ", "segment(s) with other values on the platform"),
    ("access", "differ", "segment(s) with another access list on the platform"),
    ("customers", "missing", "customer(s) in the state store, not on the platform"),
    ("customers", "unknown", "customer(s) on the platform, unknown to the state store"),
    ("customers", "differ", "customer(s) in other segments than the state store records"),
)


def _refresh_command(target: str) -> str:
    return f"reconcile refresh --target {target}"


class _Quote:
    """How a report line quotes what it shows: text lines are made literal as a whole; Markdown
    escapes each value and fences each command."""

    def __init__(self, markdown: bool) -> None:
        self.value: Callable[[str], str] = md_text if markdown else str
        self.command: Callable[[str], str] = md_code if markdown else (lambda c: f"`{c}`")


def _shown(value: Any, q: _Quote) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{q.value(k)}={q.value(repr(v))}" for k, v in value.items()) or "none"
    return ", ".join(map(q.value, value)) or "none"


def _unchecked(report: SnapshotReport, name: str) -> str:
    by_source: dict[str, list[str]] = {}
    for phase, source in report.not_checked.items():
        by_source.setdefault(source, []).append(phase)
    where = "; ".join(f"{', '.join(ps)} from the {src}" for src, ps in by_source.items())
    return f"{name}: state store not checked: nothing here is read live ({where})"


def _snapshot_lines(report: SnapshotReport, fix: RefreshCommand, q: _Quote) -> list[str]:
    """The snapshot check of one target: a headline, then indented details."""
    name = q.value(report.target)
    if not report.checked:
        return [_unchecked(report, name)]
    read = ", ".join(report.checked)
    lines = []
    if report.in_sync:
        lines.append(f"{name}: the state store matches the platform ({read} read in full)")
    else:
        total = sum(report.counts().values())
        lines.append(
            f"{name}: the state store is stale: {total:,} difference(s) from a full read of {read}"
        )
        for area, kind, label in _SNAPSHOT_KINDS:
            found = report.found.get(area, {}).get(kind)
            if found is None or not found.count:
                continue
            shown = [
                f"{q.value(k)} (state store: {_shown(found.details[k][0], q)}; "
                f"platform: {_shown(found.details[k][1], q)})"
                if k in found.details
                else q.value(k)
                for k in found.examples
            ]
            more = f", … {found.count - len(shown):,} more" if found.count > len(shown) else ""
            lines.append(f"  {found.count:,} {label}: {', '.join(shown)}{more}")
    if report.not_checked:
        lines.append(
            f"  not checked: {', '.join(report.not_checked)} (the platform cannot read them; "
            "plans take them from the state store)"
        )
    if not report.in_sync:
        lines.append(
            f"  fix: {q.command(fix(report.target))} records what the platform holds in the "
            "state store (it writes nothing to the platform)"
        )
    return lines


def _pending_lines(r: DriftReport, stale: frozenset[str], q: _Quote) -> list[str]:
    """The pending changes of one target, by the side that moved."""
    name = q.value(r.target)
    if not r.changes:
        return [f"{name}: no pending change" if r.target in stale else f"{name}: in sync"]
    parts = [
        f"{r.sides.get('config', 0):,} from config edits not yet applied",
        f"{r.sides.get('remote', 0):,} from changes made on the platform",
    ]
    if r.sides.get("both"):
        parts.append(f"{r.sides['both']:,} where both moved")
    lines = [f"{name}: {r.changes:,} pending change(s): " + ", ".join(parts)]
    for side, keys in r.examples.items():
        lines.append(f"  {side}: {', '.join(map(q.value, keys))}")
    if r.blind:
        lines.append(
            f"  note: {', '.join(r.blind)} cannot be read from this platform; "
            "drift there is not visible"
        )
    return lines


def _lines(check: DriftCheck, fix: RefreshCommand, q: _Quote) -> tuple[list[str], list[str]]:
    """(the pending changes' lines, the snapshot checks' lines)."""
    stale = check.stale
    pending = [line for r in check.reports for line in _pending_lines(r, stale, q)]
    snapshots = [line for s in check.snapshots.values() for line in _snapshot_lines(s, fix, q)]
    return pending, snapshots


def render_drift_text(check: DriftCheck, *, refresh_command: RefreshCommand | None = None) -> str:
    """Rich markup, one line per fact, every value shown literally (print through a
    ``rich.console.Console``); ``""`` when there is nothing to say."""
    pending, snapshots = _lines(check, refresh_command or _refresh_command, _Quote(False))
    return "\n".join(literal(line) for line in [*pending, *snapshots])


def render_drift_markdown(
    check: DriftCheck,
    *,
    refresh_command: RefreshCommand | None = None,
    full_plan: str | None = None,
) -> str:
    """The drift report, then the plan (``full_plan``: see
    :func:`~reconciler.render.render_markdown`)."""
    pending, snapshots = _lines(check, refresh_command or _refresh_command, _Quote(True))
    text = "## Drift detected\n\n" if check.drifted else "## In sync\n\n"
    text += "\n".join(f"- {line.strip()}" for line in pending) + "\n\n"
    if snapshots:
        text += "### State store against a full read of the platform\n\n"
        text += "\n".join(
            f"  - {line.strip()}" if line.startswith("  ") else f"- {line}" for line in snapshots
        )
        text += "\n\n"
    # the plan gets what the report leaves of the comment's budget
    return text + render_markdown(check.plan, limit=COMMENT_BUDGET - len(text), full_plan=full_plan)
