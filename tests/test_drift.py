"""Drift: which side moved since the last apply."""

from __future__ import annotations

from reconciler.drift import Side, classify
from reconciler.model import Segment, StateBuilder
from reconciler.plan.changes import Action, CustomerChange, LinkChange, SegmentChange


def last_applied() -> StateBuilder:
    return (
        StateBuilder()
        .add_segment(Segment("s", "Shoppers", "as written in the YAML"))
        .add_customers(["c1"])
        .set_links("c1", ["s"])
    )


def test_links_edited_in_the_config_or_on_the_platform() -> None:
    last = last_applied().build()
    config_edit = LinkChange("c1", frozenset({"s"}), frozenset())
    platform_edit = LinkChange("c1", frozenset(), frozenset({"s"}))
    both = LinkChange("c1", frozenset({"x"}), frozenset({"y"}))
    assert classify(config_edit, last) is Side.CONFIG
    assert classify(platform_edit, last) is Side.REMOTE
    assert classify(both, last) is Side.BOTH


def test_customer_deleted_on_the_platform_is_remote_drift() -> None:
    last = last_applied().build()
    assert classify(CustomerChange(Action.CREATE, "c1"), last) is Side.REMOTE
    assert classify(CustomerChange(Action.CREATE, "c9"), last) is Side.CONFIG


def test_a_rename_is_judged_on_the_fields_that_differ() -> None:
    # the platform carries no description (Talon.One): its read says "" for it
    last = last_applied().build()
    renamed_on_platform = SegmentChange(
        Action.UPDATE,
        "s",
        Segment("s", "Renamed by hand", ""),
        Segment("s", "Shoppers", ""),
        ("name",),
    )
    renamed_in_config = SegmentChange(
        Action.UPDATE, "s", Segment("s", "Shoppers", ""), Segment("s", "New name", ""), ("name",)
    )
    assert classify(renamed_on_platform, last) is Side.REMOTE
    assert classify(renamed_in_config, last) is Side.CONFIG
