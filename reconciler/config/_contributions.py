"""What each segment's members come from, as DuckDB sub-queries over segment bits.

Every segment gets one bit. Each contribution (inline ids, a member file, all the rules over one
customer source) becomes a sub-query yielding ``cid`` with include bits ``i<w>`` and exclude bits
``e<w>`` (one 64-bit word per 64 segments); rule sources are scanned ONCE, every rule evaluated as
a column of that one scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..engines.readers import file_ids_sql, source_sql, temp_table
from ..exceptions import ConfigError, PlanError, SecretError
from ..rules import compile_rule
from ._located import first_line, problem
from ._model import Config, CustomerSource, SegmentConfig, Selection, SourceRule
from ._sources import source_engine, source_ref

__all__ = ["WORD", "duckdb_relation", "selections"]

#: segments per mask word
WORD = 64


@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    params: tuple[Any, ...] = ()
    #: one row per source row, with no exclusion: alone, and where each customer has one
    #: row, its include bits are already the customer's masks
    inclusive: bool = False


def _zero() -> str:
    return "0::UBIGINT"


def _bit(index: int) -> str:
    return f"{1 << (index % WORD)}::UBIGINT"


def _const_masks(words: int, index: int, exclude: bool) -> str:
    cols = []
    for kind in ("i", "e"):
        for w in range(words):
            hit = (kind == "e") == exclude and w == index // WORD
            cols.append(f"{_bit(index) if hit else _zero()} AS {kind}{w}")
    return ", ".join(cols)


def selections(seg: SegmentConfig) -> Iterator[tuple[Selection, bool]]:
    yield seg.members.include, False
    yield seg.members.exclude, True


def _contributions(
    config: Config,
    segments: list[SegmentConfig],
    con: Any,
    failures: list[ConfigError] | None = None,
) -> list[_Query]:
    words = max(1, (len(segments) + WORD - 1) // WORD)
    queries: list[_Query] = []

    # inline ids: one registered Arrow table for all of them
    cids: list[str] = []
    word: list[int] = []
    bit: list[int] = []
    exc: list[bool] = []
    # rules grouped by source: (segment index, exclude?, rule)
    by_source: dict[str, list[tuple[int, bool, SourceRule]]] = {}
    for index, seg in enumerate(segments):
        for sel, exclude in selections(seg):
            for cid in sel.ids:
                cids.append(cid)
                word.append(index // WORD)
                bit.append(index % WORD)
                exc.append(exclude)
            for f in sel.files:
                queries.append(
                    _Query(
                        f"SELECT cid, {_const_masks(words, index, exclude)} "
                        f"FROM ({file_ids_sql(f.path, f.column)})"
                    )
                )
            if sel.rule is not None:
                by_source.setdefault(sel.rule.source, []).append((index, exclude, sel.rule))
    if cids:
        _bit_table(con, "_inline_ids", cids, word, bit, exc)
        queries.append(_Query(f"SELECT cid, {_bit_columns(words)} FROM _inline_ids"))

    for n, (name, rules) in enumerate(by_source.items()):
        source = config.customer_sources[name]
        if source.engine != "duckdb":
            queries.append(_engine_contribution(config, source, rules, words, con, n, failures))
            continue
        params: list[Any] = []
        terms: dict[tuple[str, int], list[str]] = {}
        for index, exclude, rule in rules:
            predicate, args = compile_rule(rule.rule, source.columns)
            params.extend(args)
            key = ("e" if exclude else "i", index // WORD)
            terms.setdefault(key, []).append(
                f"CASE WHEN {predicate} THEN {_bit(index)} ELSE 0::UBIGINT END"
            )
        cols = [
            "(" + " | ".join(terms.get((kind, w), [_zero()])) + f") AS {kind}{w}"
            for kind in ("i", "e")
            for w in range(words)
        ]
        ident = '"' + source.id_column.replace('"', '""') + '"'
        nonzero = " OR ".join(f"{k}{w} <> 0" for k in ("i", "e") for w in range(words))
        # MATERIALIZED: a filter on the masks is otherwise pushed below the projection as the
        # masks' whole expression, so every rule is evaluated once per filter above it and
        # again for the rows kept (three times in all: 1.5x the cost of the scan at 1M rows)
        queries.append(
            _Query(
                f"WITH _masks AS MATERIALIZED (SELECT CAST({ident} AS VARCHAR) AS cid, "
                f"{', '.join(cols)} FROM {duckdb_relation(source)}) "
                f"SELECT * FROM _masks WHERE {nonzero}",
                tuple(params),
                inclusive=not any(exclude for _, exclude, _ in rules),
            )
        )
    return queries


def _bit_table(
    con: Any, name: str, cids: list[str], word: list[int], bit: list[int], exc: list[bool]
) -> None:
    """Segment bits to set, one row each: word ``w``, bit ``b``, exclude ``x``."""
    temp_table(
        con,
        name,
        {
            "cid": ("VARCHAR", cids),
            "w": ("INTEGER", word),
            "b": ("INTEGER", bit),
            "x": ("BOOLEAN", exc),
        },
    )


def _bit_columns(words: int) -> str:
    """The ``i<w>``/``e<w>`` columns of a relation with the columns of :func:`_bit_table`."""
    return ", ".join(
        f"CASE WHEN w = {w} AND {'' if kind == 'e' else 'NOT '}x "
        f"THEN CAST(1::UBIGINT << b AS UBIGINT) ELSE 0::UBIGINT END AS {kind}{w}"
        for kind in ("i", "e")
        for w in range(words)
    )


def duckdb_relation(source: CustomerSource) -> str:
    assert source.path is not None
    assert source.format is not None
    return source_sql(source.path, source.format, source.id_column)


def _engine_members(
    config: Config,
    source: CustomerSource,
    rules: list[tuple[int, bool, SourceRule]],
    failures: list[ConfigError] | None = None,
) -> Iterator[Any]:
    """``(customer_id, k)`` for every row matching ``rules[k]``, evaluated by the source's engine.

    Each rule is its own "segment" of the engine's one-scan members query, so include and
    exclude rules come back apart and the bitmask algebra stays in DuckDB.
    """
    from ..engines import SegmentRule

    segments = [SegmentRule(str(k), rule.rule) for k, (_, _, rule) in enumerate(rules)]
    try:
        with source_engine(config, source) as engine:
            yield from engine.members(source_ref(source), segments)
    except (PlanError, SecretError) as exc:
        message = first_line(exc).removeprefix(f"engine {source.engine}: ")
        error = ConfigError(
            [
                problem(
                    config,
                    (*source.node, "engine"),
                    f"cannot compute members on {source.engine}: {message}",
                )
            ]
        )
        if failures is not None:  # DuckDB, scanning this stream, reports it as its own error
            failures.append(error)
        raise error from exc


def _engine_contribution(
    config: Config,
    source: CustomerSource,
    rules: list[tuple[int, bool, SourceRule]],
    words: int,
    con: Any,
    n: int,
    failures: list[ConfigError] | None,
) -> _Query:
    """The bits of ``rules`` from the members the engine streams back as Arrow batches,
    registered in ``con`` (scanned once, never held whole in Python)."""
    import pyarrow as pa  # the engines stream Arrow (imported here: it is slow to import)

    from ..engines import MEMBERS_SCHEMA

    keys, view = f"_engine_keys_{n}", f"_engine_members_{n}"
    _bit_table(
        con,
        keys,
        [str(k) for k in range(len(rules))],
        [index // WORD for index, _, _ in rules],
        [index % WORD for index, _, _ in rules],
        [exclude for _, exclude, _ in rules],
    )
    reader = pa.RecordBatchReader.from_batches(
        MEMBERS_SCHEMA, _engine_members(config, source, rules, failures)
    )
    con.register(view, reader)
    return _Query(
        f"SELECT m.customer_id AS cid, {_bit_columns(words)} "
        f"FROM {view} AS m JOIN {keys} AS k ON m.segment_id = k.cid"
    )
