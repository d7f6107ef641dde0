"""A small, exact end-to-end scenario, written as YAML + id files into a temporary folder.

``base`` and ``edited`` differ by exactly: an access change, members added and removed, a new
segment, a removed segment, and a rename. Counts below are what a minimal apply must send.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from _command import invoke

from reconciler.config import load
from reconciler.manager import Reconciler
from reconciler.plan import Plan
from reconciler.runtime import Overrides
from reconciler.statestore import StateStore

TEAM_1 = "a5166fc4-f874-4741-a721-c05ffd9941a5"
TEAM_2 = "92f4b91f-0089-4102-b13b-6015da8e0174"
RETAILER = "13c84def-41cb-4f99-a3fc-6788264f79fe"

TARGETS = {
    "epsilon": f"""
  eps:
    type: epsilon
    base_url: http://127.0.0.1:9/never-used
    retailer_team_id: {RETAILER}
    bearer_token: ${{SCENARIO_EPSILON_TOKEN}}
    api_key: ${{SCENARIO_EPSILON_KEY}}
""",
    "talonone": """
  talon:
    type: talonone
    base_url: http://127.0.0.1:9/never-used
    management_url: http://127.0.0.1:9/never-used
    platform_name: audience-reconciler
    destination_host: sandbox.talon.one
    api_key: ${SCENARIO_TALON_KEY}
    management_key: ${SCENARIO_TALON_MGMT}
""",
    "epsilon-feed": """
  feed:
    type: epsilon-feed
    directory: feed
""",
}


def cid(i: int) -> str:
    return f"c{i:04d}"


def ids(lo: int, hi: int) -> list[str]:
    return [cid(i) for i in range(lo, hi)]


def write_config(folder: Path, kinds: list[str], *, edited: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    a_members = ids(0, 240) + ids(400, 405) if edited else ids(0, 250)
    (folder / "a.txt").write_text("\n".join(a_members) + "\n")
    segments = [
        f"""
  - id: seg-a
    name: Alpha
    description: The alpha shoppers.
    access: {"[" + TEAM_1 + "]" if edited else "brandco"}
    members:
      files: [a.txt]
""",
        f"""
  - id: seg-b
    name: {"Beta renamed" if edited else "Beta"}
    description: The beta shoppers.
    members:
      ids: [{", ".join(ids(200, 300))}]
""",
    ]
    if not edited:
        segments.append(
            f"""
  - id: seg-c
    name: Gamma
    description: Soon gone.
    members:
      ids: [{", ".join(ids(300, 310))}]
"""
        )
    else:
        segments.append(
            f"""
  - id: seg-d
    name: Delta
    description: New this week.
    members:
      ids: [{", ".join(ids(500, 520))}]
"""
        )
    text = (
        "version: 1\ntargets:"
        + "".join(TARGETS[k] for k in kinds)
        + f"access_lists:\n  brandco: [{TEAM_1}, {TEAM_2}]\nsegments:"
        + "".join(segments)
    )
    path = folder / "audiences.yaml"
    path.write_text(text)
    return path


def reconciler(path: Path, sandbox: Any, state: Path) -> Reconciler:
    return Reconciler(load(path), StateStore(state), overrides=Overrides.for_sandbox(sandbox))


def plan(path: Path, sandbox: Any, state: Path) -> Plan:
    return asyncio.run(reconciler(path, sandbox, state).plan())


def apply(path: Path, sandbox: Any, state: Path, **kw: Any) -> tuple[Plan, list[Any]]:
    rec = reconciler(path, sandbox, state)
    current = asyncio.run(rec.plan())
    results = asyncio.run(rec.apply(current, **kw)) if current.has_changes else []
    return current, results


def writes(sandbox: Any, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests(since=since) if r["method"] != "GET"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``reconcile`` as a user would, without colour: its entry point, in this process
    (:func:`_command.invoke`; a test of signals or kills starts a child process itself)."""
    code, out, err = invoke(*args, cwd=cwd)
    return subprocess.CompletedProcess(["reconcile", *args], code, out, err)


def one_segment_config(folder: Path, members: list[str], retailer: str) -> Path:
    """``folder/audiences.yaml``: one Epsilon target (reached through the sandbox's
    overrides) and one segment, ``big``, whose members are the ids in ``members.txt``."""
    (folder / "members.txt").write_text("\n".join(members) + "\n")
    path = folder / "audiences.yaml"
    path.write_text(
        f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: http://127.0.0.1:9/never-used
    retailer_team_id: {retailer}
    bearer_token: ${{T_TOKEN}}
    api_key: ${{T_KEY}}
segments:
  - id: big
    name: Big
    description: Many shoppers.
    members:
      files: [members.txt]
"""
    )
    return path
