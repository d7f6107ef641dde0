"""From a :class:`Config` to the desired :class:`State` of each target, computed in DuckDB.

Every segment gets one bit. Each contribution (inline ids, a member file, all the rules over one
customer source) becomes a sub-query yielding ``cid`` with include bits ``i<w>`` and exclude bits
``e<w>`` (one 64-bit word per 64 segments); rule sources are scanned ONCE, every rule evaluated as
a column of that one scan. DuckDB unions them and groups by customer (``bit_or(i) & ~bit_or(e)``),
and Python only turns each distinct mask into one shared ``frozenset`` of segment ids.

The mask tables and the helpers of located problems are public: the membership diff
(:mod:`reconciler.membership`) builds a target's desired members from the same ones.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import duckdb

from ..engines.readers import csv_error, file_ids_sql, source_sql, temp_table
from ..exceptions import ConfigError, PlanError, Problem
from ..model import EMPTY, Segment, State
from ..rules import compile_rule, render_rule
from ._datafiles import check_members
from ._model import Config, CustomerSource, Reason, SegmentConfig, Selection, SourceRule
from ._sources import source_ref, spark_engine
from ._yaml import format_path

__all__ = [
    "BAD_ID",
    "MAX_ID",
    "WORD",
    "bits",
    "check_files",
    "duckdb_relation",
    "explain",
    "first_line",
    "invalid_member",
    "members_table",
    "problem",
    "resolve",
    "select_targets",
    "selections",
    "skeleton",
    "target_segments",
]

#: segments per mask word
WORD = 64
#: a character no member id may hold (whitespace or a control character), as RE2 and Java read it
BAD_ID = r"[\s\p{Z}\p{Cc}]"
#: the longest member id
MAX_ID = 256


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
        queries.append(
            _Query(
                f"SELECT * FROM (SELECT CAST({ident} AS VARCHAR) AS cid, {', '.join(cols)} "
                f"FROM {duckdb_relation(source)}) WHERE {nonzero}",
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

    assert config.spark is not None
    engine = spark_engine(config.spark)
    segments = [SegmentRule(str(k), rule.rule) for k, (_, _, rule) in enumerate(rules)]
    try:
        yield from engine.members(source_ref(source), segments)
    except PlanError as exc:
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def problem(config: Config, path: tuple[str | int, ...], message: str) -> Problem:
    line, col = config.location(path)
    return Problem(str(config.path), line, col, format_path(path), message)


def bits(mask: int, base: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield base + low.bit_length() - 1
        mask ^= low


def target_segments(config: Config, target: str) -> list[SegmentConfig]:
    """The segments of target ``target`` (a located :class:`ConfigError` when it is unknown)."""
    (name,) = select_targets(config, [target])
    return [s for s in config.segments if name in s.targets]


def select_targets(config: Config, targets: Iterable[str] | None) -> list[str]:
    if targets is None:
        return list(config.targets)
    names = list(dict.fromkeys(targets))
    unknown = [t for t in names if t not in config.targets]
    if unknown:
        known = ", ".join(config.targets)
        raise ConfigError(
            [
                problem(config, ("targets",), f"unknown target {t} (known: {known})")
                for t in unknown
            ]
        )
    return names


@dataclass(frozen=True, slots=True)
class _Membership:
    """Customers with at least one segment, each with the index of its distinct mask."""

    ids: list[str]
    groups: list[int]
    #: group index → one int per 64 segments
    masks: list[tuple[int, ...]]


def members_table(
    config: Config,
    segments: list[SegmentConfig],
    con: Any,
    skip: list[str] | None = None,
    table: str = "members",
    rows: bool = False,
) -> bool | None:
    """Create ``table(cid, m0..)`` in ``con``: every customer with a segment, with one mask
    word per 64 segments. ``None`` when nothing contributes members; raises
    :class:`ConfigError` (located) for invalid member ids or an unreadable source.

    Returns whether each customer has one row. ``rows``: the caller can tell a customer
    with two rows (see :meth:`reconciler.membership.Wanted.group`), so the rows of a lone
    inclusive source (most configurations) are kept as they are read, without a ``GROUP BY``
    over every customer (a third of the table's cost); ``False`` is then returned."""
    words = max(1, (len(segments) + WORD - 1) // WORD)
    failures: list[ConfigError] = []
    queries = _contributions(config, segments, con, failures)
    if not queries:
        return None
    union = " UNION ALL ".join(f"({q.sql})" for q in queries)
    params = [p for q in queries for p in q.params]
    grouped = not (rows and len(queries) == 1 and queries[0].inclusive)
    if grouped:
        masks = ", ".join(
            f"CAST(bit_or(i{w}) & ~bit_or(e{w}) AS UBIGINT) AS m{w}" for w in range(words)
        )
        any_set = " OR ".join(f"m{w} <> 0" for w in range(words))
        select = f"SELECT * FROM (SELECT cid, {masks} FROM ({union}) GROUP BY cid) WHERE {any_set}"
    else:
        masks = ", ".join(f"CAST(i{w} AS UBIGINT) AS m{w}" for w in range(words))
        any_set = " OR ".join(f"i{w} <> 0" for w in range(words))
        select = f"SELECT cid, {masks} FROM ({union}) WHERE {any_set}"
    try:
        con.execute(f"CREATE TEMP TABLE {table} AS {select}", params).fetchall()
        bad = con.execute(
            f"SELECT cid, bit_or(m0) FROM {table} WHERE (cid IS NULL OR length(cid) > "
            f"{MAX_ID} OR regexp_matches(cid, '{BAD_ID}')) AND NOT "
            "coalesce(list_contains(?::VARCHAR[], cid), false) "
            "GROUP BY cid ORDER BY cid NULLS FIRST LIMIT 20",
            [skip or []],
        ).fetchall()
    except duckdb.Error as exc:
        if failures:  # an engine's stream failed: its located problem, not DuckDB's wrapper
            raise failures[0] from exc
        located = _row_problem(config, exc)
        if located is not None:
            raise ConfigError([located]) from exc
        message = str(exc).strip().splitlines()[0]
        raise ConfigError(
            [problem(config, ("customer_sources",), f"cannot compute members: {message}")]
        ) from exc
    if bad:
        raise ConfigError(
            [invalid_member(config, segments[next(bits(int(m0), 0), 0)], cid) for cid, m0 in bad]
        )
    return grouped


def _row_problem(config: Config, exc: duckdb.Error) -> Problem | None:
    """A malformed row of a customer source, located at the source's ``path`` as
    ``file:line: reason`` (None when ``exc`` is not about one row of a source)."""
    row = csv_error(exc)
    if row is None:
        return None
    file, line, what = row
    for source in config.customer_sources.values():
        if source.path is not None and str(source.path) == file:
            try:
                shown = source.path.relative_to(config.path.parent).as_posix()
            except ValueError:
                shown = str(source.path)
            return problem(config, (*source.node, "path"), f"{shown}:{line}: {what}")
    return None


def invalid_member(config: Config, seg: SegmentConfig, cid: str | None) -> Problem:
    """The problem of an invalid member id of ``seg`` (empty, too long, or holding whitespace
    or a control character), located at its ``members``."""
    if cid is None or cid == "":
        what = "an empty customer id"
    elif len(cid) > MAX_ID:
        what = f"customer id {cid[:40]!r}...: longer than {MAX_ID} characters"
    else:
        what = f"customer id {cid!r}: contains whitespace or a control character"
    return problem(config, (*seg.node, "members"), f"invalid member, {what}")


def _membership(
    config: Config, segments: list[SegmentConfig], skip: list[str] | None = None
) -> _Membership:
    words = max(1, (len(segments) + WORD - 1) // WORD)
    mcols = ", ".join(f"m{w}" for w in range(words))
    con = duckdb.connect(":memory:")
    try:
        if members_table(config, segments, con, skip) is None:
            return _Membership([], [], [])
        # one dense group number per distinct mask: Python never looks at a mask twice
        con.execute(
            "CREATE TEMP TABLE groups AS SELECT "
            f"(row_number() OVER (ORDER BY {mcols}) - 1)::INTEGER AS g, {mcols} "
            f"FROM (SELECT DISTINCT {mcols} FROM members)"
        ).fetchall()
        distinct = con.execute(f"SELECT {mcols} FROM groups ORDER BY g").fetchall()
        table = con.sql(f"SELECT cid, g FROM members JOIN groups USING ({mcols})").to_arrow_table()
    finally:
        con.close()
    return _Membership(
        table.column("cid").to_pylist(),
        table.column("g").to_pylist(),
        [tuple(int(m) for m in row) for row in distinct],
    )


def _links(
    membership: _Membership, seg_ids: list[str], mine: list[int]
) -> dict[str, frozenset[str]]:
    """customer id → shared frozenset of this target's segments (customers without one omitted)."""
    words = len(membership.masks[0]) if membership.masks else 1
    tmask = [0] * words
    for i in mine:
        tmask[i // WORD] |= 1 << (i % WORD)
    by_key: dict[tuple[int, ...], frozenset[str]] = {}
    per_group: list[frozenset[str]] = []
    for mask in membership.masks:
        key = tuple(m & t for m, t in zip(mask, tmask, strict=True))
        shared = by_key.get(key)
        if shared is None:
            shared = by_key[key] = frozenset(
                seg_ids[b] for w, m in enumerate(key) for b in bits(m, w * WORD)
            )
        per_group.append(shared)
    if not membership.ids:
        return {}
    values = [per_group[g] for g in membership.groups]
    if all(per_group):
        return dict(zip(membership.ids, values, strict=True))
    return {c: s for c, s in zip(membership.ids, values, strict=True) if s}


def check_files(config: Config, segments: list[SegmentConfig]) -> None:
    report = check_members(config, segments)
    if report.problems:
        problems = report.problems
        if not report.unreadable:  # also find what the customer sources hold, in the same run
            try:
                _membership(config, segments, skip=report.bad_ids)
            except ConfigError as exc:
                problems = [*problems, *exc.problems]
        raise ConfigError(problems)


def skeleton(segments: list[SegmentConfig], seg_ids: list[str], mine: list[int]) -> State:
    """A target's desired segments and access lists (no customers, no links)."""
    return State(
        segments=MappingProxyType(
            {
                seg_ids[i]: Segment(segments[i].id, segments[i].name, segments[i].description)
                for i in mine
            }
        ),
        access=MappingProxyType(
            {
                seg_ids[i]: segments[i].access or EMPTY
                for i in mine
                if segments[i].access is not None
            }
        ),
    )


def resolve(config: Config, targets: Iterable[str] | None = None) -> dict[str, State]:
    """The desired :class:`State` of each target (all targets, or the ones named).

    Links map each customer to one frozenset shared by every customer with the same segments
    on that target; ``customers`` is every customer with at least one link. The order of
    ``links`` is unspecified (sort when presenting).
    """
    names = select_targets(config, targets)
    wanted = set(names)
    segments = [s for s in config.segments if wanted.intersection(s.targets)]
    check_files(config, segments)
    membership = _membership(config, segments)
    seg_ids = [sys.intern(s.id) for s in segments]

    out: dict[str, State] = {}
    everyone: frozenset[str] | None = None
    for name in names:
        mine = [i for i, s in enumerate(segments) if name in s.targets]
        links = _links(membership, seg_ids, mine)
        if len(links) == len(membership.ids):
            everyone = everyone if everyone is not None else frozenset(membership.ids)
            customers = everyone
        else:
            customers = frozenset(links)
        out[name] = replace(
            skeleton(segments, seg_ids, mine),
            customers=customers,
            links=MappingProxyType(links),
        )
    return out


def explain(config: Config, customer_id: str) -> list[Reason]:
    """Why ``customer_id`` is in (or excluded from) each segment: by ids, a file or a rule."""
    reasons: list[Reason] = []
    con = duckdb.connect(":memory:")
    try:
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

        for index, seg in enumerate(config.segments):
            for sel, exclude in selections(seg):
                for j, cid in enumerate(sel.ids):
                    if cid == customer_id:
                        path = (*sel.node, "ids", j)
                        reasons.append(
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
                        reasons.append(
                            Reason(
                                seg.id,
                                seg.targets,
                                "file",
                                detail,
                                config.location(f.node),
                                exclude,
                            )
                        )
                if sel.rule is not None and rule_hits.get((index, exclude)):
                    detail = f"{sel.rule.source}: {render_rule(sel.rule.rule)}"
                    reasons.append(
                        Reason(
                            seg.id,
                            seg.targets,
                            "rule",
                            detail,
                            config.location(sel.rule.node),
                            exclude,
                        )
                    )
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        raise ConfigError(
            [problem(config, ("customer_sources",), f"cannot explain: {message}")]
        ) from exc
    finally:
        con.close()
    return reasons
