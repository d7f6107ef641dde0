"""Why one customer is in (or excluded from) each segment: by ids, a file or a rule; and the
values the rules read for that customer, source by source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..engines import memory
from ..engines.readers import file_ids_sql
from ..exceptions import ConfigError
from ..rules import attributes, compile_rule, render_rule
from ._contributions import _engine_members, duckdb_relation, selections
from ._located import problem
from ._locations import format_path
from ._model import Config, Reason, SegmentConfig, Selection, SourceRule

__all__ = ["Explanation", "explain", "explain_customer"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything the config says of one customer.

    ``reasons``: why it is in (or excluded from) each segment. ``values``: source name → the
    attributes the rules read, as that source holds them for the customer (None: the source
    has no row of that id); a source whose engine is not DuckDB is left out (its rows are read
    where it lives). ``known``: some source row, ids list or member file names the id."""

    customer_id: str
    reasons: list[Reason]
    values: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(self.reasons) or any(v is not None for v in self.values.values())

    def members(self) -> dict[str, tuple[str, ...]]:
        """Segment id → the targets it is declared on, for each segment the customer is in
        (a reason includes it and none excludes it)."""
        included: dict[str, tuple[str, ...]] = {}
        excluded = {r.segment_id for r in self.reasons if r.excluded}
        for r in self.reasons:
            if r.segment_id not in excluded:
                included[r.segment_id] = r.targets
        return included


def explain(config: Config, customer_id: str) -> list[Reason]:
    """Why ``customer_id`` is in (or excluded from) each segment: by ids, a file or a rule."""
    return explain_customer(config, customer_id).reasons


def explain_customer(config: Config, customer_id: str) -> Explanation:
    """Why ``customer_id`` is in (or excluded from) each segment, and the values its rules
    read (see :class:`Explanation`)."""
    reasons: list[Reason] = []
    con = memory.connect()
    try:
        rule_hits = _rule_hits(config, con, customer_id)
        for index, seg in enumerate(config.segments):
            for sel, exclude in selections(seg):
                hit = bool(rule_hits.get((index, exclude)))
                reasons.extend(_reasons(config, con, customer_id, seg, sel, exclude, hit))
        values = _values(config, con, customer_id)
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        raise ConfigError(
            [problem(config, ("customer_sources",), f"cannot explain: {message}")]
        ) from exc
    finally:
        con.close()
    return Explanation(customer_id, reasons, values)


def _values(config: Config, con: Any, customer_id: str) -> dict[str, dict[str, Any] | None]:
    """Per DuckDB source: the attributes its rules read, for ``customer_id``'s row (the first
    of repeated rows), or None when it has no row of that id."""
    read: dict[str, set[str]] = {name: set() for name in config.customer_sources}
    for seg in config.segments:
        for sel, _ in selections(seg):
            if sel.rule is not None:
                read[sel.rule.source] |= attributes(sel.rule.rule)
    values: dict[str, dict[str, Any] | None] = {}
    for name, source in config.customer_sources.items():
        if source.engine != "duckdb":
            continue
        cols = sorted(c for c in read[name] if c in source.columns)
        ident = '"' + source.id_column.replace('"', '""') + '"'
        picked = ", ".join(['"' + c.replace('"', '""') + '"' for c in cols] or ["1"])
        rows = con.execute(
            f"SELECT {picked} FROM {duckdb_relation(source)} "
            f"WHERE CAST({ident} AS VARCHAR) = ? LIMIT 1",
            [customer_id],
        ).fetchall()
        values[name] = dict(zip(cols, rows[0], strict=True)) if rows else None
    return values


def _rule_hits(config: Config, con: Any, customer_id: str) -> dict[tuple[int, bool], bool]:
    """Whether ``customer_id`` matches each rule, by ``(segment index, exclude?)``."""
    # evaluate every rule once per source, for this one customer
    rule_hits: dict[tuple[int, bool], bool] = {}
    by_source: dict[str, list[tuple[int, bool, SourceRule]]] = {}
    for index, seg in enumerate(config.segments):
        for sel, exclude in selections(seg):
            if sel.rule is not None:
                by_source.setdefault(sel.rule.source, []).append((index, exclude, sel.rule))
    for name, rules in by_source.items():
        source = config.customer_sources[name]
        if source.engine != "duckdb":
            import pyarrow.compute as pc

            # the engine scans its table once; only this customer's rows are looked at
            hits: set[str] = set()
            for batch in _engine_members(config, source, rules):
                mine = batch.filter(pc.equal(batch.column(0), customer_id))
                hits.update(str(k) for k in mine.column(1).to_pylist())
            for k, (index, exclude, _) in enumerate(rules):
                rule_hits[(index, exclude)] = str(k) in hits
            continue
        cols: list[str] = []
        params: list[Any] = []
        for _, _, rule in rules:
            predicate, args = compile_rule(rule.rule, source.columns)
            cols.append(f"coalesce(bool_or({predicate}), FALSE)")
            params.extend(args)
        ident = '"' + source.id_column.replace('"', '""') + '"'
        row = con.execute(
            f"SELECT {', '.join(cols)} FROM {duckdb_relation(source)} "
            f"WHERE CAST({ident} AS VARCHAR) = ?",
            [*params, customer_id],
        ).fetchall()[0]
        for (index, exclude, _), hit in zip(rules, row, strict=True):
            rule_hits[(index, exclude)] = bool(hit)
    return rule_hits


def _reasons(
    config: Config,
    con: Any,
    customer_id: str,
    seg: SegmentConfig,
    sel: Selection,
    exclude: bool,
    rule_hit: bool,
) -> list[Reason]:
    """The reasons ``sel`` (``seg``'s include or exclude) holds ``customer_id``."""
    out: list[Reason] = []
    for j, cid in enumerate(sel.ids):
        if cid == customer_id:
            path = (*sel.node, "ids", j)
            out.append(
                Reason(
                    seg.id,
                    seg.targets,
                    "ids",
                    f"listed in {format_path(path)}",
                    config.location(path),
                    exclude,
                )
            )
    for f in sel.files:
        found = con.execute(
            f"SELECT count(*) FROM ({file_ids_sql(f.path, f.column)}) WHERE cid = ?",
            [customer_id],
        ).fetchall()[0][0]
        if found:
            detail = f.display + (f" (column {f.column})" if f.column else "")
            out.append(
                Reason(
                    seg.id,
                    seg.targets,
                    "file",
                    detail,
                    config.location(f.node),
                    exclude,
                )
            )
    if sel.rule is not None and rule_hit:
        detail = f"{sel.rule.source}: {render_rule(sel.rule.rule)}"
        out.append(
            Reason(
                seg.id,
                seg.targets,
                "rule",
                detail,
                config.location(sel.rule.node),
                exclude,
            )
        )
    return out
