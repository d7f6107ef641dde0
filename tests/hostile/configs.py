"""Configs generated at test time (into a temporary folder), seeded and reproducible."""

from __future__ import annotations

import random
from pathlib import Path

from _scenario import TARGETS, TEAM_1, TEAM_2


def write_dense_config(
    folder: Path,
    kinds: list[str],
    *,
    seed: int,
    customers: int = 300,
    segments: int = 12,
    edited: bool = False,
) -> Path:
    """``segments`` segments over ``customers`` customers, each customer in a random third of
    them (so a Talon.One apply needs several 1000-action requests). ``edited`` moves about 10%
    of the memberships, renames one segment, drops the last one and adds a new one."""
    rng = random.Random(seed)
    ids = [f"d{i:04d}" for i in range(customers)]
    members = {f"dense-{s:02d}": sorted(rng.sample(ids, customers // 3)) for s in range(segments)}
    names = {s: f"Dense {s}" for s in members}
    if edited:
        erng = random.Random(seed + 1)
        for s, m in members.items():
            keep = [c for c in m if erng.random() > 0.1]
            extra = erng.sample(ids, customers // 30)
            members[s] = sorted(set(keep) | set(extra))
        first = next(iter(members))
        names[first] += " (renamed)"
        last = sorted(members)[-1]
        del members[last], names[last]
        members["dense-new"] = sorted(erng.sample(ids, customers // 4))
        names["dense-new"] = "Dense new"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "targets:" + "".join(TARGETS[k] for k in kinds).rstrip()]
    lines.append(f"access_lists:\n  both: [{TEAM_1}, {TEAM_2}]")
    lines.append("segments:")
    for s, m in members.items():
        lines += [
            f"  - id: {s}",
            f"    name: {names[s]}",
            f"    description: Generated with seed {seed}.",
            "    members:",
            f"      ids: [{', '.join(m)}]",
        ]
    path = folder / "audiences.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
