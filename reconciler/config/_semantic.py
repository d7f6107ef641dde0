"""Layer two: semantic checks over schema-valid data, and building the :class:`Config`.

Checks run on every part of the document that passed the schema (a segment with a schema error is
skipped here, the rest is still checked), so one run reports every problem it can find.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..exceptions import ConfigError, Problem
from ._check_segments import SegmentChecks
from ._check_sources import SourceChecks
from ._check_targets import TargetChecks
from ._locations import Document, NodePath
from ._model import Config

__all__ = ["analyse"]


class _Analyser(TargetChecks, SourceChecks, SegmentChecks):
    """Every section's checks, over one document."""


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
        digest = an.referenced.digest(doc.raw, doc.path.parent)  # every file is referenced now
    finally:
        an.close()

    problems = [p for _, p in schema_problems] + an.problems
    if problems:
        raise ConfigError(problems)
    return Config(
        path=doc.path,
        digest_future=digest,
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
