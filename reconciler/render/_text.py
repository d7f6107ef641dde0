"""The terminal rendering: Rich markup. The safety verdict first; per target the per-segment
table (coloured), the definition diffs and samples, then the record lists with ``+ ~ -``
markers (shortened unless ``--all-changes``); a Terraform-style summary line last."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

from .._printable import literal
from ..plan import Plan, Refresh, SegmentStatus, TargetPlan, Verdict
from ._lines import describe, mark
from ._review import MINUS, Row, definition_diff, headline, refusal_parts, rows, sparkline

__all__ = ["render_text", "summary_line"]

_COLOUR = {"+": "green", "~": "yellow", "-": "red", "=": "cyan"}
_STATUS_COLOUR = {
    SegmentStatus.CREATED: "green",
    SegmentStatus.DELETED: "red",
    SegmentStatus.FORGOTTEN: "cyan",
    SegmentStatus.RENAMED: "yellow",
    SegmentStatus.UPDATED: "yellow",
}
_NAME_WIDTH = 44
_BAR_WIDTH = 16
_HEADINGS = ("segment", "before", "after", "added", "removed", "change", "status")


def summary_line(plan: Plan) -> str:
    """``Plan: 1 segment to create; 12 memberships to add.``: each object named for what it
    is."""
    return f"Plan: {headline(plan.targets)}."


def _verdict(verdict: Verdict, has_changes: bool) -> list[str]:
    if not verdict.refusals:
        return ["[green]Safe:[/green] no guard refuses this plan.", ""] if has_changes else []
    blocking = verdict.blocking
    if blocking:
        n = len(blocking)
        out = [
            f"[bold red]Refused:[/bold red] apply refuses this plan as it stands "
            f"({n:,} reason{'s' if n > 1 else ''}):"
        ]
    else:
        out = [f"[bold yellow]Forced:[/bold yellow] --force accepts {len(verdict.refusals):,}:"]
    for r in blocking or verdict.refusals:
        segment, message = refusal_parts(r)
        where = literal(r.target) + (f" · {literal(segment)}" if segment else "")
        out.append(f"  [red]✗[/red] {where}: {literal(message)}")
        accept = literal(r.accept) if r.accept else "nothing here accepts it"
        force = "" if r.forceable else " (--force does not override it)"
        out.append(f"    [dim]to accept:[/dim] {accept}{force}")
    accepted = len(verdict.refusals) - len(blocking)
    if blocking and accepted:
        out.append(f"  [dim]--force accepts the {accepted:,} other refusal(s)[/dim]")
    return [*out, ""]


def _bar(row: Row, largest: int) -> str:
    """Kept members ``█``, entering ``▓`` (green), leaving ``░`` (red), to one scale."""
    r = row.review
    kept = r.before - r.removed
    cells = [round(n * _BAR_WIDTH / largest) if largest else 0 for n in (kept, r.added, r.removed)]
    cells = [max(c, 1) if n else 0 for c, n in zip(cells, (kept, r.added, r.removed), strict=True)]
    return f"{'█' * cells[0]}[green]{'▓' * cells[1]}[/green][red]{'░' * cells[2]}[/red]"


def _cells(row: Row) -> list[str]:
    return [
        set_cell_size(row.segment, _NAME_WIDTH - 1).rstrip() + "…"
        if cell_len(row.segment) > _NAME_WIDTH
        else row.segment,
        row.before,
        row.after,
        row.added,
        row.removed,
        row.change,
        row.status,
    ]


def _table(tp: TargetPlan) -> list[str]:
    changing = rows(tp)
    if not changing:
        return []
    cells = [_cells(row) for row in changing]
    widths = [max(cell_len(c) for c in column) for column in zip(_HEADINGS, *cells, strict=True)]
    largest = max(r.review.before + r.review.added for r in changing)

    def line(values: list[str], colours: list[str]) -> str:
        out = []
        for k, (value, width, colour) in enumerate(zip(values, widths, colours, strict=True)):
            pad = " " * (width - cell_len(value))
            text = literal(value)
            if colour:
                text = f"[{colour}]{text}[/{colour}]"
            out.append(text + pad if k in (0, len(values) - 1) else pad + text)
        return "  " + "  ".join(out)

    out = [line(list(_HEADINGS), ["dim"] * len(_HEADINGS))]
    for row, values in zip(changing, cells, strict=True):
        r = row.review
        change = "red" if row.change.startswith(MINUS) else "green" if r.delta > 0 else ""
        colours = ["bold", "", "", "green", "red", change, _STATUS_COLOUR.get(r.status, "")]
        said = line(values, colours) + "  " + _bar(row, largest)
        if r.history:
            history = ", ".join(f"{n:,}" for n in r.history)
            said += f"  [dim]last applied {sparkline((*r.history, r.after))} {history}[/dim]"
        out.append(said)
    unchanged = len(tp.review) - len(changing)
    if unchanged:
        out.append(f"  [dim]{unchanged:,} other managed segment(s) unchanged[/dim]")
    return out


def _review(tp: TargetPlan) -> list[str]:
    """The definition diffs and the samples of members entering and leaving."""
    out: list[str] = []
    diff_colour = {"+": "green", "-": "red", "@": "cyan"}
    for r in tp.review:
        diff = definition_diff(r)
        if diff:
            out.append(f"  [bold]definition of {literal(r.id)}[/bold]")
            for d in diff:
                colour = diff_colour.get(d[:1], "") if not d.startswith(("+++", "---")) else "dim"
                out.append(
                    f"    [{colour}]{literal(d)}[/{colour}]" if colour else f"    {literal(d)}"
                )
    for r in tp.review:
        said = []
        for verb, ids, total in (
            ("entering", r.entering, r.added),
            ("leaving", r.leaving, r.removed),
        ):
            if ids:
                more = f" … of {total:,}" if total > len(ids) else ""
                said.append(f"{verb} {literal(', '.join(ids))}{more}")
        if said:
            out.append(f"  [dim]{literal(r.id)}:[/dim] " + "; ".join(said))
    return out


def _records(tp: TargetPlan, max_items: int | None) -> list[str]:
    out = []
    for step, changes in tp.by_step():
        out.append(f"  [bold]{step.name}[/bold] ({len(changes):,})")
        shown = changes if max_items is None else changes[:max_items]
        for change in shown:
            m = mark(change)
            out.append(f"    [{_COLOUR[m]}]{m} {literal(describe(change))}[/{_COLOUR[m]}]")
        if len(shown) < len(changes):
            out.append(
                f"    [dim]… {len(changes) - len(shown):,} more (--all-changes lists them all, "
                "--format json gives every change)[/dim]"
            )
    return out


def _target(tp: TargetPlan, max_items: int | None) -> list[str]:
    sources = ", ".join(f"{p.value} from {s.value}" for p, s in tp.sources.items())
    out = [f"[bold]Target {literal(tp.target)}[/bold] ({literal(tp.type)})  [dim]{sources}[/dim]"]
    if not tp.changes:
        out.append("  [dim]no changes[/dim]")
    out += _table(tp) + _review(tp) + _records(tp, max_items)
    if tp.unchanged_links:
        out.append(f"  [dim]{tp.unchanged_links:,} customers' links already in sync[/dim]")
    for warning in tp.warnings:
        out.append(f"  [bold yellow]Warning:[/bold yellow] {literal(warning)}")
    for caveat in tp.caveats:
        out.append(f"  [dim]Note: {literal(caveat)}[/dim]")
    if tp.unmanaged:
        more = f" and {len(tp.unmanaged) - 10} more" if len(tp.unmanaged) > 10 else ""
        unmanaged = literal(", ".join(tp.unmanaged[:10]))
        out.append(f"  [dim]Unmanaged (left alone): {unmanaged}{more}[/dim]")
    return [*out, ""]


def render_text(plan: Plan, *, max_items: int | None = 50) -> str:
    """Rich markup (print through a ``rich.console.Console``; it strips colour when asked)."""
    out = _verdict(plan.verdict, plan.has_changes)
    for tp in plan.targets:
        out += _target(tp, max_items)
    if plan.refresh is Refresh.NONE:
        out.append(
            "[yellow]Planned from the state store alone (--refresh=false): remote drift is "
            "not visible in this plan.[/yellow]"
        )
    if plan.has_changes:
        out.append(f"[bold]{literal(summary_line(plan))}[/bold]")
    else:
        out.append("No changes. The remote matches the configuration.")
    return "\n".join(out)
