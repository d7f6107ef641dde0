"""Layer two: semantic checks over schema-valid data, and building the :class:`Config`.

Checks run on every part of the document that passed the schema (a segment with a schema error is
skipped here, the rest is still checked), so one run reports every problem it can find.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import duckdb

from ..engines.readers import csv_error, describe, describe_csv_columns, source_format
from ..exceptions import ConfigError, PatternError, PlanError, Problem
from ..rules import check_pattern, check_rule, parse_rule
from ._model import (
    Config,
    CustomerSource,
    MemberFile,
    Members,
    RemovedConfig,
    Safety,
    SegmentConfig,
    Selection,
    SourceRule,
    SparkSettings,
    TargetConfig,
)
from ._schema import validate_branch
from ._secrets import env_var
from ._sources import bounded, in_background, reach, spark_engine
from ._targets import TARGET_TYPES as TARGET_KINDS
from ._targets import TargetType, branch, target_type
from ._yaml import Document, NodePath, file_kind, format_path

if TYPE_CHECKING:
    from ..engines import SparkEngine

__all__ = ["analyse"]

SourceFormat = Literal["csv", "jsonl", "parquet"]


def url_problem(text: str) -> str | None:
    """Why ``text`` cannot be a target's API URL (None when it can): it must be ``http(s)://``
    with a host and a valid port, and carry no credentials (``user:password@``), which must
    come from environment variables instead. The message never echoes the URL."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        message = str(exc)
        if "Port" in message or "port" in message:
            return "the port is not a number from 1 to 65535"
        return f"not a valid URL ({message})"
    if parts.username is not None or parts.password is not None:
        return (
            "credentials must be an ${ENV_VAR} reference in the credential fields, "
            "not part of the URL (user:password@)"
        )
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "no host in the URL"
    if port == 0:
        return "the port is not a number from 1 to 65535"
    return None


def _is_uri(text: str) -> bool:
    """``scheme://…`` (``s3a://``, ``gs://``, ``hdfs://``, ``file://``), not a local path."""
    scheme = urlsplit(text).scheme
    return "://" in text and len(scheme) > 1


class _Analyser:
    def __init__(self, doc: Document, schema_errors: Iterable[NodePath]) -> None:
        self.doc = doc
        self.file = str(doc.path)
        self.base = doc.path.parent
        self.problems: list[Problem] = []
        self.invalid = [tuple(p) for p in schema_errors]
        self._con: duckdb.DuckDBPyConnection | None = None
        self.referenced: set[Path] = set()
        #: the Spark section (None when the schema rejected it)
        self.spark_settings: SparkSettings | None = SparkSettings()
        #: the Spark engine once started, or why it could not be
        self._spark: tuple[SparkEngine | None, str] | None = None
        self.uses_spark = False

    # --- helpers ---------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = duckdb.connect(":memory:")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()

    def report(self, path: NodePath, message: str) -> None:
        line, col = self.doc.locations.of(path)
        self.problems.append(Problem(self.file, line, col, format_path(path), message))

    def bad(self, path: NodePath) -> bool:
        """Whether the schema found a problem at, inside or above ``path``."""
        n = len(path)
        return any(p[:n] == path or path[: len(p)] == p for p in self.invalid)

    def resolve_path(self, text: str) -> Path:
        p = Path(text)
        return p if p.is_absolute() else (self.base / p)

    def confined(self, text: str, node: NodePath, outside: bool, opt_out: str) -> Path | None:
        """``text`` resolved against the YAML's folder, or None (reported) when it leads out of
        that folder, symlinks included, and the config did not opt out for this path
        (``outside: true``); ``opt_out`` says how to."""
        path = self.resolve_path(text)
        if outside:
            return path
        base = Path(os.path.realpath(self.base))
        try:
            real = Path(os.path.realpath(path))
        except OSError as exc:  # a symlink loop
            self.report(node, f"cannot resolve {text}: {exc.strerror or exc}")
            return None
        if real == base or real.is_relative_to(base):
            return path
        lexical = Path(os.path.normpath(path))
        via = " through a symlink" if lexical.is_relative_to(os.path.normpath(self.base)) else ""
        self.report(
            node,
            f"{text} resolves{via} outside the config's folder; to allow it, {opt_out}",
        )
        return None

    def data_file(self, text: str, node: NodePath, outside: bool, opt_out: str) -> Path | None:
        """A file the config reads (member file, customer source): confined (see
        :meth:`confined`) and a regular file, never a FIFO or a device that would block or
        never end (None, reported, otherwise)."""
        path = self.confined(text, node, outside, opt_out)
        if path is None:
            return None
        try:
            mode = path.stat().st_mode
        except OSError:
            self.report(node, f"file not found: {text}")
            return None
        kind = file_kind(mode)
        if kind is not None:
            self.report(node, f"{text} is {kind}, not a regular file")
            return None
        return path

    def check_regex(self, pattern: str) -> str | None:
        try:
            self.con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            return str(exc).split(": ", 1)[-1].splitlines()[0]
        try:
            check_pattern(pattern)
        except PatternError as exc:
            return f"not portable across engines: {exc}"
        return None

    # --- sections --------------------------------------------------------------------------

    def targets(self, data: Mapping[str, Any]) -> dict[str, TargetConfig]:
        out: dict[str, TargetConfig] = {}
        for name, raw in data.items():
            node: NodePath = ("targets", name)
            if self.bad(node) or not isinstance(raw, Mapping):
                continue
            ttype = self.target_type(node, raw)
            if ttype is None:
                continue
            settings: dict[str, Any] = {}
            for key, default in ttype.settings.items():
                value = raw.get(key, default)
                if key in ttype.paths and value is not None:
                    text, outside = (
                        (value, False)
                        if isinstance(value, str)
                        else (value["path"], bool(value.get("outside_config_dir", False)))
                    )
                    pnode = (*node, key) if isinstance(value, str) else (*node, key, "path")
                    value = self.confined(
                        text,
                        pnode,
                        outside,
                        f"write {key}: {{path: {text}, outside_config_dir: true}}",
                    )
                if isinstance(value, str) and key in ttype.urls:
                    why = url_problem(value)
                    if why is not None:
                        self.report((*node, key), why)
                    value = value.rstrip("/")
                settings[key] = value
            credentials = {
                field: env_var(raw[field]) for field in ttype.credentials if field in raw
            }
            safety_raw = raw.get("safety") or {}
            out[name] = TargetConfig(
                name=name,
                type=ttype.name,
                settings=MappingProxyType(settings),
                credentials=MappingProxyType(credentials),
                prune=bool(raw.get("prune", False)),
                prune_prefix=raw.get("prune_prefix"),
                safety=Safety(
                    max_delete_share=float(safety_raw.get("max_delete_share", 0.30)),
                    min_existing=int(safety_raw.get("min_existing", 10)),
                ),
            )
        return out

    def target_type(self, node: NodePath, raw: Mapping[str, Any]) -> TargetType | None:
        """The type of the target at ``node``, from its provider's declaration; a type named
        by dotted path is imported here and the target checked against its declared settings
        (None, reported at the field, when it cannot be)."""
        name = str(raw["type"])
        try:
            ttype = target_type(name)
            problems = [] if name in TARGET_KINDS else self._check_branch(node, raw, name)
        except ConfigError as exc:
            self.report((*node, "type"), exc.problems[0].message)
            return None
        self.problems.extend(problems)
        return None if problems else ttype

    def _check_branch(self, node: NodePath, raw: Mapping[str, Any], name: str) -> list[Problem]:
        found = validate_branch(branch(name), raw, node, self.doc.locations, self.file)
        return [problem for _, problem in found]

    def spark(self, raw: Any) -> None:
        """The top-level ``spark`` section (its defaults when absent)."""
        if raw is None:
            return
        if self.bad(("spark",)) or not isinstance(raw, Mapping):
            self.spark_settings = None
            return
        conf = {
            str(k): ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in (raw.get("conf") or {}).items()
        }
        self.spark_settings = SparkSettings(
            master=str(raw.get("master", "local[*]")),
            conf=MappingProxyType(conf),
            timeout=float(raw.get("timeout", 10.0)),
            snapshot=self._snapshot_location(raw.get("snapshot")),
        )

    def _snapshot_location(self, raw: Any) -> str | None:
        """``spark.snapshot``: a URI as written, a path resolved against the YAML's folder."""
        if raw is None:
            return None
        text = str(raw)
        if "://" in text:
            return text
        return str(self.resolve_path(text))

    def spark_engine(self) -> tuple[SparkEngine | None, str]:
        """The Spark engine (started once per validation), or why there is none."""
        if self._spark is not None:
            return self._spark
        settings = self.spark_settings
        assert settings is not None
        where = "spark.master"
        if "spark" in (self.doc.data if isinstance(self.doc.data, Mapping) else {}):
            where += f", line {self.doc.locations.of(('spark', 'master'))[0]}"
        engine: SparkEngine | None = None
        why = ""
        if importlib.util.find_spec("pyspark") is None:
            why = "engine spark needs pyspark: pip install 'audience-reconciler[spark]'"
        elif settings.remote and (err := reach(settings.master, settings.timeout)) is not None:
            why = f"cannot reach the Spark master {settings.master} ({where}): {err}"
        else:
            try:
                engine = bounded(
                    lambda: spark_engine(settings), settings.timeout if settings.remote else None
                )
            except TimeoutError:
                why = (
                    f"the Spark master {settings.master} ({where}) did not answer within "
                    f"{settings.timeout:g} s"
                )
            except PlanError as exc:
                why = _first_line(exc)
        self._spark = (engine, why)
        return self._spark

    def spark_source(
        self, name: str, raw: Mapping[str, Any], node: NodePath
    ) -> CustomerSource | None:
        """A source read by Spark: the session is started and the table or path described."""
        settings = self.spark_settings
        if settings is None:  # the spark section has a schema error, already reported
            return None
        self.uses_spark = True
        path: Path | None = None
        uri: str | None = None
        fmt: str | None = None
        table: str | None = raw.get("table")
        if table is None and _is_uri(raw["path"]):
            uri = raw["path"]
            fmt = raw.get("format") or source_format(Path(urlsplit(uri).path)) or "parquet"
        elif table is None:
            confined = self.confined(
                raw["path"],
                (*node, "path"),
                bool(raw.get("outside_config_dir", False)),
                f"add outside_config_dir: true to {format_path(node)}",
            )
            if confined is None:
                return None
            path = confined
            fmt = raw.get("format") or source_format(path) or "parquet"
            if not settings.remote and not path.exists():
                self.report((*node, "path"), f"file or folder not found: {raw['path']}")
                return None
            if path.exists() and not path.is_dir():
                kind = file_kind(path.stat().st_mode)
                if kind is not None:
                    self.report((*node, "path"), f"{raw['path']} is {kind}, not a regular file")
                    return None
                self.referenced.add(path)
        engine, why = self.spark_engine()
        if engine is None:
            self.report((*node, "engine"), why)
            return None
        from ..engines import SourceRef

        ref = SourceRef(
            name,
            raw["id_column"],
            {},
            path=path,
            format=cast(SourceFormat, fmt),
            table=table,
            uri=uri,
        )
        field = "table" if table is not None else "path"
        what = f"table {table!r}" if table is not None else str(raw["path"])
        try:
            columns = bounded(
                lambda: engine.describe(ref), settings.timeout if settings.remote else None
            )
        except TimeoutError:
            self.report(
                (*node, field),
                f"cannot read {what}: the Spark master {settings.master} did not answer within "
                f"{settings.timeout:g} s",
            )
            return None
        except PlanError as exc:
            message = _first_line(exc).removeprefix("engine spark: ")
            message = message.removeprefix(f"cannot read {table or uri or path}: ")
            self.report((*node, field), f"cannot read {what} on Spark: {message}")
            return None
        return self._with_columns(name, raw, node, columns, path, fmt, table, "spark", uri)

    def _with_columns(
        self,
        name: str,
        raw: Mapping[str, Any],
        node: NodePath,
        columns: dict[str, str],
        path: Path | None,
        fmt: str | None,
        table: str | None,
        engine: Literal["duckdb", "spark"],
        uri: str | None = None,
    ) -> CustomerSource | None:
        id_column = raw["id_column"]
        if id_column not in columns:
            close = difflib.get_close_matches(id_column, list(columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = raw["path"] if table is None else f"table {table!r}"
            self.report((*node, "id_column"), f"column {id_column!r} not found in {where}{hint}")
            return None
        columns[id_column] = "VARCHAR"
        return CustomerSource(
            name=name,
            path=path,
            format=cast(SourceFormat | None, fmt),
            id_column=id_column,
            columns=MappingProxyType(columns),
            node=node,
            engine=engine,
            table=table,
            uri=uri,
        )

    def sources(self, data: Mapping[str, Any]) -> dict[str, CustomerSource | None]:
        """Every declared source; None for one that is declared but unusable (already reported)."""
        out: dict[str, CustomerSource | None] = {}
        for name, raw in data.items():
            node: NodePath = ("customer_sources", name)
            out[name] = None
            if self.bad(node) or not isinstance(raw, Mapping):
                continue
            if "table" in raw and "format" in raw:
                self.report((*node, "format"), "format applies to a path, not a table")
                continue
            if raw.get("engine", "duckdb") == "spark":
                out[name] = self.spark_source(name, raw, node)
                continue
            if "table" in raw:
                self.report(
                    (*node, "table"),
                    "a table needs engine: spark (DuckDB reads files: give a path)",
                )
                continue
            if _is_uri(raw["path"]):
                self.report(
                    (*node, "path"),
                    "a URI needs engine: spark (DuckDB reads local files: give a path)",
                )
                continue
            fmt = raw.get("format") or source_format(Path(raw["path"]))
            if fmt is None:
                self.report(
                    (*node, "path"),
                    f"cannot tell the format of {raw['path']!r} from its name; "
                    "add format: csv, jsonl or parquet",
                )
                continue
            path = self.data_file(
                raw["path"],
                (*node, "path"),
                bool(raw.get("outside_config_dir", False)),
                f"add outside_config_dir: true to {format_path(node)}",
            )
            if path is None:
                continue
            self.referenced.add(path)
            try:
                columns = describe(self.con, path, fmt)
            except duckdb.Error as exc:
                self.report((*node, "path"), _read_error(raw["path"], exc))
                continue
            out[name] = self._with_columns(name, raw, node, columns, path, fmt, None, "duckdb")
        return out

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
                    self.report(pnode, _read_error(text, exc))
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


def _read_error(display: str, exc: duckdb.Error) -> str:
    """``file:line: reason`` for a malformed CSV row, else ``cannot read file: …``."""
    row = csv_error(exc)
    if row is not None:
        return f"{display}:{row[1]}: {row[2]}"
    return f"cannot read {display}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _digest(raw: bytes, files: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    h.update(b"audiences.yaml\0")
    h.update(raw)

    def key(p: Path) -> str:
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return p.as_posix()

    for path in sorted(files, key=key):
        h.update(b"\0" + key(path).encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


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
    finally:
        an.close()

    problems = [p for _, p in schema_problems] + an.problems
    if problems:
        raise ConfigError(problems)
    return Config(
        path=doc.path,
        digest_future=in_background(
            functools.partial(_digest, doc.raw, list(an.referenced), doc.path.parent),
            "config-digest",
        ),
        version=int(data["version"]),
        targets=MappingProxyType(targets),
        access_lists=MappingProxyType(access_lists),
        customer_sources=MappingProxyType({k: v for k, v in sources.items() if v is not None}),
        segments=tuple(segments),
        removed=tuple(removed),
        locations=doc.locations,
        spark=an.spark_settings if an.uses_spark or "spark" in data else None,
    )
