"""The engine interface: rules compiled per dialect and members evaluated where the data lives,
streamed back as Arrow record batches. The membership diff against the last-applied snapshot
is :mod:`reconciler.membership`'s."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from ..rules import Rule, SegmentRule, SqlDialect, compile_rule

__all__ = ["MEMBERS_SCHEMA", "Engine", "SourceRef"]

MEMBERS_SCHEMA = pa.schema([("customer_id", pa.string()), ("segment_id", pa.string())])


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a customer source lives for an engine: a local file or folder (``path``), a URI
    that Spark reads (``uri``: ``s3a://…``, ``gs://…``, ``hdfs://…``, ``file://…``) or a table
    (``table``)."""

    name: str
    id_column: str
    #: column name → DuckDB type name (the canonical kinds the rule checker reads)
    columns: Mapping[str, str]
    path: Path | None = None
    format: Literal["csv", "jsonl", "parquet"] | None = None
    table: str | None = None
    uri: str | None = None

    def __post_init__(self) -> None:
        if [self.path, self.uri, self.table].count(None) != 2:
            raise ValueError("a source has exactly one of path, uri and table")

    @property
    def location(self) -> str:
        """The path or URI, as text (a table has none)."""
        return self.uri if self.uri is not None else str(self.path)


class Engine(ABC):
    """Where members are computed: describe a source, compile rules to its dialect, evaluate
    every segment's members in one scan."""

    dialect: SqlDialect

    @property
    def name(self) -> str:
        return self.dialect.name

    def compile(self, rule: Rule, columns: Mapping[str, str]) -> tuple[str, list[Any]]:
        """One never-null predicate in this engine's dialect, and its parameters."""
        return compile_rule(rule, columns, self.dialect.rules)

    @abstractmethod
    def describe(self, source: SourceRef) -> dict[str, str]:
        """Column name → DuckDB type name of ``source`` (its columns may be empty)."""

    @abstractmethod
    def members(
        self, source: SourceRef, segments: Sequence[SegmentRule], *, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """``(customer_id, segment_id)`` of every segment's members, as record batches."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
