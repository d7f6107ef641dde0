"""From a :class:`Config` to the desired :class:`State` of each target, computed in DuckDB.

Every segment gets one bit. Each contribution (inline ids, a member file, all the rules over one
customer source) becomes a sub-query yielding ``cid`` with include bits ``i<w>`` and exclude bits
``e<w>`` (one 64-bit word per 64 segments); rule sources are scanned ONCE, every rule evaluated as
a column of that one scan. DuckDB unions them and groups by customer (``bit_or(i) & ~bit_or(e)``),
and Python only turns each distinct mask into one shared ``frozenset`` of segment ids.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import duckdb

from ..exceptions import ConfigError, PlanError, Problem
from ..model import EMPTY, Segment, State
from ._datafiles import check_members
from ._model import Config, CustomerSource, Reason, SegmentConfig, Selection, SourceRule
from ._rules import compile_rule, render_rule
from ._sources import (
    csv_error,
    file_ids_sql,
    source_ref,
    source_sql,
    spark_engine,
    temp_table,
)
from ._yaml import format_path

__all__ = ["desired_table", "explain", "resolve"]

_WORD = 64
_BAD_ID = r"[\s\p{Z}\p{Cc}]"
_MAX_ID = 256


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
    return f"{1 << (index % _WORD)}::UBIGINT"


def _const_masks(words: int, index: int, exclude: bool) -> str:
    cols = []
    for kind in ("i", "e"):
        for w in range(words):
            hit = (kind == "e") == exclude and w == index // _WORD
            cols.append(f"{_bit(index) if hit else _zero()} AS {kind}{w}")
    return ", ".join(cols)


def _selections(seg: SegmentConfig) -> Iterator[tuple[Selection, bool]]:
    yield seg.members.include, False
    yield seg.members.exclude, True


def _contributions(
    config: Config,
    segments: list[SegmentConfig],
    con: Any,
    failures: list[ConfigError] | None = None,
) -> list[_Query]:
    words = max(1, (len(segments) + _WORD - 1) // _WORD)
    queries: list[_Query] = []

    # inline ids: one registered Arrow table for all of them
    cids: list[str] = []
    word: list[int] = []
    bit: list[int] = []
    exc: list[bool] = []
    # rules grouped by source: (segment index, exclude?, rule)
    by_source: dict[str, list[tuple[int, bool, SourceRule]]] = {}
    for index, seg in enumerate(segments):
        for sel, exclude in _selections(seg):
            for cid in sel.ids:
                cids.append(cid)
                word.append(index // _WORD)
                bit.append(index % _WORD)
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
            key = ("e" if exclude else "i", index // _WORD)
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
                f"FROM {_duckdb_relation(source)}) WHERE {nonzero}",
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


def _duckdb_relation(source: CustomerSource) -> str:
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
        message = _first_line(exc).removeprefix(f"engine {source.engine}: ")
        error = ConfigError(
            [
                _problem(
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
        [index // _WORD for index, _, _ in rules],
        [index % _WORD for index, _, _ in rules],
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _problem(config: Config, path: tuple[str | int, ...], message: str) -> Problem:
    line, col = config.location(path)
    return Problem(str(config.path), line, col, format_path(path), message)


def _bits(mask: int, base: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield base + low.bit_length() - 1
        mask ^= low


def _select_targets(config: Config, targets: Iterable[str] | None) -> list[str]:
    if targets is None:
        return list(config.targets)
    names = list(dict.fromkeys(targets))
    unknown = [t for t in names if t not in config.targets]
    if unknown:
        known = ", ".join(config.targets)
        raise ConfigError(
            [
                _problem(config, ("targets",), f"unknown target {t} (known: {known})")
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


def _members_table(
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
    with two rows (see :meth:`Wanted.group`), so the rows of a lone inclusive source (most
    configurations) are kept as they are read, without a ``GROUP BY`` over every customer
    (a third of the table's cost); ``False`` is then returned."""
    words = max(1, (len(segments) + _WORD - 1) // _WORD)
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
            f"{_MAX_ID} OR regexp_matches(cid, '{_BAD_ID}')) AND NOT "
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
            [_problem(config, ("customer_sources",), f"cannot compute members: {message}")]
        ) from exc
    if bad:
        raise ConfigError(
            [_invalid_member(config, segments[next(_bits(int(m0), 0), 0)], cid) for cid, m0 in bad]
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
            return _problem(config, (*source.node, "path"), f"{shown}:{line}: {what}")
    return None


def _invalid_member(config: Config, seg: SegmentConfig, cid: str | None) -> Problem:
    """The problem of an invalid member id of ``seg`` (empty, too long, or holding whitespace
    or a control character), located at its ``members``."""
    if cid is None or cid == "":
        what = "an empty customer id"
    elif len(cid) > _MAX_ID:
        what = f"customer id {cid[:40]!r}...: longer than {_MAX_ID} characters"
    else:
        what = f"customer id {cid!r}: contains whitespace or a control character"
    return _problem(config, (*seg.node, "members"), f"invalid member, {what}")


def _membership(
    config: Config, segments: list[SegmentConfig], skip: list[str] | None = None
) -> _Membership:
    words = max(1, (len(segments) + _WORD - 1) // _WORD)
    mcols = ", ".join(f"m{w}" for w in range(words))
    con = duckdb.connect(":memory:")
    try:
        if _members_table(config, segments, con, skip) is None:
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
        tmask[i // _WORD] |= 1 << (i % _WORD)
    by_key: dict[tuple[int, ...], frozenset[str]] = {}
    per_group: list[frozenset[str]] = []
    for mask in membership.masks:
        key = tuple(m & t for m, t in zip(mask, tmask, strict=True))
        shared = by_key.get(key)
        if shared is None:
            shared = by_key[key] = frozenset(
                seg_ids[b] for w, m in enumerate(key) for b in _bits(m, w * _WORD)
            )
        per_group.append(shared)
    if not membership.ids:
        return {}
    values = [per_group[g] for g in membership.groups]
    if all(per_group):
        return dict(zip(membership.ids, values, strict=True))
    return {c: s for c, s in zip(membership.ids, values, strict=True) if s}


def _check_files(config: Config, segments: list[SegmentConfig]) -> None:
    report = check_members(config, segments)
    if report.problems:
        problems = report.problems
        if not report.unreadable:  # also find what the customer sources hold, in the same run
            try:
                _membership(config, segments, skip=report.bad_ids)
            except ConfigError as exc:
                problems = [*problems, *exc.problems]
        raise ConfigError(problems)


def _skeleton(segments: list[SegmentConfig], seg_ids: list[str], mine: list[int]) -> State:
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
    names = _select_targets(config, targets)
    wanted = set(names)
    segments = [s for s in config.segments if wanted.intersection(s.targets)]
    _check_files(config, segments)
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
            _skeleton(segments, seg_ids, mine),
            customers=customers,
            links=MappingProxyType(links),
        )
    return out


@dataclass(frozen=True, slots=True)
class Wanted:
    """A target's desired state as :func:`desired_table` leaves it: the small part
    (``skeleton``: segments and access lists) and the segment of each bit of the masks."""

    skeleton: State
    #: the segment id of bit ``i`` (word ``i // 64``, bit ``i % 64``)
    seg_ids: list[str]
    #: one row per customer; when False a customer may have several (their masks OR'ed):
    #: :meth:`group` before relying on it
    unique: bool = True

    @property
    def words(self) -> int:
        return max(1, (len(self.seg_ids) + _WORD - 1) // _WORD)

    def joined(self, mask: tuple[int, ...]) -> str:
        """The segment ids of a mask, sorted and joined by ``\x1f`` ('' for none)."""
        return "\x1f".join(
            sorted(self.seg_ids[b] for w, m in enumerate(mask) for b in _bits(int(m), w * _WORD))
        )

    def group(self, con: Any) -> Wanted:
        """``wanted`` with one row per customer (its rows' masks OR'ed)."""
        words = range(self.words)
        masks = ", ".join(f"CAST(bit_or(m{w}) AS UBIGINT) AS m{w}" for w in words)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE wanted AS SELECT cid, {masks} FROM wanted GROUP BY cid"
        )
        return replace(self, unique=True)

    def masks(
        self, lists: Iterable[str], managed: Iterable[str]
    ) -> list[tuple[tuple[int, ...], bool]]:
        """For each segment list (ids joined by ``\x1f``): the mask of the desired segments it
        holds, and whether it also holds one of ``managed`` that is not desired (so that no
        desired mask can equal its managed part)."""
        bit = {seg: i for i, seg in enumerate(self.seg_ids)}
        others = set(managed)
        out: list[tuple[tuple[int, ...], bool]] = []
        for joined in lists:
            words = [0] * self.words
            other = False
            for seg in joined.split("\x1f") if joined else ():
                i = bit.get(seg)
                if i is not None:
                    words[i // _WORD] |= 1 << (i % _WORD)
                elif seg in others:
                    other = True
            out.append((tuple(words), other))
        return out


def desired_table(config: Config, target: str, con: Any) -> Wanted:
    """The desired membership of ``target`` as a DuckDB table, never loaded into Python.

    Creates ``wanted(cid, m0, ...)`` in ``con``: every customer with at least one of the
    target's segments, with one mask word per 64 segments (see :class:`Wanted`; a customer
    may have several rows unless ``unique``).
    """
    (name,) = _select_targets(config, [target])
    segments = [s for s in config.segments if name in s.targets]
    _check_files(config, segments)
    seg_ids = [sys.intern(s.id) for s in segments]
    wanted = Wanted(_skeleton(segments, seg_ids, list(range(len(segments)))), seg_ids)
    unique = _members_table(config, segments, con, table="wanted", rows=True)
    if unique is None:
        words = ", ".join(f"m{w} UBIGINT" for w in range(wanted.words))
        con.execute(f"CREATE TEMP TABLE wanted (cid VARCHAR, {words})")
        return wanted
    return replace(wanted, unique=unique)


def explain(config: Config, customer_id: str) -> list[Reason]:
    """Why ``customer_id`` is in (or excluded from) each segment: by ids, a file or a rule."""
    reasons: list[Reason] = []
    con = duckdb.connect(":memory:")
    try:
        # evaluate every rule once per source, for this one customer
        rule_hits: dict[tuple[int, bool], bool] = {}
        by_source: dict[str, list[tuple[int, bool, SourceRule]]] = {}
        for index, seg in enumerate(config.segments):
            for sel, exclude in _selections(seg):
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
                f"SELECT {', '.join(cols)} FROM {_duckdb_relation(source)} "
                f"WHERE CAST({ident} AS VARCHAR) = ?",
                [*params, customer_id],
            ).fetchall()[0]
            for (index, exclude, _), hit in zip(rules, row, strict=True):
                rule_hits[(index, exclude)] = bool(hit)

        for index, seg in enumerate(config.segments):
            for sel, exclude in _selections(seg):
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
            [_problem(config, ("customer_sources",), f"cannot explain: {message}")]
        ) from exc
    finally:
        con.close()
    return reasons
