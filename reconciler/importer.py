"""``reconcile import``: bring an existing platform under management.

Reads a target's remote segments, access lists and memberships — every segment the platform
holds, whoever made it, with its members — and writes a config that plans to zero changes:
small member lists inline, large ones as id files under a data folder. What the platform cannot
read back (Epsilon segment names) is taken from the state store, or from the segment ids seen
in customers' links, and the imported state is recorded in the state store so the next plan
starts from it — like ``terraform import``. The whole import runs under the target's apply
lock, in the state store it reads and in the one it writes.

Member files are named from the segment id made safe for any file system, plus a short hash
of the id (:func:`member_file_name`). A segment a config cannot declare exactly as the platform
holds it (its id, name or a member's id outside the config language) is left out, and so stays
unmanaged, and the result says which and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .config import TargetConfig, schema_text, target_type
from .exceptions import OutputError
from .model import Segment, State, StateBuilder
from .plan import Refresh
from .plan.changes import Phase
from .providers.base import ReadScope

if TYPE_CHECKING:
    from .manager import Reconciler
    from .statestore import StateStore

__all__ = [
    "ImportResult",
    "import_target",
    "imported_state",
    "member_file_name",
    "render_import",
    "undeclarable",
    "write_import",
]

#: member lists longer than this go to an id file
INLINE_LIMIT = 50
#: characters kept in a member file's name
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: what a customer id of a config may not hold (whitespace, separators, control characters)
_BAD_CUSTOMER = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
#: the longest customer id a config accepts
_MAX_CUSTOMER = 256


@dataclass(frozen=True, slots=True)
class ImportResult:
    yaml_text: str
    #: relative path → file content (one customer id per line)
    files: Mapping[str, str]
    segments: int
    links: int
    #: remote segment id → why a config cannot declare it: left out of the config and the
    #: state store, so it stays on the platform, unmanaged
    skipped: Mapping[str, str] = field(default_factory=dict)


@cache
def _segment_schema() -> Draft202012Validator:
    defs = json.loads(schema_text())["$defs"]
    return Draft202012Validator({"$ref": "#/$defs/segment", "$defs": defs})


def _customer_ok(cid: str) -> bool:
    return 0 < len(cid) <= _MAX_CUSTOMER and _BAD_CUSTOMER.search(cid) is None


def undeclarable(seg: Segment, teams: frozenset[str], members: Iterable[str]) -> str:
    """Why a config cannot declare ``seg`` with these access teams and members exactly as
    the platform holds them ('' when it can): the config's own JSON Schema decides."""
    entry: dict[str, Any] = {"id": seg.id, "name": seg.name, "description": seg.description}
    if teams:
        entry["access"] = sorted(teams)
    error = best_match(_segment_schema().iter_errors(entry))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "segment"
        return f"its {where} cannot be written in a config ({error.message})"
    bad = next((c for c in members if not _customer_ok(c)), None)
    if bad is not None:
        return f"member {bad[:40]!r} is not a customer id a config can hold"
    return ""


def member_file_name(seg_id: str) -> str:
    """The file name of ``seg_id``'s members: the id with every run of characters outside
    ``A-Z a-z 0-9 . _ -`` replaced by ``_`` (so no separator, and no leading dot), cut to 64
    characters, then 8 hex digits of the id's SHA-256 — stable from one import to the next, and
    distinct for ids that read alike (``vip:1`` and ``vip_1``; ``VIP`` and ``vip`` on a disk
    that ignores case)."""
    safe = _UNSAFE.sub("_", seg_id).lstrip("._-")[:64] or "segment"
    digest = hashlib.sha256(seg_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}-{digest}.txt"


def imported_state(remote: State) -> tuple[State, dict[str, str]]:
    """The remote as a config can declare it: every segment seen in a link known by at least
    its id; the segments a config cannot declare exactly (:func:`undeclarable`) left out,
    their links too, and returned with the reason (id → why)."""
    members = remote.members_by_segment()
    segments = dict(remote.segments)
    for seg_id in sorted(members.keys() - segments.keys()):
        segments[seg_id] = Segment(seg_id, seg_id, "")
    skipped: dict[str, str] = {}
    for seg_id, seg in segments.items():
        why = undeclarable(seg, remote.access.get(seg_id, frozenset()), members.get(seg_id, ()))
        if why:
            skipped[seg_id] = why
    b = StateBuilder()
    for seg_id in sorted(segments.keys() - skipped.keys()):
        b.add_segment(segments[seg_id])
    for seg_id, teams in remote.access.items():
        if seg_id in segments and seg_id not in skipped:
            b.set_access(seg_id, teams)
    b.add_customers(remote.customers)
    for customer, segs in remote.links.items():
        kept = [s for s in segs if s not in skipped] if skipped else segs
        if kept:
            b.set_links(customer, kept)
    return b.build(), dict(sorted(skipped.items()))


def _target_block(target: TargetConfig, out_dir: Path) -> dict[str, Any]:
    kind = target_type(target.type)
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
        if var.startswith("file:"):  # a secret file, found from the new config's folder
            var = "file:" + os.path.relpath(var.removeprefix("file:"), out_dir)
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
    skipped: Mapping[str, str] | None = None,
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
            rel = f"{data_dir}/{member_file_name(seg_id)}"
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
    return ImportResult(text, files, len(segments), state.link_count(), dict(skipped or {}))


def write_import(result: ImportResult, out_file: Path) -> None:
    """Write the member files, then the config (last: a config on disk has all its files)."""
    folder = out_file.parent
    path = out_file
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for rel, text in result.files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        path = out_file
        out_file.write_text(result.yaml_text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _locks(stores: list[StateStore], target: str, wait: float) -> Iterator[None]:
    """The apply lock of ``target`` in each store (once per file, in path order)."""
    by_path = {os.path.realpath(s.path): s for s in stores}
    with contextlib.ExitStack() as stack:
        for path in sorted(by_path):
            stack.enter_context(by_path[path].lock(target, wait=wait, purpose="import"))
        yield


async def import_target(
    rec: Reconciler,
    name: str,
    out_file: Path,
    store: StateStore,
    *,
    data_dir: str = "data",
    lock_wait: float = 0.0,
) -> ImportResult:
    """Read every segment of target ``name`` with its members, write the config (and member
    files) to ``out_file`` and record the imported state in ``store``; all of it under the
    target's apply lock in ``rec``'s store and in ``store`` (waiting up to ``lock_wait``
    seconds for each, then refusing with :class:`~reconciler.exceptions.LockedError`)."""
    target = rec.config.targets[name]
    with _locks([rec.store, store], name, lock_wait):
        provider = rec.provider(name)
        try:
            remote = await provider.read(ReadScope(Refresh.FULL, every_segment=True))
        finally:
            await provider.aclose()
        state, skipped = imported_state(remote.state)
        result = render_import(
            target,
            state,
            out_file,
            data_dir=data_dir,
            with_access=Phase.ACCESS in provider.capabilities.phases,
            skipped=skipped,
        )
        write_import(result, out_file)
        store.replace(name, state)
    return result
