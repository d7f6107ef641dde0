"""The last-applied snapshot as DuckDB reads it, for every engine's diff: a connection to the
process's bounded DuckDB database (:mod:`reconciler.engines.memory`: it spills to a temporary
folder beyond :data:`MEMORY_LIMIT`) holding the view ``last(customer_id, known, segments)``, the
file overlaid by the customers changed since it was written."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from ..engines import memory
from ..engines.memory import MEMORY_LIMIT
from ..engines.readers import sql_string, temp_table
from ..statestore import Snapshot
from .diff import Row

__all__ = ["MEMORY_LIMIT", "LastApplied", "unreadable"]


def _overlay_table(con: Any, overlay: Mapping[str, Row]) -> None:
    temp_table(
        con,
        "_overlay",
        {
            "customer_id": ("VARCHAR", list(overlay)),
            "known": ("BOOLEAN", [k for k, _ in overlay.values()]),
            "segments": ("VARCHAR", [s for _, s in overlay.values()]),
        },
    )


class LastApplied:
    """A DuckDB connection for one target's diff (:attr:`con`), and the snapshot read in it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        # bounded: beyond the limit DuckDB spills to disk, so memory does not grow with the table
        self.con = memory.connect()

    @property
    def _file(self) -> str:
        return f"read_parquet({sql_string(str(self.snapshot.path))})"

    def frame(self) -> None:
        """The view ``last(customer_id, known, segments)``: the snapshot file overlaid by the
        customers changed since it was written (the file alone when none has: a third faster
        to join than through an empty overlay)."""
        if not self.snapshot.overlay:
            self.con.execute(f"CREATE TEMP VIEW last AS SELECT * FROM {self._file}")
            return
        _overlay_table(self.con, self.snapshot.overlay)
        self.con.execute(
            "CREATE TEMP VIEW last AS "
            f"SELECT * FROM {self._file} AS f WHERE NOT EXISTS "
            "(SELECT 1 FROM _overlay AS o WHERE o.customer_id = f.customer_id) "
            "UNION ALL SELECT * FROM _overlay WHERE known OR segments <> ''"
        )

    def hidden(self) -> list[tuple[str, bool, str]]:
        """The snapshot file's own rows of the customers the overlay hides (for the sums)."""
        if not self.snapshot.overlay:
            return []
        rows: list[tuple[str, bool, str]] = self.con.execute(
            f"SELECT f.customer_id, f.known, f.segments FROM {self._file} AS f "
            "SEMI JOIN _overlay AS o ON o.customer_id = f.customer_id"
        ).fetchall()
        return rows

    def close(self) -> None:
        self.con.close()


def unreadable(path: Path) -> str:
    """Why the snapshot file cannot be read in full ('' when it can): asked only once a
    diff failed, so a plan never pays for it."""
    con = memory.connect()
    try:
        con.execute(
            "SELECT count(*), min(customer_id), bool_and(known), min(segments) "
            f"FROM read_parquet({sql_string(str(path))})"
        ).fetchall()
    except duckdb.Error as exc:  # DuckDB names the file: the message around it does already
        return str(exc).splitlines()[0].replace(f" '{path}'", "")
    finally:
        con.close()
    return ""
