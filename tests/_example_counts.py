"""The example's segment members counted independently of the project's engines: its customer
CSV read with the csv module and each rule of ``examples/audiences.yaml`` written out here by
hand, with the bounds a test edits as parameters."""

from __future__ import annotations

import csv
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"


def example_members(
    *, spend: float = 85, visits: float = 1, excluded: str = "cust_00027"
) -> dict[str, set[str]]:
    """Each segment of the example → its members (``spend``: general-segment-1's ``gte``,
    ``visits``: general-segment-3's, ``excluded``: custom-segment-1's excluded id)."""
    with (EXAMPLE / "data" / "customers.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    vip = {
        line.strip()
        for line in (EXAMPLE / "data" / "vip.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    days = [(r, r["last_brandco_purchase_days"]) for r in rows]
    return {
        "general-segment-1": {
            r["customer_id"] for r in rows if float(r["weekly_spend_percentile"]) >= spend
        }
        | vip,
        "general-segment-2": {
            r["customer_id"]
            for r in rows
            if float(r["value_basket_share"]) >= 0.4 and r["loyalty_tier"] != "platinum"
        },
        "general-segment-3": {
            r["customer_id"] for r in rows if float(r["visits_per_week"]) >= visits
        },
        "custom-segment-1": {
            r["customer_id"] for r, d in days if d != "" and float(d) <= 30 and r["email"] != ""
        }
        - {excluded},
    }


def check_review(
    segments: list[dict[str, object]], before: dict[str, set[str]], after: dict[str, set[str]]
) -> None:
    """A target's ``segments`` (its plan's JSON) against the independent counts."""
    assert [s["id"] for s in segments] == sorted(before)
    for seg in segments:
        sid = str(seg["id"])
        was, now = before[sid], after[sid]
        assert (
            seg["members_before"],
            seg["members_after"],
            seg["members_added"],
            seg["members_removed"],
        ) == (len(was), len(now), len(now - was), len(was - now)), sid
        entering, leaving = seg["entering"], seg["leaving"]
        assert isinstance(entering, list)
        assert isinstance(leaving, list)
        assert set(entering) <= now - was, sid
        assert len(entering) == min(5, len(now - was)), sid
        assert set(leaving) <= was - now, sid
        assert len(leaving) == min(5, len(was - now)), sid
        changes = was != now
        assert seg["status"] == ("members" if changes else "unchanged"), sid
        if changes:
            overlap = {
                other: len(now & after[other])
                for other in after
                if other != sid and now & after[other]
            }
            assert seg["overlap"] == overlap, sid
