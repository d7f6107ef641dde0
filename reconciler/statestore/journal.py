"""The run journal: every apply run and every batch it sent, with its outcome."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ._db import Database

__all__ = ["Journal", "RunRecord"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    target: str
    plan_digest: str
    started: float
    finished: float | None
    status: str
    batches: int
    items_ok: int
    items_failed: int


class Journal(Database):
    """The runs and batches tables of the state store."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._seq: dict[int, int] = {}

    def start_run(self, target: str, plan_digest: str) -> int:
        cur = self._journal(
            "INSERT INTO runs(target, plan_digest, started, status) VALUES (?,?,?, 'running')",
            (target, plan_digest, time.time()),
        )
        run_id = int(cur.lastrowid or 0)
        self._seq[run_id] = 0
        return run_id

    def record_batch(self, run_id: int, step: str, size: int, ok: int, failed: int) -> None:
        self._seq[run_id] = seq = self._seq.get(run_id, 0) + 1
        self._journal(
            "INSERT INTO batches(run_id, seq, step, size, ok, failed, at) VALUES (?,?,?,?,?,?,?)",
            (run_id, seq, step, size, ok, failed, time.time()),
        )

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        self._journal(
            "UPDATE runs SET finished=?, status=?, summary=? WHERE id=?",
            (time.time(), status, json.dumps(summary, sort_keys=True), run_id),
        )

    def interrupted_runs(self, target: str) -> list[RunRecord]:
        """Runs on ``target`` that started and never finished (the process died)."""
        return [r for r in self.runs(target) if r.finished is None]

    def runs(self, target: str) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT r.id, r.target, r.plan_digest, r.started, r.finished, r.status, "
            "COUNT(b.seq), COALESCE(SUM(b.ok), 0), COALESCE(SUM(b.failed), 0) "
            "FROM runs r LEFT JOIN batches b ON b.run_id = r.id WHERE r.target=? "
            "GROUP BY r.id ORDER BY r.id",
            (target,),
        )
        return [RunRecord(*row) for row in rows]

    def close_interrupted(self, target: str) -> None:
        self._journal(
            "UPDATE runs SET status='interrupted', finished=? WHERE target=? AND finished IS NULL",
            (time.time(), target),
        )
