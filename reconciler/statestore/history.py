"""Segment sizes over time: each apply records, per target, how many members each managed
segment holds once it ends (what the platform acknowledged, read from the record itself), so
a plan can show the last applied sizes beside the new one and ``reconcile history`` can draw
them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from ._db import SEP, Database

__all__ = ["History", "SizeRecord"]


@dataclass(frozen=True, slots=True)
class SizeRecord:
    """One segment's members on one target at the end of one apply run (``status``: the run's
    outcome: ``ok``, ``failed``, ``interrupted``)."""

    target: str
    segment: str
    run_id: int
    at: float
    members: int
    status: str


class History(Database):
    """The ``sizes`` table of the state store."""

    def record_sizes(self, target: str, run_id: int) -> dict[str, int]:
        """Record the members of every segment the store manages on ``target``, as the run
        ``run_id`` leaves them; returns them. One pass over the distinct segment lists (a
        million customers hold a few hundred), not over the customers in Python."""
        with self._tx():
            managed = [
                r[0] for r in self._db.execute("SELECT id FROM segments WHERE target=?", (target,))
            ]
            counts: Counter[str] = Counter()
            rows = self._db.execute(
                "SELECT segments, COUNT(*) FROM links WHERE target=? GROUP BY segments",
                (target,),
            )
            for joined, n in rows:
                for seg in joined.split(SEP):
                    counts[seg] += n
            sizes = {seg: counts.get(seg, 0) for seg in sorted(managed)}
            now = time.time()
            self._db.executemany(
                "INSERT OR REPLACE INTO sizes(target, segment, run_id, at, members) "
                "VALUES (?,?,?,?,?)",
                [(target, seg, run_id, now, n) for seg, n in sizes.items()],
            )
        return sizes

    def sizes(
        self, target: str | None = None, segment: str | None = None, *, last: int | None = None
    ) -> list[SizeRecord]:
        """The recorded sizes, oldest first, of every target (or ``target``) and segment (or
        ``segment``); ``last``: only the ``last`` most recent of each target and segment."""
        where, params = ["1=1"], []
        if target is not None:
            where.append("s.target=?")
            params.append(target)
        if segment is not None:
            where.append("s.segment=?")
            params.append(segment)
        rows = self._db.execute(
            "SELECT s.target, s.segment, s.run_id, s.at, s.members, COALESCE(r.status, '') "
            "FROM sizes s LEFT JOIN runs r ON r.id = s.run_id "
            f"WHERE {' AND '.join(where)} ORDER BY s.target, s.segment, s.run_id",
            params,
        ).fetchall()
        records = [SizeRecord(*row) for row in rows]
        if last is None:
            return records
        kept: dict[tuple[str, str], list[SizeRecord]] = {}
        for rec in records:
            kept.setdefault((rec.target, rec.segment), []).append(rec)
        return [rec for recs in kept.values() for rec in recs[-last:]] if last > 0 else []

    def recent_sizes(self, target: str, last: int) -> dict[str, tuple[int, ...]]:
        """Segment → its ``last`` most recent recorded sizes on ``target``, oldest first."""
        recent: dict[str, tuple[int, ...]] = {}
        for rec in self.sizes(target, last=last):
            recent[rec.segment] = (*recent.get(rec.segment, ()), rec.members)
        return recent
