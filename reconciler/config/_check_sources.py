"""The semantic checks of the ``spark`` and ``customer_sources`` sections: each source's file or
Spark table and its columns (a Snowflake table's are :mod:`._check_snowflake`'s).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import duckdb

from ..engines.readers import describe, source_format
from ..exceptions import PlanError
from ._analyser import first_line, read_error
from ._check_snowflake import SnowflakeChecks
from ._limits import file_kind
from ._locations import NodePath, format_path
from ._model import CustomerSource, SparkSettings
from ._sources import bounded, reach, spark_engine

if TYPE_CHECKING:
    from ..engines import SparkEngine

__all__ = ["SourceChecks"]


SourceFormat = Literal["csv", "jsonl", "parquet"]


def _is_uri(text: str) -> bool:
    """``scheme://…`` (``s3a://``, ``gs://``, ``hdfs://``, ``file://``), not a local path."""
    scheme = urlsplit(text).scheme
    return "://" in text and len(scheme) > 1


class SourceChecks(SnowflakeChecks):
    """The ``spark`` and ``customer_sources`` sections."""

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
                why = first_line(exc)
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
            message = first_line(exc).removeprefix("engine spark: ")
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
        engine: Literal["duckdb", "spark", "snowflake"],
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
            if raw.get("engine") == "snowflake":
                found = self.snowflake_source(name, raw, node)
                if found is not None:
                    out[name] = self._with_columns(
                        name, raw, node, found[0], None, None, found[1], "snowflake"
                    )
                continue
            if "table" in raw:
                self.report(
                    (*node, "table"),
                    "a table needs engine: spark or snowflake (DuckDB reads files: give a path)",
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
                self.report((*node, "path"), read_error(raw["path"], exc))
                continue
            out[name] = self._with_columns(name, raw, node, columns, path, fmt, None, "duckdb")
        return out
