"""The review of a plan as text and Markdown, on plans built by hand: the headline, the safety
verdict at the top, the per-segment table before the record lists, and the comment's budget
spent in its order."""

from __future__ import annotations

import functools
import re

import pytest
from rich.console import Console

from reconciler.drift import DriftCheck, DriftReport
from reconciler.model import Segment
from reconciler.plan import (
    Definition,
    Plan,
    Refusal,
    SegmentReview,
    SegmentStatus,
    Source,
    TargetPlan,
    Verdict,
)
from reconciler.plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from reconciler.render import (
    GITHUB_COMMENT_LIMIT,
    render_drift_markdown,
    render_markdown,
    render_text,
    summary_line,
)

SHRINK = "general-segment-3"
RULE_BEFORE = (
    "id: general-segment-3\nmembers:\n  rule:\n    attribute: visits_per_week\n    gte: 1\n"
)
REFUSAL = Refusal(
    "eps",
    SHRINK,
    "max_removed_share",
    "removes 30,000 of 40,000 members (75%), more than its guard of 30%",
    "set guards: {max_removed_share: 0.8} on general-segment-3 in this pull request, "
    "or apply with --force",
)


@functools.cache
def _big_plan(
    customers: int = 50_000, verdict: Verdict | None = None, listed: int = 30_000
) -> Plan:
    """A rename, a new segment, and a segment losing 30,000 of its 40,000 members (``listed``
    of them in the record lists), with ``customers`` customer records created and linked to
    the new segment (made once per arguments: a plan is immutable)."""
    leaving = [f"cust-{i:06d}" for i in range(listed)]
    new = [f"new-{i:06d}" for i in range(customers)]
    changes: list[Change] = [
        SegmentChange(Action.CREATE, "new-seg", after=Segment("new-seg", "Weekend Shoppers")),
        SegmentChange(
            Action.UPDATE,
            "talon-vip",
            before=Segment("talon-vip", "VIP"),
            after=Segment("talon-vip", "Very Important"),
            fields=("name",),
        ),
        AccessChange(Action.UPDATE, "new-seg", after=frozenset({"team-1"})),
        *(CustomerChange(Action.CREATE, c) for c in new),
        *(LinkChange(c, frozenset({SHRINK}), frozenset()) for c in leaving),
        *(LinkChange(c, frozenset(), frozenset({"new-seg"})) for c in new),
    ]
    review = (
        SegmentReview(
            SHRINK,
            "Recurring Shoppers",
            SegmentStatus.MEMBERS,
            40_000,
            10_000,
            0,
            30_000,
            leaving=tuple(leaving[:3]),
            definition=Definition(RULE_BEFORE, RULE_BEFORE.replace("gte: 1", "gte: 2")),
            overlap={"new-seg": 120},
            history=(39_000, 39_500, 40_000),
        ),
        SegmentReview(
            "new-seg",
            "Weekend Shoppers",
            SegmentStatus.CREATED,
            0,
            customers,
            customers,
            0,
            entering=tuple(new[:3]),
            definition=Definition("", "id: new-seg\nmembers:\n  files: [weekend.txt]\n"),
        ),
        SegmentReview("talon-vip", "Very Important", SegmentStatus.RENAMED, 800, 800, 0, 0),
        SegmentReview("untouched", "Untouched", SegmentStatus.UNCHANGED, 5, 5, 0, 0),
    )
    tp = TargetPlan(
        "eps",
        "epsilon",
        tuple(changes),
        warnings=("sampled customers differ from what was last applied",),
        sources={Phase.SEGMENTS: Source.STATE_STORE, Phase.LINKS: Source.LIVE},
        review=review,
        verdict=verdict or Verdict((REFUSAL,)),
        caveats=("this target has no segment descriptions: the descriptions are not sent",),
    )
    return Plan("audiences.yaml", "d1", (tp,), created="2026-01-01T00:00:00+00:00")


def _plain(markup: str) -> str:
    console = Console(no_color=True, emoji=False, highlight=False, width=250, record=True)
    with console.capture() as capture:
        console.print(markup)
    return capture.get()


def test_a_50k_customer_comment_fits_and_reviews_before_any_customer_list() -> None:
    md = render_markdown(_big_plan())
    assert len(md) <= GITHUB_COMMENT_LIMIT - 1_536
    first_list = md.index("<details><summary>customers (50,000)</summary>")
    rename = md.index("| `talon-vip` (Very Important) |")
    new = md.index("| `new-seg` (Weekend Shoppers) |")
    shrink = md.index("| `general-segment-3` (Recurring Shoppers) |")
    headline = md.index(
        "### Plan: 1 segment to create, 1 to rename; 1 access list to change; "
        "50,000 customer records to create; 50,000 memberships to add, 30,000 to remove\n"
    )
    verdict = md.index("**Refused:** apply refuses this plan as it stands (1 reason).")
    assert headline < verdict < shrink < new < rename < first_list
    assert "40,000 → 10,000 | 0 | -30,000 | -75% | members |" in md[shrink:new]
    assert "0 → 50,000 | +50,000 | 0 | new | created |" in md[new:rename]
    assert '800 → 800 | 0 | 0 | 0% | renamed from "VIP" |' in md[rename:first_list]
    assert "`untouched`" not in md  # unchanged segments are counted, not listed
    assert "1 other managed segment(s) unchanged" in md
    assert re.search(r"_Shortened to fit a comment: [\d,]+ change lines are not shown\.", md)


def test_the_verdict_says_what_refuses_and_how_to_accept_it() -> None:
    md = render_markdown(_big_plan(10))
    assert md.index("> [!CAUTION]") < md.index("#### Target `eps`")
    assert (
        "> - `eps` · `general-segment-3`: removes 30,000 of 40,000 members (75%), more than "
        "its guard of 30%\n>   To accept: set guards: {max\\_removed\\_share: 0.8} on "
        "general-segment-3 in this pull request, or apply with --force.\n"
    ) in md
    text = _plain(render_text(_big_plan(10)))
    assert text.startswith("Refused: apply refuses this plan as it stands (1 reason):\n")
    assert "  ✗ eps · general-segment-3: removes 30,000 of 40,000 members" in text
    assert "    to accept: set guards: {max_removed_share: 0.8}" in text


def test_a_refusal_that_names_its_target_and_quotes_its_setting() -> None:
    said = Refusal(
        "talon",
        SHRINK,
        "max_removed_share",
        "target 'talon': general-segment-3 (Recurring Shoppers): 1,155 → 438 members",
        "add `guards: {max_removed_share: 0.65}` on segment general-segment-3, or `--force`",
    )
    md = render_markdown(_big_plan(10, Verdict((said,))))
    assert (
        "> - `talon`: general-segment-3 (Recurring Shoppers): 1,155 → 438 members\n"
        ">   To accept: add `guards: {max_removed_share: 0.65}` on segment general-segment-3, "
        "or `--force`.\n"
    ) in md
    text = _plain(render_text(_big_plan(10, Verdict((said,)))))
    assert "  ✗ talon: general-segment-3 (Recurring Shoppers): 1,155 → 438 members\n" in text


def test_a_forced_or_safe_verdict_and_one_force_cannot_override() -> None:
    forced = _big_plan(10, Verdict((REFUSAL,), forced=True))
    assert "> [!WARNING]\n> **Forced:** `--force` accepts 1 refusal(s)." in render_markdown(forced)
    assert _plain(render_text(forced)).startswith("Forced: --force accepts 1:\n")
    keep = Refusal("eps", "vip", "prevent_destroy", "deletes vip", "", forceable=False)
    held = _big_plan(10, Verdict((REFUSAL, keep), forced=True))
    md = render_markdown(held)
    assert "(1 reason)" in md  # the forced one is accepted, prevent_destroy stands
    assert "To accept: nothing here accepts it (`--force` does not override it)." in md
    assert "> `--force` accepts the 1 other refusal(s).\n" in md
    assert "  --force accepts the 1 other refusal(s)\n" in _plain(render_text(held))
    safe = _big_plan(10, Verdict())
    assert "**Safe:** no guard refuses this plan." in render_markdown(safe)
    assert _plain(render_text(safe)).startswith("Safe: no guard refuses this plan.\n")


def test_headline_names_each_object_for_what_it_is() -> None:
    changes: tuple[Change, ...] = (
        SegmentChange(Action.CREATE, "a", after=Segment("a", "A")),
        SegmentChange(Action.CREATE, "b", after=Segment("b", "B")),
        SegmentChange(Action.UPDATE, "c", Segment("c", "C"), Segment("c", "C2"), fields=("name",)),
        SegmentChange(
            Action.UPDATE, "d", Segment("d", "D", "x"), Segment("d", "D", "y"), ("description",)
        ),
        SegmentChange(Action.DELETE, "e"),
        SegmentChange(Action.FORGET, "f"),
        AccessChange(Action.UPDATE, "a", after=frozenset({"t"})),
        AccessChange(Action.UPDATE, "b", after=frozenset({"t"})),
        CustomerChange(Action.CREATE, "k1"),
        CustomerChange(Action.DELETE, "k2"),
        LinkChange("k1", frozenset({"e"}), frozenset({"a", "b"})),
    )
    plan = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", changes),))
    assert summary_line(plan) == (
        "Plan: 2 segments to create, 1 to rename, 1 to update, 1 to delete, 1 to forget; "
        "2 access lists to change; 1 customer record to create, 1 to delete; "
        "2 memberships to add, 1 to remove."
    )
    links_only = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", changes[-1:]),))
    assert summary_line(links_only) == "Plan: 2 memberships to add, 1 to remove."
    assert render_markdown(links_only).startswith("### Plan: 2 memberships to add, 1 to remove\n")


def test_the_text_plan_shows_the_coloured_table_before_the_record_lists() -> None:
    markup = render_text(_big_plan(10))
    text = _plain(markup)
    table = text.index("  segment ")
    row = text.index("  general-segment-3 (Recurring Shoppers)")
    assert text.index("Target eps") < table < row < text.index("  customers (10)")
    assert re.search(r"40,000\s+10,000\s+0\s+-30,000\s+-75%\s+members", text)
    assert re.search(r"800\s+800\s+0\s+0\s+0%\s+renamed from \"VIP\"", text)
    assert "last applied ███▁ 39,000, 39,500, 40,000" in text
    assert "[red]-30,000[/red]" in markup
    assert "[green]+10[/green]" in markup
    assert "[green]created[/green]" in markup
    # the definition diff and the samples come with the table, before the records
    assert (
        row < text.index("-    gte: 1") < text.index("+    gte: 2") < text.index("customers (10)")
    )
    assert "general-segment-3: leaving cust-000000, cust-000001, cust-000002 … of 30,000" in text
    assert "  Note: this target has no segment descriptions" in text
    assert "Warning: this target has no segment descriptions" not in text


def test_markdown_sections_come_in_their_order() -> None:
    md = render_markdown(_big_plan(10))
    parts = [
        "| segment | members | before → after | added | removed | change | status | last",
        "Definition of `general-segment-3`:\n\n```diff\n--- general-segment-3 (last applied)\n"
        "+++ general-segment-3 (declared)\n",
        "-    gte: 1\n+    gte: 2\n```",
        "Definition of `new-seg`:\n\n```diff\n--- new-seg (new segment)\n",
        "Access lists (1):\n\n```diff\n~ access new-seg  1 team(s): + team-1\n```",
        "> [!WARNING]\n> sampled customers differ",
        "<details><summary>What epsilon never does (1)</summary>\n\n- this target has no",
        "- `general-segment-3`: leaving `cust-000000`, `cust-000001`, `cust-000002` … of 30,000",
        "- `new-seg`: entering `new-000000`, `new-000001`, `new-000002` … of 10",
        "<details><summary>Overlap after the plan (1 segment(s))</summary>",
        "| `general-segment-3` | 10,000 | `new-seg`: 120 (1%) |",
        "<details><summary>segments (2)</summary>",
        "<details><summary>customers (10)</summary>",
        "<details><summary>links (30,010)</summary>",
    ]
    at = [md.index(p) for p in parts]
    assert at == sorted(at)
    assert "> [!WARNING]\n> this target has no segment descriptions" not in md


def test_bars_and_history_picture_the_sizes_beside_the_numbers() -> None:
    md = render_markdown(_big_plan(10))
    row = next(line for line in md.splitlines() if line.startswith("| `general-segment-3`"))
    # before fills the width (the largest in the table), after is a quarter of it
    assert "| `████████████` 40,000<br>`███` 10,000 |" in row
    # the last applied sizes, then the new one, from the smallest (▁) to the largest (█)
    assert row.endswith("| `███▁` 39,000 · 39,500 · 40,000 |")
    new_row = next(line for line in md.splitlines() if line.startswith("| `new-seg`"))
    assert "| 0<br>`▏` 10 |" in new_row  # none before; a sliver for 10 beside 40,000


#: what each budget step adds, in the order the budget is spent
STEPS = [
    ("table", "| `general-segment-3` (Recurring Shoppers) |"),
    ("definitions", "Definition of `general-segment-3`:"),
    ("access", "Access lists (1):"),
    ("warnings", "> [!WARNING]\n> sampled customers"),
    ("caveats", "<details><summary>What epsilon never does"),
    ("samples", "Samples (the same ones"),
    ("overlap", "<details><summary>Overlap after the plan"),
    ("records", "<details><summary>segments (2)</summary>"),
]


def test_each_budget_step_is_spent_only_once_the_ones_before_it_are_whole() -> None:
    plan = _big_plan(6, listed=6)
    full = render_markdown(plan, limit=10**7)
    assert "_Shortened" not in full
    fixed = render_markdown(plan, limit=0)
    assert "| `talon-vip`" not in fixed  # with no budget at all the table is cut
    seen: list[tuple[str, ...]] = []
    for limit in range(len(fixed), len(full) + 60, 7):
        md = render_markdown(plan, limit=limit)
        assert len(md) <= max(limit, len(fixed))
        present = tuple(name for name, marker in STEPS if marker in md)
        assert present == tuple(name for name, _ in STEPS[: len(present)]), (limit, present)
        if present != tuple(name for name, _ in STEPS):
            assert "_Shortened to fit a comment: " in md, limit
        seen.append(present)
    assert len(set(seen)) == len(STEPS) + 1  # every step was reached on its own
    assert render_markdown(plan, limit=len(full)) == full


def test_a_table_longer_than_the_comment_is_cut_and_says_so() -> None:
    review = tuple(
        SegmentReview(f"s{i:04d}", f"Segment {i}", SegmentStatus.CREATED, 0, i + 1, i + 1, 0)
        for i in range(2_000)
    )
    changes = tuple(SegmentChange(Action.CREATE, r.id, after=Segment(r.id, r.name)) for r in review)
    plan = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", changes, review=review),))
    md = render_markdown(plan, limit=8_000)
    assert len(md) <= 8_000
    assert "| `s0000` (Segment 0) |" in md
    assert re.search(r"… [\d,]+ more\n", md)
    assert re.search(r"_Shortened to fit a comment: [\d,]+ segment rows, [\d,]+ change lines", md)


def test_a_definition_holding_backticks_cannot_close_its_block() -> None:
    tricky = "name: x\n```\n**bold** <b>\n"
    review = (
        SegmentReview(
            "s", "S", SegmentStatus.UPDATED, 1, 1, 0, 0, definition=Definition("", tricky)
        ),
    )
    change = SegmentChange(Action.UPDATE, "s", Segment("s", "S", "a"), Segment("s", "S", "b"))
    plan = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", (change,), review=review),))
    md = render_markdown(plan)
    assert "````diff\n--- s (applied before definitions were kept)\n" in md
    assert "+```\n+**bold** <b>\n````\n" in md


@pytest.mark.parametrize("render", [render_text, render_markdown])
def test_a_plan_without_a_review_still_renders(render: object) -> None:
    change = CustomerChange(Action.CREATE, "c1")
    plan = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", (change,)),))
    out = render(plan)  # type: ignore[operator]
    assert "1 customer record to create" in out
    assert "| segment |" not in out
    assert "  segment " not in out


def test_a_drift_report_and_its_plan_share_one_comment_budget() -> None:
    plan = _big_plan()
    report = DriftReport("eps", 110_003, {"config": 110_003}, {"config": ["x" * 300] * 200})
    md = render_drift_markdown(DriftCheck(plan, [report]))
    assert md.startswith("## Drift detected\n\n- eps: 110,003 pending change(s)")
    assert len(md) <= GITHUB_COMMENT_LIMIT - 1_536
    assert "| `general-segment-3` (Recurring Shoppers) |" in md


def test_a_long_segment_name_is_shortened_in_the_terminal_table() -> None:
    name = "Shoppers who bought three or more times in the last thirty days 雪"
    review = (SegmentReview("s", name, SegmentStatus.CREATED, 0, 3, 3, 0),)
    change = SegmentChange(Action.CREATE, "s", after=Segment("s", name))
    plan = Plan("a.yaml", "d", (TargetPlan("t", "epsilon", (change,), review=review),))
    (row,) = [line for line in _plain(render_text(plan)).splitlines() if line.startswith("  s (")]
    assert row.startswith("  s (Shoppers who bought three or more times…  ")
    assert "+3" in row
