"""What the state store holds, read for people: each target's counts and last run, and a
segment's recorded fields (``reconcile state list`` and ``show`` format these values)."""

from __future__ import annotations

from dataclasses import dataclass

from ._db import SEP, Database
from .journal import Journal, RunRecord

__all__ = ["Inspection", "SegmentRecord", "TargetSummary"]

#: the tables that hold something of a target (a target the journal alone knows is listed too)
_TARGET_TABLES = ("segments", "customers", "links", "snapshots", "runs")


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One segment as last applied: its fields, access list and members."""

    target: str
    id: str
    name: str
    description: str
    prevent_destroy: bool
    #: the teams given access (None: no access list recorded)
    access: tuple[str, ...] | None
    members: int
    #: when it was last recorded (None: by a release that did not note it)
    updated: float | None


@dataclass(frozen=True, slots=True)
class TargetSummary:
    """What the state store holds of one target."""

    target: str
    segments: tuple[str, ...]
    customers: int
    links: int
    last_run: RunRecord | None


class Inspection(Journal, Database):
    """Read-only views of the record, for a person or a script."""

    def targets(self) -> list[str]:
        """Every target the store holds anything of, sorted."""
        union = " UNION ".join(f"SELECT DISTINCT target FROM {t}" for t in _TARGET_TABLES)
        return [r[0] for r in self._db.execute(f"SELECT target FROM ({union}) ORDER BY target")]

    def summary(self, target: str) -> TargetSummary:
        with self._read():
            q = self._db.execute
            segments = tuple(
                r[0] for r in q("SELECT id FROM segments WHERE target=? ORDER BY id", (target,))
            )
            customers = q("SELECT COUNT(*) FROM customers WHERE target=?", (target,)).fetchone()
            links = q(
                "SELECT COALESCE(SUM(LENGTH(segments) - LENGTH(REPLACE(segments, ?, '')) + 1), 0) "
                "FROM links WHERE target=? AND segments != ''",
                (SEP, target),
            ).fetchone()
            last = self.last_run(target)
        return TargetSummary(target, segments, int(customers[0]), int(links[0]), last)

    def segment_record(self, target: str, segment: str) -> SegmentRecord | None:
        """Segment ``segment`` of ``target`` as recorded (None when the store has no such)."""
        with self._read():
            q = self._db.execute
            row = q(
                "SELECT name, description, prevent_destroy, updated FROM segments "
                "WHERE target=? AND id=?",
                (target, segment),
            ).fetchone()
            if row is None:
                return None
            teams = q(
                "SELECT teams FROM access WHERE target=? AND segment=?", (target, segment)
            ).fetchone()
            members = q(
                # exact: an id may hold LIKE's wildcards (_ and %)
                "SELECT COUNT(*) FROM links "
                "WHERE target=?1 AND instr(?2 || segments || ?2, ?3) > 0",
                (target, SEP, f"{SEP}{segment}{SEP}"),
            ).fetchone()
        access = None if teams is None else tuple(t for t in teams[0].split(SEP) if t)
        name, description, protected, updated = row
        return SegmentRecord(
            target, segment, name, description, bool(protected), access, int(members[0]), updated
        )
