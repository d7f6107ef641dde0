"""The Markdown rendering, sized for a pull-request comment.

GitHub refuses comments over 65,536 characters. The budget is spent in this order (each target's
blocks are still shown together, in reading order): the headline, the safety verdict and each
target's heading; every target's per-segment table (always whole); definition and access
changes; warnings and platform notes; samples of members entering and leaving; overlap (folded);
then the record lists, folded, until the budget is reached — the footer says what was left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import overload

from ..plan import Plan, Refresh, TargetPlan, Verdict
from ..plan.changes import Change, Phase
from ._budget import ALWAYS, Block, spend
from ._lines import describe, mark, printable
from ._review import Row, bar, definition_diff, refusal_parts, rows, sparkline, tally, words

__all__ = ["GITHUB_COMMENT_LIMIT", "md_code", "md_text", "render_markdown"]

GITHUB_COMMENT_LIMIT = 65_536
#: what a rendering may take: a margin below GitHub's cap for what a workflow adds (a marker)
COMMENT_BUDGET = GITHUB_COMMENT_LIMIT - 1_536

#: priorities of the blocks (lower is placed first)
_TABLE, _DEFINITIONS, _WARNINGS, _SAMPLES, _OVERLAP, _RECORDS = range(6)
_BAR_WIDTH = 12

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


def md_inline(text: str) -> str:
    """``text`` shown literally, its backquoted parts (```guards: {…}```) as code spans; all of
    it as text when its backquotes do not pair up."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return md_text(text)
    return "".join(md_code(p) if k % 2 else md_text(p) for k, p in enumerate(parts) if p)


def _fenced(lines: list[str]) -> tuple[str, list[str], str]:
    """(opening, lines, closing) of a ``diff`` code block that no line can close early."""
    lines = [printable(line) + "\n" for line in lines]
    longest = max((len(run) for line in lines for run in re.findall("`{3,}", line)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}diff\n", lines, f"{fence}\n"


def _verdict(verdict: Verdict, has_changes: bool) -> str:
    if not verdict.refusals:
        return "**Safe:** no guard refuses this plan.\n\n" if has_changes else ""
    blocking = verdict.blocking
    if blocking:
        said = [
            "> [!CAUTION]",
            f"> **Refused:** apply refuses this plan as it stands ({len(blocking):,} "
            f"reason{'s' if len(blocking) > 1 else ''}).",
        ]
        shown = blocking
    else:
        said = [
            "> [!WARNING]",
            f"> **Forced:** `--force` accepts {len(verdict.refusals):,} refusal(s).",
        ]
        shown = verdict.refusals
    said.append(">")
    for r in shown:
        segment, message = refusal_parts(r)
        where = md_code(r.target) + (f" · {md_code(segment)}" if segment else "")
        said.append(f"> - {where}: {md_text(message)}")
        accept = md_inline(r.accept) if r.accept else "nothing here accepts it"
        force = "" if r.forceable else " (`--force` does not override it)"
        said.append(f">   To accept: {accept}{force}.")
    accepted = len(verdict.refusals) - len(blocking)
    if blocking and accepted:
        said += [">", f"> `--force` accepts the {accepted:,} other refusal(s)."]
    return "\n".join(said) + "\n\n"


def _plan_blocks(plan: Plan, said: str) -> Iterator[Block]:
    if plan.has_changes:
        yield Block(ALWAYS, (-1, 0), f"### Plan: {said}\n\n")
    else:
        yield Block(
            ALWAYS,
            (-1, 0),
            "### Plan: no changes\n\n**No changes.** The remote matches the configuration.\n\n",
        )
    if plan.refresh is Refresh.NONE:
        note = "> Planned from the state store alone: remote drift is not visible.\n\n"
        yield Block(ALWAYS, (-1, 1), note)
    yield Block(ALWAYS, (-1, 2), _verdict(plan.verdict, plan.has_changes))


def _heading(i: int, tp: TargetPlan, said: str) -> Block:
    lines = [f"#### Target {md_code(tp.target)} ({md_text(tp.type)}): {said}", ""]
    sources = ", ".join(f"{p.value}: {s.value}" for p, s in tp.sources.items())
    if sources:
        lines += [f"<sub>Remote facts — {md_text(sources)}</sub>", ""]
    if tp.unmanaged:
        lines += [f"Unmanaged (left alone): {len(tp.unmanaged):,} segment(s)", ""]
    return Block(ALWAYS, (i, 0), "\n".join(lines) + "\n")


def _table_row(row: Row, largest: int, history: bool) -> str:
    r = row.review
    name = f"({r.name})" if r.name and r.name != r.id else ""
    before, after = bar(r.before, largest, _BAR_WIDTH), bar(r.after, largest, _BAR_WIDTH)
    picture = "<br>".join(
        f"`{b}` {n}" if b else n for b, n in ((before, row.before), (after, row.after))
    )
    cells = [
        f"{md_code(r.id)} {md_text(name)}".rstrip(),
        picture,
        f"{row.before} → {row.after}",
        row.added,
        row.removed,
        row.change,
        md_text(row.status),
    ]
    if history:
        shown = " · ".join(f"{n:,}" for n in r.history)
        cells.append(f"`{sparkline((*r.history, r.after))}` {shown}" if r.history else "")
    return "| " + " | ".join(cells) + " |\n"


def _table(i: int, tp: TargetPlan) -> Iterator[Block]:
    changing = rows(tp)
    if not changing:
        return
    largest = max(max(row.review.before, row.review.after) for row in changing)
    history = any(row.review.history for row in changing)
    head = "| segment | members | before → after | added | removed | change | status |"
    rule = "|---|---|--:|--:|--:|--:|---|"
    if history:
        head, rule = head + " last applied |", rule + "---|"
    unchanged = len(tp.review) - len(changing)
    legend = "Bars: members before (top) and after (bottom), to scale within the table."
    if unchanged:
        legend += f" {unchanged:,} other managed segment(s) unchanged."
    yield Block(
        _TABLE,
        (i, 1),
        f"{head}\n{rule}\n",
        [_table_row(row, largest, history) for row in changing],
        f"\n<sub>{legend}</sub>\n\n",
        unit="segment rows",
        cut=True,
    )


def _changes(i: int, tp: TargetPlan) -> Iterator[Block]:
    """The definition diffs, then the access changes."""
    for k, r in enumerate(tp.review):
        diff = definition_diff(r)
        if diff:
            opening, lines, closing = _fenced(diff)
            title = f"Definition of {md_code(r.id)}:\n\n"
            yield Block(
                _DEFINITIONS,
                (i, 2, k),
                title + opening,
                lines,
                closing + "\n",
                unit="definition lines",
                cut=True,
            )
    access = [c for c in tp.changes if c.phase is Phase.ACCESS]
    if access:
        opening, lines, closing = _fenced([f"{mark(c)} {describe(c)}" for c in access])
        yield Block(
            _DEFINITIONS,
            (i, 3),
            f"Access lists ({len(access):,}):\n\n" + opening,
            lines,
            closing + "\n",
            unit="access change lines",
            cut=True,
        )


def _notes(i: int, tp: TargetPlan) -> Iterator[Block]:
    """The warnings, each on its own; the platform's caveats in one fold."""
    for k, w in enumerate(tp.warnings):
        yield Block(_WARNINGS, (i, 4, k), f"> [!WARNING]\n> {md_text(w)}\n\n", unit="warnings")
    if tp.caveats:
        yield Block(
            _WARNINGS,
            (i, 5),
            f"<details><summary>What {md_text(tp.type)} never does "
            f"({len(tp.caveats):,})</summary>\n\n",
            [f"- {md_text(c)}\n" for c in tp.caveats],
            "\n</details>\n\n",
            unit="platform notes",
            cut=True,
        )


def _ids(ids: tuple[str, ...], total: int) -> str:
    shown = ", ".join(map(md_code, ids))
    return shown + (f" … of {total:,}" if total > len(ids) else "")


def _samples(i: int, tp: TargetPlan) -> Iterator[Block]:
    lines = []
    for r in tp.review:
        said = []
        if r.entering:
            said.append(f"entering {_ids(r.entering, r.added)}")
        if r.leaving:
            said.append(f"leaving {_ids(r.leaving, r.removed)}")
        if said:
            lines.append(f"- {md_code(r.id)}: {'; '.join(said)}\n")
    if lines:
        head = "Samples (the same ones each time the plan is made):\n\n"
        yield Block(_SAMPLES, (i, 6), head, lines, "\n", unit="sample lines", cut=True)


def _overlap(i: int, tp: TargetPlan) -> Iterator[Block]:
    lines = []
    for r in tp.review:
        if not (r.changes and r.overlap):
            continue
        ranked = sorted(r.overlap.items(), key=lambda kv: (-kv[1], kv[0]))
        shares = ", ".join(
            f"{md_code(other)}: {n:,}" + (f" ({n / r.after:.0%})" if r.after else "")
            for other, n in ranked
        )
        lines.append(f"| {md_code(r.id)} | {r.after:,} | {shares} |\n")
    if lines:
        head = (
            f"<details><summary>Overlap after the plan ({len(lines):,} segment(s))</summary>"
            "\n\n| segment | members after | also in |\n|---|--:|---|\n"
        )
        yield Block(
            _OVERLAP, (i, 7), head, lines, "\n</details>\n\n", unit="overlap rows", cut=True
        )


class _ChangeLines(Sequence[str]):
    """One line per change, each made when it is read: the budget reads only the ones it
    shows (of a million link changes, a comment shows a few thousand)."""

    def __init__(self, changes: Sequence[Change]) -> None:
        self._changes = changes

    def __len__(self) -> int:
        return len(self._changes)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return _ChangeLines(self._changes[index])
        c = self._changes[index]
        return printable(f"{mark(c)} {describe(c)}").replace("```", "'''") + "\n"


def _records(i: int, tp: TargetPlan) -> Iterator[Block]:
    """Each step's change lines, folded (the access changes are shown above)."""
    for k, (step, changes) in enumerate(tp.by_step()):
        if step.phase is Phase.ACCESS:
            continue
        opening = f"<details><summary>{step.name} ({len(changes):,})</summary>\n\n```diff\n"
        lines = _ChangeLines(changes)
        yield Block(
            _RECORDS,
            (i, 8, k),
            opening,
            lines,
            "```\n</details>\n\n",
            unit="change lines",
            cut=True,
        )


def _footer(hidden: dict[str, int], command: str) -> str:
    said = ", ".join(f"{n:,} {unit}" for unit, n in hidden.items() if n)
    if not said:
        return ""
    return (
        f"\n_Shortened to fit a comment: {said} are not shown. Run {command} for the full plan._\n"
    )


def render_markdown(
    plan: Plan,
    *,
    limit: int = COMMENT_BUDGET,
    full_plan: str | None = None,
) -> str:
    """Markdown no longer than ``limit`` characters (a margin below GitHub's cap by default),
    unless its headline, verdict and target headings alone are longer.

    ``full_plan``: the command that prints the whole plan, named when lists are shortened (the
    CLI passes one with the flags of the run)."""
    command = md_code(full_plan or "reconcile plan --format json")
    tallies = [tally(tp) for tp in plan.targets]
    blocks = list(_plan_blocks(plan, words(sum(tallies, Counter()))))
    for i, tp in enumerate(plan.targets):
        for part in (_table, _changes, _notes, _samples, _overlap, _records):
            blocks += part(i, tp)
        blocks.append(_heading(i, tp, words(tallies[i])))
    spent = spend(blocks, limit)
    if spent.hidden:  # shortened: spend it again with room for the footer that says so
        room = len(_footer({b.unit: 10**12 for b in blocks if b.unit}, command))
        spent = spend(blocks, limit - room)
    return spent.text + _footer(spent.hidden, command)
