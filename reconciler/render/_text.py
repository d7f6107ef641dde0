"""The terminal rendering: Rich markup, ``+ ~ -`` markers, a Terraform-style summary line."""

from __future__ import annotations

from .._printable import literal
from ..plan import Counts, Plan, Refresh
from ._lines import describe, mark

_COLOUR = {"+": "green", "~": "yellow", "-": "red", "=": "cyan"}


def summary_line(counts: Counts) -> str:
    return (
        f"Plan: {counts.create:,} to create, {counts.update:,} to update, "
        f"{counts.delete:,} to delete"
        + (f", {counts.forget:,} to forget" if counts.forget else "")
        + f"; {counts.links_add:,} links to add, {counts.links_remove:,} to remove."
    )


def render_text(plan: Plan, *, max_items: int | None = 50) -> str:
    """Rich markup (print through a ``rich.console.Console``; it strips colour when asked)."""
    out: list[str] = []
    for tp in plan.targets:
        sources = ", ".join(f"{p.value} from {s.value}" for p, s in tp.sources.items())
        out.append(f"[bold]Target {literal(tp.target)}[/bold] ({tp.type})  [dim]{sources}[/dim]")
        if not tp.changes:
            out.append("  [dim]no changes[/dim]")
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
        if tp.unchanged_links:
            out.append(f"  [dim]{tp.unchanged_links:,} customers' links already in sync[/dim]")
        for warning in tp.warnings:
            out.append(f"  [bold yellow]Warning:[/bold yellow] {literal(warning)}")
        if tp.unmanaged:
            more = f" and {len(tp.unmanaged) - 10} more" if len(tp.unmanaged) > 10 else ""
            unmanaged = literal(", ".join(tp.unmanaged[:10]))
            out.append(f"  [dim]Unmanaged (left alone): {unmanaged}{more}[/dim]")
        out.append("")
    if plan.refresh is Refresh.NONE:
        out.append(
            "[yellow]Planned from the state store alone (--refresh=false): remote drift is "
            "not visible in this plan.[/yellow]"
        )
    line = summary_line(plan.counts)
    out.append(f"[bold]{line}[/bold]" if plan.has_changes else "No changes. " + line)
    return "\n".join(out)
