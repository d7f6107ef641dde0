"""The Epsilon file-feed format: render and parse the segment and customer files, and publish a
file atomically.

Per Epsilon's audience-targeting file reference: tab-separated, a header row, no quoting,
UTF-8, ``\\n`` line endings, list columns as JSON arrays. Choices made here, all deterministic
byte for byte:

- list columns are compact JSON of the sorted ids (``["a","b"]``, no spaces: as the segment
  file of Epsilon's "Sync Customers & Audience" guide prints ``team_ids``); parsing accepts any
  JSON array of strings, so the guide's
  customer rows (``["general-segment-3", "general-segment-4"]``) read back too;
- ``team_ids`` is left **empty** for a segment without an access list (as in the seed; the
  reference reads an empty cell as "visible to all teams") — ``[]`` is never written, and is read
  as "no list";
- rows are sorted by their id (code point order); a delta row for a removed customer carries
  ``[]`` in ``segments``;
- gzip output has no file name and mtime 0, so the same rows give the same bytes.

A value with a tab, a newline or a carriage return cannot be carried unquoted: rendering refuses
it with :class:`~reconciler.exceptions.UnsupportedError` rather than write a broken file.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..exceptions import ProviderError, UnsupportedError
from ..model import EMPTY, Segment

__all__ = [
    "CUSTOMER_COLUMNS",
    "DELTA_COLUMNS",
    "FORBIDDEN",
    "SEGMENT_COLUMNS",
    "check_text",
    "delta_rows",
    "json_list",
    "parse_customers",
    "parse_segments",
    "read_bytes",
    "segment_rows",
    "snapshot_rows",
    "write_atomic",
]

SEGMENT_COLUMNS = ("segment_id", "name", "description", "team_ids")
CUSTOMER_COLUMNS = ("customer_id", "segments")
DELTA_COLUMNS = ("customer_id", "segments", "status")
#: characters the unquoted format cannot carry
FORBIDDEN = "\t\n\r"
_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


def check_text(value: str, what: str) -> None:
    """Refuse a value the format cannot carry."""
    for ch in FORBIDDEN:
        if ch in value:
            raise UnsupportedError(
                f"{what} {value!r} contains {_NAMES[ch]}, which the Epsilon file feed cannot "
                "carry (tab-separated, no quoting)"
            )


def json_list(ids: Iterable[str], what: str) -> str:
    values = sorted(ids)
    for v in values:
        check_text(v, what)
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _line(fields: Iterable[str]) -> str:
    return "\t".join(fields) + "\n"


def segment_rows(
    segments: Mapping[str, Segment], access: Mapping[str, frozenset[str]]
) -> Iterator[str]:
    yield _line(SEGMENT_COLUMNS)
    for seg_id in sorted(segments):
        seg = segments[seg_id]
        check_text(seg.id, "segment id")
        check_text(seg.name, f"the name of segment {seg.id!r}:")
        check_text(seg.description, f"the description of segment {seg.id!r}:")
        teams = access.get(seg_id, EMPTY)
        cell = json_list(teams, f"a team id of segment {seg.id!r}:") if teams else ""
        yield _line((seg.id, seg.name, seg.description, cell))


def snapshot_rows(links: Mapping[str, frozenset[str]]) -> Iterator[str]:
    yield _line(CUSTOMER_COLUMNS)
    for cid in sorted(links):
        check_text(cid, "customer id")
        yield _line((cid, json_list(links[cid], f"a segment id of customer {cid!r}:")))


def delta_rows(
    old: Mapping[str, frozenset[str]], new: Mapping[str, frozenset[str]]
) -> Iterator[str]:
    """``INSERT`` a customer new to the feed, ``UPDATE`` one whose list changed (with its whole
    new list), ``DELETE`` one that left it; unchanged customers are not written."""
    yield _line(DELTA_COLUMNS)
    for cid in sorted(old.keys() | new.keys()):
        before, after = old.get(cid), new.get(cid)
        if before == after:
            continue
        check_text(cid, "customer id")
        status = "INSERT" if before is None else "DELETE" if after is None else "UPDATE"
        segs = json_list(after or EMPTY, f"a segment id of customer {cid!r}:")
        yield _line((cid, segs, status))


# -- parsing ----------------------------------------------------------------------------------
def _rows(
    text: str, where: str, required: tuple[str, ...]
) -> tuple[list[str], Iterator[list[str]]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ProviderError(f"{where}: empty file (no header row)")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise ProviderError(f"{where}: header lacks {', '.join(missing)}")

    def rows() -> Iterator[list[str]]:
        for n, line in enumerate(lines[1:], start=2):
            fields = line.split("\t")
            if len(fields) != len(header):
                raise ProviderError(
                    f"{where}:{n}: {len(fields)} fields, the header has {len(header)}"
                )
            yield fields

    return header, rows()


def _list(cell: str, where: str) -> list[str]:
    if not cell:
        return []
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{where}: not a JSON array: {cell!r}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProviderError(f"{where}: expected a JSON array of strings, got {cell!r}")
    return value


def parse_segments(text: str, where: str) -> tuple[dict[str, Segment], dict[str, frozenset[str]]]:
    """Segments and their access lists (segments without teams have no entry)."""
    header, rows = _rows(text, where, ("segment_id", "name", "description"))
    col = {name: i for i, name in enumerate(header)}
    segments: dict[str, Segment] = {}
    access: dict[str, frozenset[str]] = {}
    for fields in rows:
        seg = Segment(fields[col["segment_id"]], fields[col["name"]], fields[col["description"]])
        segments[seg.id] = seg
        if "team_ids" in col:
            teams = _list(fields[col["team_ids"]], f"{where}: team_ids of {seg.id}")
            if teams:
                access[seg.id] = frozenset(teams)
    return segments, access


def parse_customers(text: str, where: str) -> tuple[dict[str, list[str]], bool]:
    """Customer id → segment ids, and whether the file is a delta (has a ``status`` column;
    its ``DELETE`` rows are left out of the mapping)."""
    header, rows = _rows(text, where, CUSTOMER_COLUMNS)
    col = {name: i for i, name in enumerate(header)}
    delta = "status" in col
    out: dict[str, list[str]] = {}
    for fields in rows:
        cid = fields[col["customer_id"]]
        if delta and fields[col["status"]] == "DELETE":
            continue
        segs = _list(fields[col["segments"]], f"{where}: segments of {cid}")
        if segs:
            out[cid] = segs
    return out, delta


def read_bytes(path: Path) -> str:
    """A feed file's text (gunzipped when its name ends in ``.gz``)."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ProviderError(f"cannot read the feed file {path}: {exc}") from exc


# -- publishing -------------------------------------------------------------------------------
def write_atomic(
    path: Path,
    lines: Iterable[str],
    *,
    compress: bool,
) -> None:
    """Write ``lines`` to ``path`` through a temporary file in the same directory, fsync it, and
    move it into place with one rename: a reader sees the old file or the new one, never half.

    A value the format cannot carry stops the write before anything is replaced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    for line in lines:
                        gz.write(line.encode("utf-8"))
            else:
                for line in lines:
                    raw.write(line.encode("utf-8"))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
