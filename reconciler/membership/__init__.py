"""The membership diff: a target's desired members against the snapshot of what was last
applied, one contract (:class:`MembershipDiff`) implemented per engine (:class:`DuckDBDiff`, the
default; :class:`SparkDiff`, where the members live in Spark; :class:`SnowflakeDiff`, where they
live in Snowflake), and the shared steps around it
(the snapshot read in DuckDB, the sample, the live read, the fingerprint correction).

::

    found = await membership_inputs(config, "epsilon", provider, snapshot, managed=ids)
    desired, remote, overview = found     # or None: reading everyone costs no more requests
"""

from __future__ import annotations

from .desired import Wanted, desired_table
from .diff import DiffRows, MembershipDiff
from .duckdb import DuckDBDiff
from .inputs import membership_diff, membership_inputs
from .snowflake import SnowflakeDiff
from .spark import SparkDiff

__all__ = [
    "DiffRows",
    "DuckDBDiff",
    "MembershipDiff",
    "SnowflakeDiff",
    "SparkDiff",
    "Wanted",
    "desired_table",
    "membership_diff",
    "membership_inputs",
]
