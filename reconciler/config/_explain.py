"""Why one customer is in (or excluded from) each segment: by ids, a file or a rule."""

from __future__ import annotations

from typing import Any

import duckdb

from ..engines.readers import file_ids_sql
from ..exceptions import ConfigError
from ..rules import compile_rule, render_rule
from ._contributions import _engine_members, duckdb_relation, selections
from ._located import problem
from ._locations import format_path
from ._model import Config, Reason, SegmentConfig, Selection, SourceRule

__all__ = ["explain"]


def explain(config: Config, customer_id: str) -> list[Reason]:
    """Why ``customer_id`` is in (or excluded from) each segment: by ids, a file or a rule."""
    reasons: list[Reason] = []
    con = duckdb.connect(":memory:")
    try:
        rule_hits = _rule_hits(config, con, customer_id)
        for index, seg in enumerate(config.segments):
            for sel, exclude in selections(seg):
                hit = bool(rule_hits.get((index, exclude)))
                reasons.extend(_reasons(config, con, customer_id, seg, sel, exclude, hit))
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        raise ConfigError(
            [problem(config, ("customer_sources",), f"cannot explain: {message}")]
        ) from exc
    finally:
        con.close()
    return reasons


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
