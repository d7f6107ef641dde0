"""The run journal: every apply run and every batch it sent, with its outcome."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._db import Database

__all__ = ["Journal", "RunRecord", "StepRecord"]

#: the statuses of a run that did not end by itself: the process died (``running``, until the
#: next apply on the target closes it) or it was stopped
UNFINISHED = ("running", "interrupted")


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
    #: what the run reported at its end (applied, failed, requests, retries, unsent)
    summary: dict[str, object] | None = None

    @property
    def unfinished(self) -> bool:
        """The run did not end by itself (its process died, or it was stopped)."""
        return self.finished is None or self.status in UNFINISHED


@dataclass(frozen=True, slots=True)
class StepRecord:
    """The batches a run sent in one step (a phase and action), added up."""

    step: str
    batches: int
    size: int
    ok: int
    failed: int
    first: float
    last: float


def _run(*row: Any) -> RunRecord:
    """A row of :meth:`Journal._runs` as a record (the summary decoded)."""
    run_id, target, digest, started, finished, status, batches, ok, failed, summary = row
    decoded = json.loads(summary) if summary else None
    return RunRecord(
        run_id, target, digest, started, finished, status, batches, ok, failed, decoded
    )


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
        return self._runs("WHERE r.target=? GROUP BY r.id ORDER BY r.id", (target,))

    def _runs(self, where: str, params: tuple[object, ...]) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT r.id, r.target, r.plan_digest, r.started, r.finished, r.status, "
            "COUNT(b.seq), COALESCE(SUM(b.ok), 0), COALESCE(SUM(b.failed), 0), r.summary "
            f"FROM runs r LEFT JOIN batches b ON b.run_id = r.id {where}",
            params,
        )
        return [_run(*row) for row in rows]

    def recent_runs(self, targets: list[str] | None = None, limit: int = 20) -> list[RunRecord]:
        """The ``limit`` latest runs (of ``targets``, or all), those that did not end by
        themselves first, then newest first."""
        names = sorted(set(targets)) if targets else []
        where = f"WHERE r.target IN ({','.join('?' * len(names))})" if names else ""
        return self._runs(
            f"{where} GROUP BY r.id ORDER BY (r.finished IS NULL OR r.status IN "
            f"({','.join('?' * len(UNFINISHED))})) DESC, r.id DESC LIMIT ?",
            (*names, *UNFINISHED, limit),
        )

    def last_run(self, target: str) -> RunRecord | None:
        found = self._runs("WHERE r.target=? GROUP BY r.id ORDER BY r.id DESC LIMIT 1", (target,))
        return found[0] if found else None

    def run_steps(self, run_id: int) -> list[StepRecord]:
        """The batches of run ``run_id``, added up per step, in the order first sent."""
        rows = self._db.execute(
            "SELECT step, COUNT(*), SUM(size), SUM(ok), SUM(failed), MIN(at), MAX(at) "
            "FROM batches WHERE run_id=? GROUP BY step ORDER BY MIN(seq)",
            (run_id,),
        )
        return [StepRecord(*row) for row in rows]

    def prune_journal(self, before: float) -> tuple[int, int]:
        """Forget the runs that ended before ``before`` (a Unix time) and their batches; a
        target's latest run and a run that never ended stay. Returns (runs, batches) removed."""
        with self._tx():
            doomed = (
                "SELECT id FROM runs WHERE finished IS NOT NULL AND finished < ? "
                "AND id NOT IN (SELECT MAX(id) FROM runs GROUP BY target)"
            )
            batches = self._db.execute(
                f"DELETE FROM batches WHERE run_id IN ({doomed})", (before,)
            ).rowcount
            runs = self._db.execute(f"DELETE FROM runs WHERE id IN ({doomed})", (before,)).rowcount
        return runs, batches

    def close_interrupted(self, target: str) -> None:
        self._journal(
            "UPDATE runs SET status='interrupted', finished=? WHERE target=? AND finished IS NULL",
            (time.time(), target),
        )
