"""Seeded datasets for the scale benchmarks: customers, a config, and "yesterday's" remote.

- :func:`generate_customers` writes the customer CSV with DuckDB (vectorised, no Python loop);
- :func:`write_config` writes a config of rule-based segments over it with one Epsilon target;
- :func:`yesterday` derives the remote as it stood yesterday from the desired links, with a
  seeded churn (new customers, segments added and removed, customers who left);
- :func:`seed_sandbox` and :func:`seed_statestore` load it in bulk, straight into the SQLite
  schemas of the sandbox and of the state store.
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20240601
TARGET = "epsilon"
RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"
TEAMS = ["a5166fc4-f874-4741-a721-c05ffd9941a5", "92f4b91f-0089-4102-b13b-6015da8e0174"]
#: a segment on the remote that the config does not manage (its links are carried over)
UNMANAGED = "legacy-loyalty-import"

RULES: list[dict[str, Any]] = [
    {"attribute": "weekly_spend_percentile", "gte": 85},
    {
        "all": [
            {"attribute": "value_basket_share", "gte": 0.4},
            {"not": {"attribute": "loyalty_tier", "eq": "platinum"}},
        ]
    },
    {"attribute": "visits_per_week", "gte": 1},
    {
        "all": [
            {"attribute": "last_brandco_purchase_days", "lte": 30},
            {"attribute": "email", "exists": True},
        ]
    },
    {"attribute": "region", "in": ["north", "east"]},
    {
        "any": [
            {"attribute": "loyalty_tier", "eq": "gold"},
            {"attribute": "weekly_spend_percentile", "gt": 95},
        ]
    },
    {"attribute": "email", "matches": "@example\\.org$"},
    {
        "all": [
            {"attribute": "visits_per_week", "lt": 0.5},
            {"attribute": "region", "not_in": ["west"]},
        ]
    },
    {"attribute": "last_brandco_purchase_days", "exists": False},
    {"attribute": "value_basket_share", "lte": 0.1},
]


def generate_customers(path: Path, customers: int) -> None:
    """``customers`` rows of attributes, deterministic for a given count (hash of the row)."""
    import duckdb

    s = SEED
    con = duckdb.connect()
    try:
        con.execute(
            f"""
            COPY (
              SELECT
                printf('cust_%08d', i) AS customer_id,
                (hash(i, {s}) % 101)::INTEGER AS weekly_spend_percentile,
                round((hash(i, {s + 1}) % 4000) / 1000.0, 1) AS visits_per_week,
                CASE WHEN hash(i, {s + 2}) % 100 < 35 THEN NULL
                     ELSE (hash(i, {s + 3}) % 366)::INTEGER END AS last_brandco_purchase_days,
                round((hash(i, {s + 4}) % 100) / 100.0, 2) AS value_basket_share,
                ['north', 'south', 'east', 'west'][(hash(i, {s + 5}) % 4)::INTEGER + 1]
                  AS region,
                CASE WHEN hash(i, {s + 6}) % 100 < 20 THEN NULL
                     ELSE printf('shopper%d@example.%s', i,
                                 CASE WHEN hash(i, {s + 7}) % 2 = 0 THEN 'com' ELSE 'org' END)
                END AS email,
                ['bronze', 'silver', 'gold', 'platinum'][(hash(i, {s + 8}) % 4)::INTEGER + 1]
                  AS loyalty_tier
              FROM range({customers}) t(i)
            ) TO '{path}' (HEADER, DELIMITER ',')
            """
        ).fetchall()
    finally:
        con.close()


def segment_ids(segments: int) -> list[str]:
    return [f"segment-{i + 1}" for i in range(segments)]


def write_config(directory: Path, segments: int = 10) -> Path:
    """``audiences.yaml`` next to ``customers.csv``: one Epsilon target, rule-based segments."""
    import yaml

    doc = {
        "version": 1,
        "targets": {
            TARGET: {
                "type": "epsilon",
                "base_url": "http://127.0.0.1:9/replaced-by-the-sandbox",
                "retailer_team_id": RETAILER,
                "bearer_token": "${BENCH_EPSILON_BEARER_TOKEN}",
                "api_key": "${BENCH_EPSILON_API_KEY}",
                "concurrency": 16,
            },
        },
        "access_lists": {"brandco-team": TEAMS},
        "customer_sources": {
            "shoppers": {"path": "customers.csv", "id_column": "customer_id"},
        },
        "segments": [
            {
                "id": seg_id,
                "name": f"Segment {i + 1}",
                "description": f"Rule {i % len(RULES) + 1} over the shoppers.",
                "access": "brandco-team",
                "members": {"rule": RULES[i % len(RULES)]},
            }
            for i, seg_id in enumerate(segment_ids(segments))
        ],
    }
    path = directory / "audiences.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@dataclass(slots=True)
class Yesterday:
    """The remote as it stood yesterday, and what separates it from today's desired state."""

    #: customer id → segment ids on the remote (customers with none have an empty list)
    links: dict[str, list[str]] = field(default_factory=dict)
    #: desired customers absent from the remote (each needs a create and a link change)
    new: int = 0
    #: remote customers missing one desired segment
    added: int = 0
    #: remote customers holding one managed segment they should not
    removed: int = 0
    #: remote customers who have left the customer file (all managed links to remove)
    gone: int = 0

    @property
    def changed_customers(self) -> int:
        return self.new + self.added + self.removed + self.gone

    @property
    def minimal_writes(self) -> int:
        return math.ceil(self.new / 100) + self.changed_customers


def yesterday(
    desired: Mapping[str, frozenset[str]], segments: list[str], churn: float = 0.01
) -> Yesterday:
    """Yesterday's remote: the desired links with ``churn`` of the customers changed.

    A quarter each: absent (new today), one segment short (added today), one managed segment
    too many (removed today), and customers who have left. One customer in twenty also holds
    a segment this config does not manage, which every plan must carry over untouched.
    """
    rng = random.Random(SEED)
    ids = sorted(desired)
    n = max(4, round(len(ids) * churn))
    picked = rng.sample(range(len(ids)), min(len(ids), n - n // 4))
    kinds = {ids[i]: k % 3 for k, i in enumerate(picked)}
    out = Yesterday()
    links = out.links
    for cid in ids:
        segs = sorted(desired[cid])
        if rng.random() < 0.05:
            segs.append(UNMANAGED)
        kind = kinds.get(cid)
        if kind == 0:
            out.new += 1
            continue
        if kind == 1:
            segs.remove(rng.choice(sorted(desired[cid])))
            out.added += 1
        elif kind == 2:
            spare = [s for s in segments if s not in desired[cid]]
            if spare:
                segs.append(rng.choice(spare))
                out.removed += 1
            else:
                segs.remove(rng.choice(sorted(desired[cid])))
                out.added += 1
        links[cid] = segs
    for i in range(n // 4):
        pair = [segments[i % len(segments)], segments[(i * 7 + 3) % len(segments)]]
        links[f"gone_{i:08d}"] = pair
        out.gone += 1
    for cid, segs in links.items():
        links[cid] = list(dict.fromkeys(segs))
    return out


def _segment_rows(links: Mapping[str, list[str]]) -> Iterator[tuple[str, int, str]]:
    for cid, segs in links.items():
        for position, seg in enumerate(segs):
            yield cid, position, seg


def seed_sandbox(db_path: Path, config: Any, remote: Yesterday) -> None:
    """Bulk-load the Epsilon side of the sandbox database (its own schema, one transaction).

    ``seed_state`` does the same per customer through the store's upsert path (three
    statements per customer); this inserts whole tables, then builds the secondary index.
    """
    from reconciler.sandbox._store import Store

    Store(db_path).close()  # creates the schema (and the WAL journal mode)
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("DROP INDEX IF EXISTS eps_customer_segments_by_segment")
        con.execute("BEGIN")
        segs = [
            (s.id, "DEFAULT_SOURCE_ID", s.name, s.description, RETAILER) for s in config.segments
        ]
        segs.append((UNMANAGED, "LEGACY", "Legacy loyalty import", "", RETAILER))
        con.executemany("INSERT INTO eps_segments VALUES (?, ?, ?, ?, ?)", segs)
        con.executemany(
            "INSERT INTO eps_segment_access VALUES (?, ?, ?)",
            [(s.id, i, team) for s in config.segments for i, team in enumerate(TEAMS)],
        )
        con.executemany(
            "INSERT INTO eps_customers VALUES (?, ?)",
            ((cid, RETAILER) for cid in sorted(remote.links)),
        )
        con.executemany(
            "INSERT INTO eps_customer_segments VALUES (?, ?, ?)",
            _segment_rows(dict(sorted(remote.links.items()))),
        )
        con.execute("COMMIT")
        con.execute(
            "CREATE INDEX eps_customer_segments_by_segment "
            "ON eps_customer_segments (segment_id, customer_id)"
        )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def seed_statestore(path: Path, config: Any, remote: Yesterday) -> None:
    """What yesterday's apply recorded: the managed segments, their access, customers, links."""
    from reconciler.model import Segment, StateBuilder
    from reconciler.statestore import StateStore

    builder = StateBuilder()
    for s in config.segments:
        builder.add_segment(Segment(s.id, s.name, s.description))
        builder.set_access(s.id, TEAMS)
    builder.add_customers(remote.links)
    for cid, segs in remote.links.items():
        builder.set_links(cid, segs)
    store = StateStore(path)
    try:
        store.replace(TARGET, builder.build())
    finally:
        store.close()
