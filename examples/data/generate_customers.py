"""Regenerate ``customers.csv`` (deterministic): ``python examples/data/generate_customers.py``."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

COUNT = 3000
SEED = 20240601


def main() -> None:
    rng = random.Random(SEED)  # noqa: S311 - sample data, not security
    out = Path(__file__).with_name("customers.csv")
    regions = ["north", "south", "east", "west"]
    tiers = ["bronze", "silver", "gold", "platinum"]
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            [
                "customer_id",
                "weekly_spend_percentile",
                "visits_per_week",
                "last_brandco_purchase_days",
                "value_basket_share",
                "region",
                "email",
                "loyalty_tier",
                "signup_date",
            ]
        )
        for i in range(1, COUNT + 1):
            recency = "" if rng.random() < 0.35 else str(rng.randint(0, 365))
            email = "" if rng.random() < 0.2 else f"shopper{i}@example.com"
            signup = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randint(0, 2400))
            writer.writerow(
                [
                    f"cust_{i:05d}",
                    rng.randint(0, 100),
                    round(rng.expovariate(1.0), 1),
                    recency,
                    round(rng.betavariate(2, 5), 2),
                    rng.choice(regions),
                    email,
                    rng.choices(tiers, weights=[50, 30, 15, 5])[0],
                    signup.isoformat(),
                ]
            )


if __name__ == "__main__":
    main()
