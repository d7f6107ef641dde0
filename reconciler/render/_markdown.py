"""The Markdown rendering, sized for a pull-request comment.

GitHub refuses comments over 65,536 characters. Every target always gets its summary table and
its warnings; the per-change lists are folded in ``<details>`` and filled while the budget lasts,
then summarised with a pointer to the full plan.
"""

from __future__ import annotations

import re

from ..plan import Plan, Refresh, TargetPlan
from ._lines import describe, mark, printable
from ._text import summary_line

GITHUB_COMMENT_LIMIT = 65_536

_FOOTER = (
    "\n_Lists shortened to fit a comment: {hidden:,} change lines are not shown. "
    "Run {command} for the full plan._\n"
)


#: what Markdown (GitHub's included) would read as markup in running text: code spans,
#: emphasis, links and images, table cells, strike-through; ``&`` and ``<`` start entities and
#: HTML tags
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(text: str) -> str:
    """``text`` (a name, an id, a message) shown literally in running Markdown text."""
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(text: str) -> str:
    """``text`` as an inline code span, fenced by more backticks than any run inside it."""
    text = printable(text)
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _header(tp: TargetPlan) -> str:
    c = tp.counts
    ph = c.by_phase
    seg, acc, cus = ph.get("segments", {}), ph.get("access", {}), ph.get("customers", {})
    lines = [
        f"#### Target {md_code(tp.target)} ({tp.type})",
        "",
        "| segments + / ~ / - | access + / ~ / - | customers + | links + / - |",
        "|---|---|---|---|",
        f"| {seg.get('create', 0):,} / {seg.get('update', 0):,} / {seg.get('delete', 0):,} "
        f"| {acc.get('create', 0):,} / {acc.get('update', 0):,} / {acc.get('delete', 0):,} "
        f"| {cus.get('create', 0):,} | {c.links_add:,} / {c.links_remove:,} |",
        "",
    ]
    sources = ", ".join(f"{p.value}: {s.value}" for p, s in tp.sources.items())
    if sources:
        lines.append(f"<sub>Remote facts — {md_text(sources)}</sub>\n")
    lines += [f"> [!WARNING]\n> {md_text(w)}\n" for w in tp.warnings]
    if tp.unmanaged:
        lines.append(f"Unmanaged (left alone): {len(tp.unmanaged):,} segment(s)\n")
    return "\n".join(lines) + "\n"


def render_markdown(
    plan: Plan,
    *,
    limit: int = GITHUB_COMMENT_LIMIT - 1_536,
    full_plan: str | None = None,
) -> str:
    """Markdown no longer than ``limit`` characters (a margin below GitHub's cap by default).

    ``full_plan``: the command that prints the whole plan, named when lists are shortened (the
    CLI passes one with the flags of the run)."""
    command = md_code(full_plan or "reconcile plan --format json")
    footer = _FOOTER.format(hidden=0, command=command)
    head = [f"### {summary_line(plan.counts)}", ""]
    if not plan.has_changes:
        head.insert(0, "**No changes.** The remote matches the configuration.\n")
    if plan.refresh is Refresh.NONE:
        head.append("> Planned from the state store alone: remote drift is not visible.\n")
    headers = [_header(tp) for tp in plan.targets]
    # headers and the footer are always shown; the detail lists share what is left
    budget = limit - len(footer) - 32 - len("\n".join(head)) - sum(map(len, headers))
    hidden = 0
    parts = ["\n".join(head) + "\n"]
    for tp, header in zip(plan.targets, headers, strict=True):
        parts.append(header)
        for step, changes in tp.by_step():
            opening = f"<details><summary>{step.name} ({len(changes):,})</summary>\n\n```diff\n"
            closing = "```\n</details>\n\n"
            if len(opening) + len(closing) + 40 > budget:
                hidden += len(changes)
                continue
            budget -= len(opening) + len(closing) + 40
            block = [opening]
            for i, change in enumerate(changes):
                text = printable(f"{mark(change)} {describe(change)}").replace("```", "'''") + "\n"
                if len(text) > budget:
                    hidden += len(changes) - i
                    block.append(f"… {len(changes) - i:,} more\n")
                    break
                block.append(text)
                budget -= len(text)
            block.append(closing)
            parts.append("".join(block))
    if hidden:
        parts.append(_FOOTER.format(hidden=hidden, command=command))
    return "".join(parts)
