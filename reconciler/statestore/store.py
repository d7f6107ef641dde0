"""The state store's record: what this reconciler last applied to each target, change by change.

Some platforms cannot read back what was written to them (Epsilon has no read of segments or of
access lists), so the reconciler remembers what it applied, item by item as each write is
acknowledged — never at the end of a run, so a crash loses nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from .._logging import fields, logger
from ..exceptions import StateStoreError
from ..model import Segment, State, StateBuilder
from ..plan.changes import AccessChange, Action, Change, CustomerChange, LinkChange, SegmentChange
from . import lock as _lock
from ._db import SEP as _SEP
from ._db import split as _split
from .history import History
from .inspect import Inspection
from .snapshot import Snapshots

#: ids bound per query when only some customers are loaded (SQLite's limit is far higher)
_CHUNK = 500

__all__ = ["StateStore"]

log = logger("statestore")


class StateStore(Snapshots, Inspection, History):
    """Last-applied state per target, the run journal, segment sizes over time and
    per-target locks."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._dirty_seq: int | None = None

    # -- last-applied state ---------------------------------------------------------------
    def load(
        self, target: str, *, membership: bool = True, customers: Iterable[str] | None = None
    ) -> State:
        """The state this reconciler last applied to ``target``.

        ``membership=False`` loads the segments and access lists alone (customers and links
        left empty), for a provider that reads membership live. ``customers``: the membership
        of those customers alone (the ones the record knows), not the whole audience's.
        """
        b = StateBuilder()
        q = self._db.execute
        with self._read():
            for seg_id, name, desc in q(
                "SELECT id, name, description FROM segments WHERE target=?", (target,)
            ):
                b.add_segment(Segment(seg_id, name, desc))
            for seg_id, teams in q("SELECT segment, teams FROM access WHERE target=?", (target,)):
                b.set_access(seg_id, teams.split(_SEP) if teams else ())
            if not membership:
                return b.build()
            if customers is None:
                rows = q("SELECT id FROM customers WHERE target=?", (target,))
                b.add_customers(r[0] for r in rows)
                b.set_links_many(
                    q("SELECT customer, segments FROM links WHERE target=?", (target,)), _split
                )
                return b.build()
            wanted = sorted(set(customers))
            for at in range(0, len(wanted), _CHUNK):
                chunk = wanted[at : at + _CHUNK]
                marks = ",".join("?" * len(chunk))
                b.add_customers(
                    r[0]
                    for r in q(
                        f"SELECT id FROM customers WHERE target=? AND id IN ({marks})",
                        (target, *chunk),
                    )
                )
                b.set_links_many(
                    q(
                        "SELECT customer, segments FROM links "
                        f"WHERE target=? AND customer IN ({marks})",
                        (target, *chunk),
                    ),
                    _split,
                )
        return b.build()

    def segments_of(self, target: str, customer: str) -> frozenset[str] | None:
        """The segments ``customer`` was last applied in on ``target`` (managed or not: a
        link is a customer's whole list), or None when the record knows no such customer."""
        q = self._db.execute
        with self._read():
            row = q(
                "SELECT segments FROM links WHERE target=? AND customer=?", (target, customer)
            ).fetchone()
            known = row is not None or (
                q("SELECT 1 FROM customers WHERE target=? AND id=?", (target, customer)).fetchone()
                is not None
            )
        if not known:
            return None
        return frozenset(_split(row[0])) if row is not None else frozenset()

    def protected(self, target: str) -> frozenset[str]:
        """Segments last applied with ``prevent_destroy: true``."""
        rows = self._db.execute(
            "SELECT id FROM segments WHERE target=? AND prevent_destroy=1", (target,)
        )
        return frozenset(r[0] for r in rows)

    def managed_segments(self, target: str) -> frozenset[str]:
        rows = self._db.execute("SELECT id FROM segments WHERE target=?", (target,))
        return frozenset(r[0] for r in rows)

    def set_protection(self, target: str, protected: Iterable[str]) -> None:
        ids = list(protected)
        with self._tx():
            self._db.execute("UPDATE segments SET prevent_destroy=0 WHERE target=?", (target,))
            self._db.executemany(
                "UPDATE segments SET prevent_destroy=1 WHERE target=? AND id=?",
                [(target, i) for i in ids],
            )

    def definitions(self, target: str) -> dict[str, str]:
        """Each segment's definition (YAML) as recorded at the last apply of ``target``."""
        rows = self._db.execute(
            "SELECT segment, yaml FROM definitions WHERE target=? ORDER BY segment", (target,)
        )
        return dict(rows.fetchall())

    def set_definitions(self, target: str, definitions: Mapping[str, str]) -> None:
        """Replace ``target``'s recorded definitions by ``definitions`` (segment → YAML)."""
        with self._tx():
            self._db.execute("DELETE FROM definitions WHERE target=?", (target,))
            self._db.executemany(
                "INSERT INTO definitions(target, segment, yaml) VALUES (?,?,?)",
                [(target, seg, text) for seg, text in sorted(definitions.items())],
            )

    def record(self, target: str, changes: Sequence[Change]) -> None:
        """Remember acknowledged changes (called per batch, as soon as the target confirms)."""
        with self._tx():
            self._dirty_seq = None
            for change in changes:
                self._record_one(target, change)
        log.debug(
            "%s: %d acknowledged change(s) recorded",
            target,
            len(changes),
            extra=fields("recorded", target=target, changes=len(changes)),
        )

    def _record_one(self, target: str, change: Change) -> None:
        x = self._db.execute
        match change:
            case SegmentChange(action=Action.CREATE | Action.UPDATE, after=Segment() as seg):
                x(
                    "INSERT INTO segments(target, id, name, description, updated) "
                    "VALUES (?,?,?,?,?) ON CONFLICT(target, id) DO UPDATE SET "
                    "name=excluded.name, description=excluded.description, "
                    "updated=excluded.updated",
                    (target, seg.id, seg.name, seg.description, time.time()),
                )
            case SegmentChange(action=Action.DELETE | Action.FORGET, key=seg_id):
                x("DELETE FROM segments WHERE target=? AND id=?", (target, seg_id))
                x("DELETE FROM access WHERE target=? AND segment=?", (target, seg_id))
                x("DELETE FROM definitions WHERE target=? AND segment=?", (target, seg_id))
                self._drop_segment_links(target, seg_id)
            case AccessChange(key=seg_id, after=teams):
                x(
                    "INSERT OR REPLACE INTO access(target, segment, teams) VALUES (?,?,?)",
                    (target, seg_id, _SEP.join(sorted(teams))),
                )
            case CustomerChange(action=Action.CREATE, key=cid):
                x("INSERT OR IGNORE INTO customers(target, id) VALUES (?,?)", (target, cid))
                self._dirty(target, cid)
            case CustomerChange(key=cid):
                x("DELETE FROM customers WHERE target=? AND id=?", (target, cid))
                self._dirty(target, cid)
            case LinkChange(key=cid, after=segs):
                self._dirty(target, cid)
                if segs:
                    x(
                        "INSERT OR REPLACE INTO links(target, customer, segments) VALUES (?,?,?)",
                        (target, cid, _SEP.join(sorted(segs))),
                    )
                else:
                    x("DELETE FROM links WHERE target=? AND customer=?", (target, cid))
            case _:  # pragma: no cover - exhaustive above
                raise StateStoreError(f"cannot record {change!r}")

    def _dirty(self, target: str, customer: str) -> None:
        """Mark ``customer`` changed since the snapshot (inside the recording transaction)."""
        if self._dirty_seq is None:
            row = self._db.execute(
                "UPDATE counters SET n = n + 1 WHERE name = 'dirty' RETURNING n"
            ).fetchone()
            self._dirty_seq = int(row[0])
        self._db.execute(
            "INSERT OR REPLACE INTO dirty(target, customer, seq) VALUES (?,?,?)",
            (target, customer, self._dirty_seq),
        )

    def _drop_segment_links(self, target: str, seg_id: str) -> None:
        rows = self._db.execute(
            "SELECT customer, segments FROM links WHERE target=? AND (segments=? OR "
            "segments LIKE ? OR segments LIKE ? OR segments LIKE ?)",
            (target, seg_id, f"{seg_id}{_SEP}%", f"%{_SEP}{seg_id}", f"%{_SEP}{seg_id}{_SEP}%"),
        ).fetchall()
        for customer, segs in rows:
            rest = [s for s in segs.split(_SEP) if s != seg_id]
            self._record_one(target, LinkChange(customer, frozenset(), frozenset(rest)))

    def forget(self, target: str, segment: str) -> bool:
        """Drop ``segment`` of ``target`` from the record (its fields, access list and links),
        the platform untouched: the next plan sees it as never applied. ``False`` when the
        record holds no such segment."""
        if segment not in self.managed_segments(target):
            return False
        self.record(target, [SegmentChange(Action.FORGET, segment, None, None)])
        if self._snapshot_meta(target) is not None:
            self.checkpoint(target)  # the links dropped, folded into the columnar snapshot
        log.info("%s: segment %s forgotten by the state store", target, segment)
        return True

    def replace(self, target: str, state: State) -> None:
        """Overwrite the last-applied state of ``target`` (import, or a full refresh)."""
        with self._tx():
            was = self._db.execute(
                "SELECT file FROM snapshots WHERE target=?", (target,)
            ).fetchone()
            kept = self._db.execute(
                "SELECT id FROM segments WHERE target=? AND prevent_destroy=1", (target,)
            ).fetchall()
            for table in ("segments", "access", "customers", "links", "dirty", "snapshots"):
                self._db.execute(f"DELETE FROM {table} WHERE target=?", (target,))
            now = time.time()
            self._db.executemany(
                "INSERT INTO segments(target, id, name, description, updated) VALUES (?,?,?,?,?)",
                [(target, s.id, s.name, s.description, now) for s in state.segments.values()],
            )
            # prevent_destroy is the config's promise, not a fact of the remote: it survives
            self._db.executemany(
                "UPDATE segments SET prevent_destroy=1 WHERE target=? AND id=?",
                [(target, r[0]) for r in kept],
            )
            self._db.executemany(
                "INSERT INTO access(target, segment, teams) VALUES (?,?,?)",
                [(target, k, _SEP.join(sorted(v))) for k, v in state.access.items()],
            )
            self._db.executemany(
                "INSERT INTO customers(target, id) VALUES (?,?)",
                [(target, c) for c in state.customers],
            )
            self._db.executemany(
                "INSERT INTO links(target, customer, segments) VALUES (?,?,?)",
                [(target, c, _SEP.join(sorted(s))) for c, s in state.links.items()],
            )
        self.checkpoint(target, keep=was[0] if was else None)

    # -- locks ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, target: str, *, wait: float = 0.0, purpose: str = "apply") -> Iterator[None]:
        """Hold the apply lock of ``target``; wait up to ``wait`` seconds, then refuse.

        ``purpose`` (``apply``, ``refresh``) is recorded with the process id, so one that
        finds the lock taken says who holds it."""
        with _lock.hold(self.path.parent / "locks", target, wait=wait, purpose=purpose):
            yield
