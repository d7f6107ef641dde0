"""``reconcile import``: bring an existing platform under management.

Reads a target's remote segments, access lists and memberships and writes a config that plans to
zero changes: small member lists inline, large ones as id files under a data folder. What the
platform cannot read back (Epsilon segment names) is taken from the state store, or from the
segment ids seen in customers' links, and the imported state is recorded in the state store so
the next plan starts from it — like ``terraform import``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import TARGET_TYPES, TargetConfig
from .model import Segment, State, StateBuilder

__all__ = ["ImportResult", "imported_state", "render_import"]

#: member lists longer than this go to an id file
INLINE_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ImportResult:
    yaml_text: str
    #: relative path → file content (one customer id per line)
    files: Mapping[str, str]
    segments: int
    links: int


def imported_state(remote: State) -> State:
    """The remote, with every segment seen in a link known by at least its id."""
    b = StateBuilder()
    for seg in remote.segments.values():
        b.add_segment(seg)
    seen = set().union(*remote.links.values()) if remote.links else set()
    for seg_id in sorted(seen - remote.segments.keys()):
        b.add_segment(Segment(seg_id, seg_id, ""))
    for seg_id, teams in remote.access.items():
        b.set_access(seg_id, teams)
    b.add_customers(remote.customers)
    for customer, segs in remote.links.items():
        b.set_links(customer, segs)
    return b.build()


def _target_block(target: TargetConfig, out_dir: Path) -> dict[str, Any]:
    kind = TARGET_TYPES[target.type]
    block: dict[str, Any] = {"type": target.type}
    for key, value in target.settings.items():
        if value is None:
            continue
        if key in kind.paths:
            real = os.path.relpath(os.path.realpath(str(value)), os.path.realpath(out_dir))
            value = os.path.relpath(str(value), out_dir)
            if real == ".." or real.startswith(".." + os.sep):
                # outside the new config's folder: the config must say so for this path
                value = {"path": value, "outside_config_dir": True}
        block[key] = value
    for field_name, var in target.credentials.items():
        block[field_name] = "${" + var + "}"
    if target.prune:
        block["prune"] = True
    return block


def render_import(
    target: TargetConfig,
    state: State,
    out_file: Path,
    *,
    data_dir: str = "data",
    with_access: bool = True,
) -> ImportResult:
    members = state.members_by_segment()
    files: dict[str, str] = {}
    segments: list[dict[str, Any]] = []
    for seg_id in sorted(state.segments):
        seg = state.segments[seg_id]
        entry: dict[str, Any] = {"id": seg.id, "name": seg.name, "description": seg.description}
        teams = state.access.get(seg_id)
        if with_access and teams:
            entry["access"] = sorted(teams)
        ids = sorted(members.get(seg_id, ()))
        if len(ids) > INLINE_LIMIT:
            rel = f"{data_dir}/{seg_id}.txt"
            files[rel] = "\n".join(ids) + "\n"
            entry["members"] = {"files": [rel]}
        else:
            entry["members"] = {"ids": ids}
        segments.append(entry)
    doc = {
        "version": 1,
        "targets": {target.name: _target_block(target, out_file.parent)},
        "segments": segments,
    }
    header = f"# Imported from target {target.name!r} by `reconcile import`.\n"
    text = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return ImportResult(text, files, len(segments), state.link_count())
