"""Layer two: semantic checks over schema-valid data, and building the :class:`Config`.

Checks run on every part of the document that passed the schema (a segment with a schema error is
skipped here, the rest is still checked), so one run reports every problem it can find.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..exceptions import ConfigError, Problem
from ._check_segments import SegmentChecks
from ._check_sources import SourceChecks
from ._check_targets import TargetChecks
from ._locations import Document, NodePath
from ._model import Config
from ._sources import in_background

__all__ = ["analyse"]


class _Analyser(TargetChecks, SourceChecks, SegmentChecks):
    """Every section's checks, over one document."""


def _digest(raw: bytes, files: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    h.update(b"audiences.yaml\0")
    h.update(raw)

    def key(p: Path) -> str:
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return p.as_posix()

    for path in sorted(files, key=key):
        h.update(b"\0" + key(path).encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def analyse(doc: Document, schema_problems: list[tuple[NodePath, Problem]]) -> Config:
    """Run the semantic checks; raise :class:`ConfigError` with schema + semantic problems."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    an = _Analyser(doc, (path for path, _ in schema_problems))
    try:
        targets_raw = data.get("targets") if isinstance(data.get("targets"), Mapping) else {}
        targets = an.targets(targets_raw or {})
        # target names are usable for references even when a target's body is invalid
        names: dict[str, Any] = {name: None for name in (targets_raw or {})}
        lists_raw = data.get("access_lists")
        access_lists: dict[str, frozenset[str]] = {}
        if isinstance(lists_raw, Mapping):
            for name, ids in lists_raw.items():
                # the schema already reported any item that is not a string
                items = ids if isinstance(ids, list) else []
                access_lists[name] = frozenset(i for i in items if isinstance(i, str))
        an.spark(data.get("spark"))
        an.snowflake(data.get("snowflake"))
        sources_raw = data.get("customer_sources")
        sources = an.sources(sources_raw) if isinstance(sources_raw, Mapping) else {}
        segs_raw = data.get("segments")
        segments = (
            an.segments(segs_raw, names, access_lists, sources)
            if isinstance(segs_raw, list)
            else []
        )
        declared = {s.id: s for s in segments}
        rem_raw = data.get("removed")
        removed = an.removed(rem_raw, names, declared) if isinstance(rem_raw, list) else []
    finally:
        an.close()

    problems = [p for _, p in schema_problems] + an.problems
    if problems:
        raise ConfigError(problems)
    return Config(
        path=doc.path,
        digest_future=in_background(
            functools.partial(_digest, doc.raw, list(an.referenced), doc.path.parent),
            "config-digest",
        ),
        version=int(data["version"]),
        targets=MappingProxyType(targets),
        access_lists=MappingProxyType(access_lists),
        customer_sources=MappingProxyType({k: v for k, v in sources.items() if v is not None}),
        segments=tuple(segments),
        removed=tuple(removed),
        locations=doc.locations,
        spark=an.spark_settings if an.uses_spark or "spark" in data else None,
        snowflake=an.snowflake_settings,
    )
