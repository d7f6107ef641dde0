"""``reconcile explain``: an unknown id said so, the values its rules read, and per target
whether the customer is a member now (as last applied) and after the plan."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from _scenario import cli

EXAMPLE = Path(__file__).parent.parent / "examples"


def _row(data: Path, cid: str) -> dict[str, str]:
    with (data / "customers.csv").open(newline="") as f:
        return next(r for r in csv.DictReader(f) if r["customer_id"] == cid)


def _explain(config: Path, cid: str, *extra: str) -> dict[str, Any]:
    done = cli("explain", cid, str(config), "-f", "json", *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_an_unknown_id_is_said_to_be_unknown_not_in_zero_segments() -> None:
    done = cli("explain", "cust_99999", str(EXAMPLE / "audiences.yaml"))
    assert done.returncode == 0, done.stderr
    assert "cust_99999 is not a known customer" in done.stdout
    assert "0 segment" not in done.stdout
    found = _explain(EXAMPLE / "audiences.yaml", "cust_99999")
    assert found["known"] is False
    assert found["values"] == {"shoppers": None}
    assert found["reasons"] == []


def test_explain_shows_the_values_the_rules_read_for_that_customer() -> None:
    found = _explain(EXAMPLE / "audiences.yaml", "cust_00027")
    row = _row(EXAMPLE / "data", "cust_00027")
    values = found["values"]["shoppers"]
    assert set(values) == {
        "weekly_spend_percentile",
        "value_basket_share",
        "loyalty_tier",
        "visits_per_week",
        "last_brandco_purchase_days",
        "email",
    }
    assert values["visits_per_week"] == float(row["visits_per_week"])
    assert values["loyalty_tier"] == row["loyalty_tier"]
    text = cli("explain", "cust_00027", str(EXAMPLE / "audiences.yaml")).stdout
    assert f"visits_per_week={float(row['visits_per_week'])!r}" in text


def test_explain_says_per_target_whether_a_member_now_and_after_the_plan(
    example_applied_locally: Path, tmp_path: Path
) -> None:
    ex = tmp_path / "ex"
    shutil.copytree(EXAMPLE, ex, ignore=shutil.ignore_patterns(".reconcile"))
    config = ex / "audiences.yaml"
    before = _explain(config, "cust_00002", "--sandbox")
    assert before["applied"] is False
    assert {t["now"] for t in before["targets"].values()} == {None}
    # then applied with --sandbox: what the session's template holds, copied in
    shutil.copytree(example_applied_locally / ".reconcile", ex / ".reconcile", dirs_exist_ok=True)
    # cust_00002 shops once a week: in general-segment-3 until the bound is raised to 2
    assert float(_row(ex / "data", "cust_00002")["visits_per_week"]) == 1.0
    rule = "attribute: visits_per_week\n        gte: "
    config.write_text(config.read_text().replace(rule + "1", rule + "2"))
    found = _explain(config, "cust_00002", "--sandbox")
    assert found["applied"] is True
    for name in ("epsilon", "talon"):
        t = found["targets"][name]
        assert "general-segment-3" in t["now"]
        assert "general-segment-3" not in t["after"]
        assert t["leaving"] == ["general-segment-3"]
        assert t["entering"] == []
    text = cli("explain", "cust_00002", str(config), "--sandbox").stdout
    assert "leaves general-segment-3" in text
