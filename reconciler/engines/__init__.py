"""Engines: where membership rules and the membership diff run.

::

    with DuckDBEngine() as engine:                       # the embedded default
        delta = engine.diff(source, segment_rules, ".reconcile/snapshots/epsilon.parquet")
        delta.counts                                     # cross-checked: refuses if inconsistent
        for batch in delta:                              # Arrow record batches: customer_id,
            ...                                          # segment_id, op (add | remove)
        engine.commit_snapshot(snapshot, acknowledged)   # only what the platform confirmed

``SparkEngine("local[*]")`` or ``SparkEngine("sc://host:15002")`` runs the same SQL on Spark
(pyspark is the ``spark`` extra); :func:`compile_diff` and :func:`compile_members` give the same
statements for Snowflake and BigQuery (sqlglot is the ``warehouse`` extra).
"""

from __future__ import annotations

from ._base import DELTA_SCHEMA, MEMBERS_SCHEMA, Delta, DiffCounts, Engine, SourceRef
from ._duckdb import DuckDBEngine
from ._spark import SparkEngine
from ._sql import BIGQUERY, DIALECTS, DUCKDB_SQL, SNOWFLAKE, SPARK_SQL, Query, SegmentRule
from ._warehouse import WarehouseScript, compile_diff, compile_members

__all__ = [
    "BIGQUERY",
    "DELTA_SCHEMA",
    "DIALECTS",
    "DUCKDB_SQL",
    "MEMBERS_SCHEMA",
    "SNOWFLAKE",
    "SPARK_SQL",
    "Delta",
    "DiffCounts",
    "DuckDBEngine",
    "Engine",
    "Query",
    "SegmentRule",
    "SourceRef",
    "SparkEngine",
    "WarehouseScript",
    "compile_diff",
    "compile_members",
]
