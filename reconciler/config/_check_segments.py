"""The semantic checks of the ``segments`` and ``removed`` sections: member selections, their
files and rules, and the segments removed on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import duckdb

from ..engines.readers import describe_csv_columns
from ..rules import check_rule, parse_rule
from ._analyser import Analyser, read_error
from ._check_targets import guard_settings
from ._locations import NodePath
from ._model import (
    CustomerSource,
    MemberFile,
    Members,
    RemovedConfig,
    SegmentConfig,
    Selection,
    SourceRule,
)

__all__ = ["SegmentChecks"]


class SegmentChecks(Analyser):
    """The ``segments`` and ``removed`` sections."""

    def selection(
        self,
        raw: Mapping[str, Any],
        node: NodePath,
        sources: Mapping[str, CustomerSource | None],
    ) -> Selection:
        files: list[MemberFile] = []
        for i, entry in enumerate(raw.get("files") or ()):
            fnode = (*node, "files", i)
            text, column, outside = (
                (entry, None, False)
                if isinstance(entry, str)
                else (
                    entry["path"],
                    entry.get("column"),
                    bool(entry.get("outside_config_dir", False)),
                )
            )
            pnode = fnode if isinstance(entry, str) else (*fnode, "path")
            opt_out = "write {path: " + text + (f", column: {column}" if column else "")
            path = self.data_file(text, pnode, outside, opt_out + ", outside_config_dir: true}")
            if path is None:
                continue
            self.referenced.add(path)
            if column is not None:
                try:
                    columns = describe_csv_columns(self.con, path)
                except duckdb.Error as exc:
                    self.report(pnode, read_error(text, exc))
                    continue
                if column not in columns:
                    self.report((*fnode, "column"), f"column {column!r} not found in {text}")
                    continue
            files.append(MemberFile(path, column, fnode, text))

        rule: SourceRule | None = None
        if "rule" in raw:
            rnode = (*node, "rule")
            rule_raw = raw["rule"]
            parsed = parse_rule(rule_raw, rnode, self.report, root=True)
            source_name = self._rule_source(rule_raw, rnode, sources)
            if parsed is not None and source_name is not None:
                source = sources[source_name]
                if source is not None:
                    before = len(self.problems)
                    check_rule(
                        parsed,
                        source.columns,
                        self.report,
                        source=source_name,
                        check_regex=self.check_regex,
                    )
                    if len(self.problems) == before:
                        rule = SourceRule(source_name, parsed, rnode)
        return Selection(tuple(raw.get("ids") or ()), tuple(files), rule, node)

    def _rule_source(
        self, raw: Mapping[str, Any], node: NodePath, sources: Mapping[str, CustomerSource | None]
    ) -> str | None:
        if "source" in raw:
            name = raw["source"]
            if name not in sources:
                known = ", ".join(sources) or "none declared"
                self.report((*node, "source"), f"unknown customer source {name!r} (known: {known})")
                return None
            return str(name)
        if len(sources) == 1:
            return next(iter(sources))
        if not sources:
            self.report(node, "a rule needs a customer source, but customer_sources is empty")
        else:
            self.report(
                node,
                f"several customer sources ({', '.join(sources)}): name one with source:",
            )
        return None

    def segments(
        self,
        data: list[Any],
        targets: Mapping[str, Any],
        access_lists: Mapping[str, frozenset[str]],
        sources: Mapping[str, CustomerSource | None],
    ) -> list[SegmentConfig]:
        out: list[SegmentConfig] = []
        first_seen: dict[str, tuple[int, int]] = {}
        for i, raw in enumerate(data):
            node: NodePath = ("segments", i)
            if not isinstance(raw, Mapping) or self.bad(node):
                # still count a valid id for duplicate detection
                if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
                    first_seen.setdefault(raw["id"], self.doc.locations.of((*node, "id")))
                continue
            seg_id: str = raw["id"]
            if seg_id in first_seen:
                line, _ = first_seen[seg_id]
                self.report(
                    (*node, "id"), f"duplicate segment id {seg_id} (first declared on line {line})"
                )
            else:
                first_seen[seg_id] = self.doc.locations.of((*node, "id"))

            seg_targets = tuple(raw.get("targets") or targets)
            for j, t in enumerate(raw.get("targets") or ()):
                if t not in targets:
                    known = ", ".join(targets)
                    self.report((*node, "targets", j), f"unknown target {t} (known: {known})")

            access: frozenset[str] | None = None
            if "access" in raw:
                acc = raw["access"]
                if isinstance(acc, str):
                    if acc in access_lists:
                        access = access_lists[acc]
                    else:
                        known = ", ".join(access_lists) or "none declared"
                        self.report(
                            (*node, "access"), f"unknown access list {acc} (known: {known})"
                        )
                else:
                    access = frozenset(acc)

            members_raw = raw.get("members") or {}
            mnode = (*node, "members")
            include = self.selection(members_raw, mnode, sources)
            exclude_raw = members_raw.get("exclude")
            exclude = (
                self.selection(exclude_raw, (*mnode, "exclude"), sources)
                if exclude_raw
                else Selection(node=(*mnode, "exclude"))
            )
            line, col = self.doc.locations.of(node)
            out.append(
                SegmentConfig(
                    id=seg_id,
                    name=raw["name"],
                    description=raw.get("description") or "",
                    targets=seg_targets,
                    access=access,
                    prevent_destroy=bool(raw.get("prevent_destroy", False)),
                    members=Members(include, exclude),
                    line=line,
                    column=col,
                    index=i,
                    guards=MappingProxyType(guard_settings(raw.get("guards"))),
                )
            )
        return out

    def removed(
        self, data: list[Any], targets: Mapping[str, Any], declared: Mapping[str, SegmentConfig]
    ) -> list[RemovedConfig]:
        out: list[RemovedConfig] = []
        seen: set[str] = set()
        for i, raw in enumerate(data):
            node: NodePath = ("removed", i)
            if not isinstance(raw, Mapping) or self.bad(node):
                continue
            rid = raw["id"]
            if rid in declared:
                self.report(
                    (*node, "id"),
                    f"segment {rid} is listed as removed but still declared "
                    f"(segments[{declared[rid].index}], line {declared[rid].line})",
                )
            if rid in seen:
                self.report((*node, "id"), f"segment {rid} is listed as removed twice")
            seen.add(rid)
            for j, t in enumerate(raw.get("targets") or ()):
                if t not in targets:
                    self.report(
                        (*node, "targets", j), f"unknown target {t} (known: {', '.join(targets)})"
                    )
            line, col = self.doc.locations.of(node)
            out.append(
                RemovedConfig(
                    id=rid,
                    destroy=bool(raw.get("destroy", True)),
                    targets=tuple(raw.get("targets") or targets),
                    line=line,
                    column=col,
                )
            )
        return out
