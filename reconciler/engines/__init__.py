"""Engines: where members are computed (a source described, its rules compiled to the engine's
dialect and evaluated in one scan, the members streamed back as Arrow record batches).

::

    with DuckDBEngine() as engine:                       # the embedded default
        for batch in engine.members(source, segment_rules):
            ...                                          # customer_id, segment_id

``SparkEngine("local[*]")`` or ``SparkEngine("sc://host:15002")`` runs the same SQL on Spark
(pyspark is the ``spark`` extra), ``SnowflakeEngine(connect_args)`` on Snowflake (the
``warehouse`` extra); :func:`compile_members` gives the same statement for
Snowflake and BigQuery (sqlglot is the ``warehouse`` extra). :mod:`.readers` spells DuckDB's
readers of CSV, JSON lines and Parquet files.

Names are imported on first use: the engines import pyarrow, which a command that computes no
members (or only reads a file) does not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..rules import BIGQUERY, DIALECTS, DUCKDB_SQL, SNOWFLAKE, SPARK_SQL, Query, SegmentRule
    from ._base import MEMBERS_SCHEMA, Engine, SourceRef
    from ._duckdb import DuckDBEngine
    from ._snowflake import SnowflakeEngine
    from ._spark import SparkEngine
    from ._warehouse import compile_members

_EXPORTS: dict[str, str] = {
    "BIGQUERY": "reconciler.rules",
    "DIALECTS": "reconciler.rules",
    "DUCKDB_SQL": "reconciler.rules",
    "SNOWFLAKE": "reconciler.rules",
    "SPARK_SQL": "reconciler.rules",
    "Query": "reconciler.rules",
    "SegmentRule": "reconciler.rules",
    "MEMBERS_SCHEMA": "reconciler.engines._base",
    "Engine": "reconciler.engines._base",
    "SourceRef": "reconciler.engines._base",
    "DuckDBEngine": "reconciler.engines._duckdb",
    "SnowflakeEngine": "reconciler.engines._snowflake",
    "SparkEngine": "reconciler.engines._spark",
    "compile_members": "reconciler.engines._warehouse",
}

__all__ = [
    "BIGQUERY",
    "DIALECTS",
    "DUCKDB_SQL",
    "MEMBERS_SCHEMA",
    "SNOWFLAKE",
    "SPARK_SQL",
    "DuckDBEngine",
    "Engine",
    "Query",
    "SegmentRule",
    "SnowflakeEngine",
    "SourceRef",
    "SparkEngine",
    "compile_members",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler.engines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
