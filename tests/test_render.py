"""The renderers of a small hand-built plan: text, Markdown and JSON.

The plan's changes are given out of execution order; every renderer lists them by step.
"""

from __future__ import annotations

import json

from rich.console import Console

from reconciler.model import Segment
from reconciler.plan import Plan, Source, TargetPlan, plan_from_json
from reconciler.plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from reconciler.render import md_code, md_text, render_json, render_markdown, render_text

CHANGES = (
    SegmentChange(Action.DELETE, "old"),
    LinkChange("c1", frozenset({"old"}), frozenset({"new"})),
    SegmentChange(Action.CREATE, "new", after=Segment("new", "New [bold]x\x1b[31m")),
    CustomerChange(Action.CREATE, "c1"),
    AccessChange(Action.UPDATE, "new", before=frozenset({"t1"}), after=frozenset({"t2"})),
)
WARNING = "Beware <b>*x*</b> [red]"


def _plan(changes: tuple[Change, ...] = CHANGES) -> Plan:
    target = TargetPlan(
        "eps",
        "epsilon",
        changes,
        warnings=(WARNING,),
        unmanaged=("u1",),
        sources={Phase.SEGMENTS: Source.LIVE},
    )
    return Plan("audiences.yaml", "d1", (target,), created="2026-01-01T00:00:00+00:00")


def _plain(markup: str) -> list[str]:
    console = Console(no_color=True, emoji=False, highlight=False, width=200, record=True)
    with console.capture() as capture:
        console.print(markup)
    return capture.get().splitlines()


def test_text_lists_steps_in_execution_order_with_markers() -> None:
    assert _plain(render_text(_plan())) == [
        "Target eps (epsilon)  segments from live read",
        "  segments (1)",
        '    + segment new  name="New [bold]x\\x1b[31m"',
        "  access (1)",
        "    ~ access new  1 team(s): + t2  - t1",
        "  customers (1)",
        "    + customer c1",
        "  links (1)",
        "    ~ customer c1  + new  - old",
        "  segments (removals) (1)",
        "    - segment old",
        f"  Warning: {WARNING}",
        "  Unmanaged (left alone): u1",
        "",
        "Plan: 2 to create, 1 to update, 1 to delete; 1 links to add, 1 to remove.",
    ]


def test_text_escapes_markup_and_control_characters() -> None:
    markup = render_text(_plan())
    assert "New \\[bold]x\\x1b[31m" in markup  # rich reads "[31m" as no tag
    assert "\x1b" not in markup
    assert "Warning:[/bold yellow] Beware <b>*x*</b> \\[red]" in markup
    assert markup.count("[green]+ ") == 2
    assert markup.count("[yellow]~ ") == 2
    assert "    [red]- segment old[/red]" in markup


def test_text_of_an_empty_plan_and_shortened_lists() -> None:
    assert _plain(render_text(_plan(())))[-1] == (
        "No changes. Plan: 0 to create, 0 to update, 0 to delete; 0 links to add, 0 to remove."
    )
    many = tuple(CustomerChange(Action.CREATE, f"c{i}") for i in range(5))
    lines = _plain(render_text(_plan(many), max_items=2))
    assert lines[1:5] == [
        "  customers (5)",
        "    + customer c0",
        "    + customer c1",
        "    … 3 more (--full lists them all, --format json gives every change)",
    ]


def test_markdown_has_the_summary_then_the_table_then_each_step_folded() -> None:
    md = render_markdown(_plan())
    order = [
        "### Plan: 2 to create, 1 to update, 1 to delete; 1 links to add, 1 to remove.",
        "#### Target `eps` (epsilon)",
        "| 1 / 0 / 1 | 0 / 1 / 0 | 1 | 1 / 1 |",
        "> [!WARNING]\n> Beware &lt;b&gt;\\*x\\*&lt;/b&gt; \\[red\\]",
        "Unmanaged (left alone): 1 segment(s)",
        "<details><summary>segments (1)</summary>\n\n```diff\n+ segment new",
        "<details><summary>access (1)</summary>\n\n```diff\n~ access new  1 team(s): + t2  - t1",
        "<details><summary>customers (1)</summary>\n\n```diff\n+ customer c1\n```",
        "<details><summary>links (1)</summary>\n\n```diff\n~ customer c1  + new  - old\n```",
        "<details><summary>segments (removals) (1)</summary>\n\n```diff\n- segment old\n```",
    ]
    at = [md.index(part) for part in order]
    assert at == sorted(at)
    assert "\x1b" not in md
    assert "_Lists shortened" not in md


def test_markdown_shortens_lists_to_the_limit_and_says_so() -> None:
    many = tuple(CustomerChange(Action.CREATE, f"customer-{i:05d}") for i in range(2_000))
    md = render_markdown(_plan(many), limit=4_000, full_plan="reconcile plan --full")
    assert len(md) <= 4_000
    assert "#### Target `eps` (epsilon)" in md
    assert "more\n```" in md
    assert "Run `reconcile plan --full` for the full plan._" in md


def test_markdown_escaping_helpers() -> None:
    assert md_text("a_b *c* `d` <e> & [f](g) | h") == (
        "a\\_b \\*c\\* \\`d\\` &lt;e&gt; &amp; \\[f\\](g) \\| h"
    )
    assert md_code("x") == "`x`"
    assert md_code("a `b` c") == "``a `b` c``"
    assert md_code("`start") == "`` `start ``"


def test_json_holds_every_change_in_plan_order_and_reads_back() -> None:
    text = render_json(_plan())
    data = json.loads(text)
    assert text.endswith("}\n")
    assert list(data) == [
        "format_version",
        "created",
        "config",
        "refresh",
        "summary",
        "verdict",
        "targets",
    ]
    assert data["summary"]["create"] == 2
    assert data["summary"]["links_add"] == 1
    (target,) = data["targets"]
    assert [(c["phase"], c["action"], c["key"]) for c in target["changes"]] == [
        ("segments", "delete", "old"),
        ("links", "update", "c1"),
        ("segments", "create", "new"),
        ("customers", "create", "c1"),
        ("access", "update", "new"),
    ]
    assert target["changes"][1]["add"] == ["new"]
    assert target["changes"][2]["after"]["name"] == "New [bold]x\x1b[31m"  # JSON escapes it
    assert "\x1b" not in text
    assert target["warnings"] == [WARNING]
    assert plan_from_json(text) == _plan()
