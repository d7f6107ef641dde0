"""The members table: every customer with a segment, and its segment masks.

DuckDB unions the contributions (:mod:`._contributions`) and groups by customer
(``bit_or(i) & ~bit_or(e)``); member ids are checked there, and a customer source's malformed row
is located at its file and line.

The mask table and its checks are public: the membership diff (:mod:`reconciler.membership`)
builds a target's desired members from the same ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from ..engines import memory
from ..engines.readers import MAX_ID, csv_error, invalid_id_sql
from ..exceptions import ConfigError, Problem
from ._contributions import WORD, _contributions
from ._datafiles import check_members
from ._located import problem
from ._model import Config, SegmentConfig

__all__ = [
    "bits",
    "check_files",
    "check_ids",
    "check_membership",
    "invalid_member",
    "members_table",
]


def bits(mask: int, base: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield base + low.bit_length() - 1
        mask ^= low


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
    check: bool = True,
) -> bool | None:
    """Create ``table(cid, m0..)`` in ``con``: every customer with a segment, with one mask
    word per 64 segments. ``None`` when nothing contributes members; raises
    :class:`ConfigError` (located) for invalid member ids or an unreadable source.

    Returns whether each customer has one row. ``rows``: the caller can tell a customer
    with two rows (see :meth:`reconciler.membership.Wanted.group`), so the rows of a lone
    inclusive source (most configurations) are kept as they are read, without a ``GROUP BY``
    over every customer (a third of the table's cost); ``False`` is then returned.
    ``check``: False when the caller checks the ids itself (:func:`check_ids`)."""
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
        if check:
            check_ids(config, segments, con, table, skip)
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
    return grouped


def check_ids(
    config: Config,
    segments: list[SegmentConfig],
    con: Any,
    table: str = "members",
    skip: list[str] | None = None,
) -> None:
    """Raise :class:`ConfigError` (located at each segment's ``members``) for the invalid
    customer ids of the members table ``table`` (the first 20, in id order), but ``skip``."""
    bad = con.execute(
        f"SELECT cid, bit_or(m0) FROM {table} WHERE {invalid_id_sql('cid')} AND NOT "
        "coalesce(list_contains(?::VARCHAR[], cid), false) "
        "GROUP BY cid ORDER BY cid NULLS FIRST LIMIT 20",
        [skip or []],
    ).fetchall()
    if bad:
        raise ConfigError(
            [invalid_member(config, segments[next(bits(int(m0), 0), 0)], cid) for cid, m0 in bad]
        )


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
    con = memory.connect()
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


def check_membership(config: Config, segments: list[SegmentConfig]) -> None:
    """Raise what resolving ``segments`` would (see :func:`check_files` and
    :func:`members_table`), without bringing the members into Python."""
    check_files(config, segments)
    con = memory.connect()
    try:
        members_table(config, segments, con, rows=True)
    finally:
        con.close()


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
