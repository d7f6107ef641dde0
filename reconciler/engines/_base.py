"""The engine interface: rules compiled per dialect, members evaluated where the data lives, and
the membership diff against a snapshot streamed back as Arrow record batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from ..config._rules import Rule, compile_rule
from ..exceptions import PlanError
from ._sql import SegmentRule, SqlDialect

__all__ = [
    "DELTA_SCHEMA",
    "MEMBERS_SCHEMA",
    "Delta",
    "DiffCounts",
    "Engine",
    "SourceRef",
]

MEMBERS_SCHEMA = pa.schema([("customer_id", pa.string()), ("segment_id", pa.string())])
DELTA_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("segment_id", pa.string()), ("op", pa.string())]
)


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


@dataclass(frozen=True, slots=True)
class DiffCounts:
    """The sizes an engine reports for one diff; :meth:`check` refuses inconsistent ones."""

    desired: int
    snapshot: int
    kept: int
    adds: int
    removes: int

    def problems(self) -> list[str]:
        out = []
        if self.desired - self.kept != self.adds:
            out.append(
                f"|desired| - |kept| = {self.desired} - {self.kept} = "
                f"{self.desired - self.kept}, but the anti-join found {self.adds} adds"
            )
        if self.snapshot - self.kept != self.removes:
            out.append(
                f"|snapshot| - |kept| = {self.snapshot} - {self.kept} = "
                f"{self.snapshot - self.kept}, but the anti-join found {self.removes} removes"
            )
        return out

    def check(self, engine: str) -> None:
        problems = self.problems()
        if problems:
            raise PlanError(
                f"engine {engine}: the membership diff does not add up, refusing to plan: "
                + "; ".join(problems)
            )


class Delta:
    """The changed memberships: exact counts, then the rows as Arrow record batches.

    The batches are produced lazily, adds first; iterating them re-counts every row and raises
    :class:`PlanError` at the end if the rows streamed disagree with :attr:`counts`.
    """

    def __init__(self, engine: str, counts: DiffCounts, batches: Iterator[pa.RecordBatch]) -> None:
        self.engine = engine
        self.counts = counts
        self._batches = batches

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        seen = {"add": 0, "remove": 0}
        for batch in self._batches:
            if batch.num_rows == 0:
                continue
            ops = batch.column(2)
            adds = pc.sum(pc.equal(ops, "add")).as_py() or 0
            seen["add"] += adds
            seen["remove"] += batch.num_rows - adds
            yield batch
        if seen["add"] != self.counts.adds or seen["remove"] != self.counts.removes:
            raise PlanError(
                f"engine {self.engine}: streamed {seen['add']} adds and {seen['remove']} removes, "
                f"but counted {self.counts.adds} and {self.counts.removes}; refusing to plan"
            )

    def to_table(self) -> pa.Table:
        """Everything at once (small deltas, tests)."""
        return pa.Table.from_batches(list(self), schema=DELTA_SCHEMA)


class Engine(ABC):
    """Where rules run: compile per dialect, evaluate members, diff against a snapshot."""

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

    @abstractmethod
    def diff(
        self,
        source: SourceRef,
        segments: Sequence[SegmentRule],
        snapshot: str | Path,
        *,
        batch_rows: int = 65536,
    ) -> Delta:
        """The delta from ``snapshot`` (last confirmed pairs) to the members now.

        Counts are computed and cross-checked before anything streams (:class:`PlanError` when
        they disagree); ``(customer_id, segment_id, op)`` rows follow, ``op`` is add or remove.
        """

    @abstractmethod
    def commit_snapshot(
        self, snapshot: str | Path, acknowledged: pa.Table, *, rejected: pa.Table | None = None
    ) -> None:
        """Fold the writes the platform ACKNOWLEDGED (a delta table) into ``snapshot``.

        Rejected rows never enter it, so the next diff proposes them again; they are kept apart
        (``<snapshot>.rejected.parquet``) for the report.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
