"""Regenerate ``customers.csv`` (deterministic for a given ``--seed``).

``python examples/data/generate_customers.py`` rewrites the example table beside this script;
``--count``, ``--seed`` and ``--out`` make a table of any size elsewhere (``--out -`` writes to
stdout), for trying the tool at scale. ``--help`` only prints the options.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

COUNT = 3000
SEED = 20240601
DEFAULT_OUT = Path(__file__).with_name("customers.csv")
COLUMNS = [
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
REGIONS = ["north", "south", "east", "west"]
TIERS = ["bronze", "silver", "gold", "platinum"]


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {count}")
    return count


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write a deterministic table of example customers as CSV."
    )
    parser.add_argument(
        "--count", type=_count, default=COUNT, help=f"customers to write (default: {COUNT})"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help=f"random seed: same seed, same file (default: {SEED})",
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="file to write, or '-' for stdout (default: customers.csv beside this script)",
    )
    return parser.parse_args(argv)


def rows(count: int, seed: int) -> Iterator[list[object]]:
    """The customers, ``cust_00001`` onwards (five digits at least, more past 99,999)."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    for i in range(1, count + 1):
        recency = "" if rng.random() < 0.35 else str(rng.randint(0, 365))
        email = "" if rng.random() < 0.2 else f"shopper{i}@example.com"
        signup = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randint(0, 2400))
        yield [
            f"cust_{i:05d}",
            rng.randint(0, 100),
            round(rng.expovariate(1.0), 1),
            recency,
            round(rng.betavariate(2, 5), 2),
            rng.choice(REGIONS),
            email,
            rng.choices(TIERS, weights=[50, 30, 15, 5])[0],
            signup.isoformat(),
        ]


@contextlib.contextmanager
def _opened(out: str) -> Iterator[TextIO]:
    if out == "-":
        yield sys.stdout
        return
    with Path(out).open("w", newline="", encoding="utf-8") as fh:
        yield fh


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with _opened(args.out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows(args.count, args.seed))


if __name__ == "__main__":
    main()
