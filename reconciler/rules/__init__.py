"""The rule language: membership rules parsed from YAML data, type-checked against a source's
columns, and compiled to one parameterised predicate per dialect (DuckDB, Spark, Snowflake,
BigQuery), with regular expressions re-spelled per regex flavour.

A leaf: it imports neither the configuration (:mod:`reconciler.config`, which parses rules out
of ``audiences.yaml``) nor the engines (:mod:`reconciler.engines`, which run the compiled SQL).

::

    rule = parse_rule(data, node, report)          # Rule | None (problems go to report)
    check_rule(rule, columns, report)              # attributes and types against a source
    where, params = compile_rule(rule, columns, SPARK)
    members_query(SNOWFLAKE, "shop.customers", "customer_id", columns, segments)
"""

from __future__ import annotations

from ..exceptions import PatternError
from .language import (
    COMBINATORS,
    DUCKDB,
    OPERATORS,
    SPARK,
    AllOf,
    AnyOf,
    Compare,
    Dialect,
    NodePath,
    Not,
    Rule,
    attributes,
    check_rule,
    column_kind,
    compile_rule,
    parse_rule,
    render_rule,
)
from .patterns import FLAVORS, Flavor, check_pattern, render_pattern
from .sql import (
    BIGQUERY,
    DIALECTS,
    DUCKDB_SQL,
    SNOWFLAKE,
    SPARK_SQL,
    Query,
    SegmentRule,
    SqlDialect,
    members_query,
)

__all__ = [
    "BIGQUERY",
    "COMBINATORS",
    "DIALECTS",
    "DUCKDB",
    "DUCKDB_SQL",
    "FLAVORS",
    "OPERATORS",
    "SNOWFLAKE",
    "SPARK",
    "SPARK_SQL",
    "AllOf",
    "AnyOf",
    "Compare",
    "Dialect",
    "Flavor",
    "NodePath",
    "Not",
    "PatternError",
    "Query",
    "Rule",
    "SegmentRule",
    "SqlDialect",
    "attributes",
    "check_pattern",
    "check_rule",
    "column_kind",
    "compile_rule",
    "members_query",
    "parse_rule",
    "render_pattern",
    "render_rule",
]
