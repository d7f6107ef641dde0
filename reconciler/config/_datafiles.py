"""Checks of the member lists a config names: ids inline and in files, located to the line.

Run before membership is computed, so a bad id is reported as ``ids.txt:2: …`` under the
``files`` entry that names the file, rather than as a segment-wide problem. Each file is scanned
by DuckDB as a table (a file of one id per line as a one-column table of its lines, numbered in
file order); nothing is loaded into Python but the offenders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

from ..engines import memory
from ..engines.readers import (
    LINE_ID,
    MAX_ID,
    csv_error,
    csv_sql,
    file_ids_sql,
    invalid_id_sql,
    lines_sql,
    sql_string,
)
from ..exceptions import Problem
from ._locations import NodePath, format_path
from ._model import Config, MemberFile, SegmentConfig

__all__ = ["MemberReport", "check_members"]

#: offenders reported per file
LIMIT = 20


@dataclass(slots=True)
class MemberReport:
    problems: list[Problem] = field(default_factory=list)
    #: the bad ids already reported (so later checks don't report them twice)
    bad_ids: list[str] = field(default_factory=list)
    #: a file could not be read at all
    unreadable: bool = False


def _problem(config: Config, node: NodePath, message: str) -> Problem:
    line, col = config.location(node)
    return Problem(str(config.path), line, col, format_path(node), message)


def _numbered_sql(f: MemberFile) -> str:
    """``(n, cid)`` for every id of a member file, ``n`` its line in the file."""
    if f.column is None:
        return (
            f"SELECT n, cid FROM (SELECT row_number() OVER ()::BIGINT AS n, {LINE_ID} AS cid "
            f"FROM {lines_sql(f.path)}) "
            "WHERE cid <> '' AND NOT starts_with(cid, '#')"
        )
    col = '"' + f.column.replace('"', '""') + '"'
    types = "{" + sql_string(f.column) + ": 'VARCHAR'}"
    return (
        f"SELECT (row_number() OVER () + 1)::BIGINT AS n, CAST({col} AS VARCHAR) AS cid FROM "
        f"{csv_sql(f.path, types)}"
    )


def _what(cid: str | None) -> str:
    if not cid:
        return "an empty customer id"
    if len(cid) > MAX_ID:
        return f"customer id {cid[:40]!r}… is longer than {MAX_ID} characters"
    return f"customer id {cid!r} contains whitespace or a control character"


def _check_file(
    con: duckdb.DuckDBPyConnection, config: Config, f: MemberFile, report: MemberReport
) -> None:
    numbered = _numbered_sql(f)
    invalid = f"(cid = '' OR {invalid_id_sql('cid')})"
    bad: list[tuple[int, str | None]] = []
    dupes: list[tuple[str, list[int]]] = []
    try:
        # one pass, without line numbers, to find whether there is anything to locate
        ((any_bad, any_dupe),) = con.execute(
            f"SELECT coalesce(bool_or({invalid}), false), count(*) > count(DISTINCT cid) "
            f"FROM ({file_ids_sql(f.path, f.column)})"
        ).fetchall()
        if any_bad:
            bad = con.execute(
                f"SELECT n, cid FROM ({numbered}) WHERE {invalid} ORDER BY n LIMIT {LIMIT}"
            ).fetchall()
        if any_dupe:
            dupes = con.execute(
                f"SELECT cid, list(n ORDER BY n)[1:3] FROM ({numbered}) WHERE cid IS NOT NULL "
                f"GROUP BY cid HAVING count(*) > 1 ORDER BY min(n) LIMIT {LIMIT}"
            ).fetchall()
    except duckdb.Error as exc:
        report.unreadable = True
        text = str(exc)
        row = csv_error(exc)
        if row is not None:
            _, line, what = row
            report.problems.append(_problem(config, f.node, f"{f.display}:{line}: {what}"))
            return
        if "utf-8" in text.lower() or "unicode" in text.lower():
            reason = "is not valid UTF-8 text"
        else:
            first = text.strip().splitlines()[0].replace(str(f.path), f.display)
            reason = f"cannot be read ({first})"
        report.problems.append(_problem(config, f.node, f"member file {f.display} {reason}"))
        return
    report.bad_ids += [cid for _, cid in bad if cid]
    for n, cid in bad:
        report.problems.append(_problem(config, f.node, f"{f.display}:{n}: {_what(cid)}"))
    for cid, lines in dupes:
        again = ", ".join(str(x) for x in lines[1:])
        message = f"{f.display}:{lines[0]}: duplicate customer id {cid!r} (again on line {again})"
        report.problems.append(_problem(config, f.node, message))


def _check_inline(config: Config, node: NodePath, ids: Iterable[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, cid in enumerate(ids):
        if cid in seen:
            first = format_path((*node, seen[cid]))
            problems.append(
                _problem(config, (*node, i), f"duplicate customer id {cid!r} (first at {first})")
            )
        else:
            seen[cid] = i
    return problems


def check_members(config: Config, segments: Iterable[SegmentConfig]) -> MemberReport:
    """Every problem in the member ids and member files of ``segments``."""
    report = MemberReport()
    con: duckdb.DuckDBPyConnection | None = None  # opened for the first file
    try:
        for seg in segments:
            for sel, where in ((seg.members.include, ()), (seg.members.exclude, ("exclude",))):
                base = (*seg.node, "members", *where)
                report.problems += _check_inline(config, (*base, "ids"), sel.ids)
                for f in sel.files:
                    con = con or memory.connect()
                    _check_file(con, config, f, report)
    finally:
        if con is not None:
            con.close()
    return report
