"""SQLite state of both simulated platforms (WAL mode, indexed for millions of memberships).

One :class:`Store` owns one connection. Every write runs in one ``BEGIN IMMEDIATE`` transaction,
so a refused request changes nothing. Timestamps are RFC 3339 in UTC with a ``Z``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.sandbox._proto import ApiError

__all__ = ["TALONONE_ACCOUNT_ID", "Store", "now_rfc3339"]

#: The account id every simulated Talon.One entity belongs to.
TALONONE_ACCOUNT_ID = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eps_segments (
    segment_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    retailer_team_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eps_segment_access (
    segment_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    team_id TEXT NOT NULL,
    PRIMARY KEY (segment_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS eps_customers (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS eps_customer_segments (
    customer_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    segment_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS eps_customer_segments_by_segment
    ON eps_customer_segments (segment_id, customer_id);
CREATE TABLE IF NOT EXISTS t1_audiences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    integration TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_in_3rd_party INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    last_update TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS t1_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL,
    last_activity TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS t1_memberships (
    audience_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    PRIMARY KEY (audience_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS t1_memberships_by_profile ON t1_memberships (profile_id, audience_id);
"""

_TABLES = (
    "eps_segments",
    "eps_segment_access",
    "eps_customers",
    "eps_customer_segments",
    "t1_audiences",
    "t1_profiles",
    "t1_memberships",
)

Row = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """The state of the sandbox in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA cache_size=-65536")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            from reconciler.exceptions import SandboxError

            raise SandboxError(f"cannot open sandbox database {self.path}: {exc}") from exc
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def reset(self) -> None:
        with self.tx() as c:
            for table in _TABLES:
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM sqlite_sequence")

    # ------------------------------------------------------------------ Epsilon
    def eps_create_segment(
        self, segment_id: str, source_id: str, name: str, description: str, team: str
    ) -> None:
        with self.tx() as c:
            try:
                c.execute(
                    "INSERT INTO eps_segments VALUES (?, ?, ?, ?, ?)",
                    (segment_id, source_id, name, description, team),
                )
            except sqlite3.IntegrityError as exc:
                raise ApiError(409, f"segment {segment_id!r} already exists") from exc

    def eps_set_access(self, segment_id: str, team_ids: Sequence[str]) -> None:
        with self.tx() as c:
            if (
                c.execute(
                    "SELECT 1 FROM eps_segments WHERE segment_id = ?", (segment_id,)
                ).fetchone()
                is None
            ):
                raise ApiError(404, f"segment {segment_id!r} not found")
            self._set_access(c, segment_id, team_ids)

    @staticmethod
    def _set_access(c: sqlite3.Connection, segment_id: str, team_ids: Sequence[str]) -> None:
        c.execute("DELETE FROM eps_segment_access WHERE segment_id = ?", (segment_id,))
        c.executemany(
            "INSERT INTO eps_segment_access VALUES (?, ?, ?)",
            [(segment_id, i, t) for i, t in enumerate(dict.fromkeys(team_ids))],
        )

    def eps_upsert_customers(
        self, customers: Sequence[tuple[str, str | None]], default_team: str
    ) -> list[Row]:
        out: list[Row] = []
        with self.tx() as c:
            for cid, team in customers:
                if team is None:
                    row = c.execute("SELECT team_id FROM eps_customers WHERE id = ?", (cid,))
                    found = row.fetchone()
                    team = found[0] if found else default_team
                c.execute(
                    "INSERT INTO eps_customers (id, team_id) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id",
                    (cid, team),
                )
                out.append({"id": cid, "teamId": team})
        return out

    def eps_set_customer_segments(self, customer_id: str, segment_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(segment_ids))
        with self.tx() as c:
            if (
                c.execute("SELECT 1 FROM eps_customers WHERE id = ?", (customer_id,)).fetchone()
                is None
            ):
                raise ApiError(404, f"customer {customer_id!r} not found")
            if wanted:
                marks = ",".join("?" * len(wanted))
                known = {
                    r[0]
                    for r in c.execute(
                        f"SELECT segment_id FROM eps_segments WHERE segment_id IN ({marks})",
                        wanted,
                    )
                }
                missing = [s for s in wanted if s not in known]
                if missing:
                    raise ApiError(
                        400, f"unknown segment id(s): {', '.join(missing)}", "SEGMENT_NOT_FOUND"
                    )
            c.execute("DELETE FROM eps_customer_segments WHERE customer_id = ?", (customer_id,))
            c.executemany(
                "INSERT INTO eps_customer_segments VALUES (?, ?, ?)",
                [(customer_id, i, s) for i, s in enumerate(wanted)],
            )

    def _eps_segments_of(self, c: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for cid, seg in c.execute(
                "SELECT customer_id, segment_id FROM eps_customer_segments "
                f"WHERE customer_id IN ({marks}) ORDER BY customer_id, position",
                chunk,
            ):
                out[cid].append(seg)
        return out

    def eps_get_customer(self, customer_id: str) -> Row:
        with self.read() as c:
            row = c.execute("SELECT team_id FROM eps_customers WHERE id = ?", (customer_id,))
            found = row.fetchone()
            if found is None:
                raise ApiError(404, f"customer {customer_id!r} not found")
            segs = [
                r[0]
                for r in c.execute(
                    "SELECT segment_id FROM eps_customer_segments WHERE customer_id = ? "
                    "ORDER BY position",
                    (customer_id,),
                )
            ]
        return {"id": customer_id, "teamId": found[0], "segmentIds": segs}

    def eps_list_customers(
        self, limit: int, skip: int, ids: Sequence[str] | None
    ) -> tuple[list[Row], int]:
        with self.read() as c:
            if ids:
                wanted = sorted(set(ids))
                marks = ",".join("?" * len(wanted))
                rows = c.execute(
                    f"SELECT id, team_id FROM eps_customers WHERE id IN ({marks}) ORDER BY id",
                    wanted,
                ).fetchall()
                total = len(rows)
                rows = rows[skip : skip + limit]
            else:
                total = c.execute("SELECT count(*) FROM eps_customers").fetchone()[0]
                rows = c.execute(
                    "SELECT id, team_id FROM eps_customers ORDER BY id LIMIT ? OFFSET ?",
                    (limit, skip),
                ).fetchall()
            segs = self._eps_segments_of(c, [r[0] for r in rows])
        return [{"id": r[0], "teamId": r[1], "segmentIds": segs[r[0]]} for r in rows], total

    # ------------------------------------------------------------------ Talon.One
    @staticmethod
    def _audience_row(r: Sequence[Any]) -> Row:
        return {
            "id": r[0],
            "accountId": TALONONE_ACCOUNT_ID,
            "created": r[6],
            "name": r[2],
            "sandbox": False,
            "description": r[4],
            "subscribedApplicationsIds": [],
            "integration": r[3],
            "integrationId": r[1],
            "createdIn3rdParty": bool(r[5]),
            "lastUpdate": r[7],
        }

    _AUDIENCE_COLS = (
        "id, integration_id, name, integration, description, created_in_3rd_party, created, "
        "last_update"
    )

    def t1_create_audience(self, integration_id: str, name: str, integration: str) -> Row:
        now = now_rfc3339()
        with self.tx() as c:
            try:
                cur = c.execute(
                    "INSERT INTO t1_audiences (integration_id, name, integration, created, "
                    "last_update) VALUES (?, ?, ?, ?, ?)",
                    (integration_id, name, integration, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ApiError(409, f"audience {integration_id!r} already exists") from exc
            row = c.execute(
                f"SELECT {self._AUDIENCE_COLS} FROM t1_audiences WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
        return self._audience_row(row)

    def t1_update_audience(self, integration_id: str, name: str) -> Row:
        with self.tx() as c:
            cur = c.execute(
                "UPDATE t1_audiences SET name = ? WHERE integration_id = ?", (name, integration_id)
            )
            if cur.rowcount == 0:
                raise ApiError(404, f"audience {integration_id!r} not found")
            row = c.execute(
                f"SELECT {self._AUDIENCE_COLS} FROM t1_audiences WHERE integration_id = ?",
                (integration_id,),
            ).fetchone()
        return self._audience_row(row)

    def t1_delete_audience(self, integration_id: str) -> None:
        with self.tx() as c:
            found = c.execute(
                "SELECT id FROM t1_audiences WHERE integration_id = ?", (integration_id,)
            ).fetchone()
            if found is None:
                raise ApiError(404, f"audience {integration_id!r} not found")
            c.execute("DELETE FROM t1_memberships WHERE audience_id = ?", (found[0],))
            c.execute("DELETE FROM t1_audiences WHERE id = ?", (found[0],))

    def t1_audience_ids(self, integration_ids: Iterable[str]) -> dict[str, int]:
        """Map audience integration ids to numeric ids; 404 names the first unknown one."""
        wanted = list(dict.fromkeys(integration_ids))
        out: dict[str, int] = {}
        with self.read() as c:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for iid, aid in c.execute(
                    "SELECT integration_id, id FROM t1_audiences "
                    f"WHERE integration_id IN ({marks})",
                    chunk,
                ):
                    out[iid] = aid
        missing = [i for i in wanted if i not in out]
        if missing:
            raise ApiError(404, f"audience(s) not found: {', '.join(missing)}")
        return out

    def t1_check_audiences(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids))
        if not wanted:
            return
        with self.read() as c:
            known: set[int] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                known.update(
                    r[0]
                    for r in c.execute(f"SELECT id FROM t1_audiences WHERE id IN ({marks})", chunk)
                )
        missing = [str(i) for i in wanted if i not in known]
        if missing:
            raise ApiError(404, f"audience(s) not found: {', '.join(missing)}")

    @staticmethod
    def _ensure_profile(c: sqlite3.Connection, integration_id: str, now: str) -> int:
        found = c.execute(
            "SELECT id FROM t1_profiles WHERE integration_id = ?", (integration_id,)
        ).fetchone()
        if found is not None:
            return int(found[0])
        cur = c.execute(
            "INSERT INTO t1_profiles (integration_id, created, last_activity) VALUES (?, ?, ?)",
            (integration_id, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def t1_apply_changes(
        self,
        changes: Sequence[tuple[str, Sequence[int], Sequence[int]]],
        attributes: dict[str, Any] | None = None,
        touch: bool = False,
    ) -> None:
        """Apply ``(profile integration id, adds, deletes)``; audience ids must be checked."""
        now = now_rfc3339()
        changed: set[int] = set()
        with self.tx() as c:
            for profile, adds, deletes in changes:
                pid = self._ensure_profile(c, profile, now)
                for aid in adds:
                    cur = c.execute(
                        "INSERT OR IGNORE INTO t1_memberships VALUES (?, ?)", (aid, pid)
                    )
                    if cur.rowcount:
                        changed.add(aid)
                for aid in deletes:
                    cur = c.execute(
                        "DELETE FROM t1_memberships WHERE audience_id = ? AND profile_id = ?",
                        (aid, pid),
                    )
                    if cur.rowcount:
                        changed.add(aid)
                if attributes:
                    old = c.execute("SELECT attributes FROM t1_profiles WHERE id = ?", (pid,))
                    merged = json.loads(old.fetchone()[0])
                    merged.update(attributes)
                    c.execute(
                        "UPDATE t1_profiles SET attributes = ? WHERE id = ?",
                        (json.dumps(merged, sort_keys=True), pid),
                    )
                if touch:
                    c.execute("UPDATE t1_profiles SET last_activity = ? WHERE id = ?", (now, pid))
            c.executemany(
                "UPDATE t1_audiences SET last_update = ? WHERE id = ?",
                [(now, aid) for aid in sorted(changed)],
            )

    def t1_list_audiences(self, page_size: int, skip: int) -> tuple[list[Row], bool, int]:
        with self.read() as c:
            rows = c.execute(
                f"SELECT {self._AUDIENCE_COLS} FROM t1_audiences ORDER BY id LIMIT ? OFFSET ?",
                (page_size + 1, skip),
            ).fetchall()
            total = c.execute("SELECT count(*) FROM t1_audiences").fetchone()[0]
        return [self._audience_row(r) for r in rows[:page_size]], len(rows) > page_size, total

    def _t1_require_audience(self, c: sqlite3.Connection, audience_id: int) -> None:
        if c.execute("SELECT 1 FROM t1_audiences WHERE id = ?", (audience_id,)).fetchone() is None:
            raise ApiError(404, f"audience {audience_id} not found")

    def _t1_profiles(self, c: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Row]:
        ids = [r[0] for r in rows]
        members: dict[int, list[Row]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pid, aid, name in c.execute(
                "SELECT m.profile_id, a.id, a.name FROM t1_memberships m "
                "JOIN t1_audiences a ON a.id = m.audience_id "
                f"WHERE m.profile_id IN ({marks}) ORDER BY m.profile_id, a.id",
                chunk,
            ):
                members[pid].append({"id": aid, "name": name})
        return [
            {
                "id": r[0],
                "created": r[3],
                "integrationId": r[1],
                "attributes": json.loads(r[2]),
                "accountId": TALONONE_ACCOUNT_ID,
                "closedSessions": 0,
                "totalSales": 0.0,
                "audienceMemberships": members[r[0]],
                "lastActivity": r[4],
            }
            for r in rows
        ]

    def t1_memberships(
        self, audience_id: int, page_size: int, skip: int
    ) -> tuple[list[Row], bool, int]:
        with self.read() as c:
            self._t1_require_audience(c, audience_id)
            rows = c.execute(
                "SELECT p.id, p.integration_id, p.attributes, p.created, p.last_activity "
                "FROM t1_memberships m JOIN t1_profiles p ON p.id = m.profile_id "
                "WHERE m.audience_id = ? ORDER BY p.id LIMIT ? OFFSET ?",
                (audience_id, page_size + 1, skip),
            ).fetchall()
            total = c.execute(
                "SELECT count(*) FROM t1_memberships WHERE audience_id = ?", (audience_id,)
            ).fetchone()[0]
            profiles = self._t1_profiles(c, rows[:page_size])
        return profiles, len(rows) > page_size, total

    def t1_export(self, audience_id: int) -> list[str]:
        with self.read() as c:
            self._t1_require_audience(c, audience_id)
            return [
                r[0]
                for r in c.execute(
                    "SELECT p.integration_id FROM t1_memberships m "
                    "JOIN t1_profiles p ON p.id = m.profile_id WHERE m.audience_id = ? "
                    "ORDER BY p.integration_id",
                    (audience_id,),
                )
            ]

    def t1_profile(self, integration_id: str) -> Row:
        with self.read() as c:
            row = c.execute(
                "SELECT id, integration_id, attributes, created, last_activity FROM t1_profiles "
                "WHERE integration_id = ?",
                (integration_id,),
            ).fetchone()
            if row is None:
                raise ApiError(404, f"customer profile {integration_id!r} not found")
            return self._t1_profiles(c, [row])[0]

    # ------------------------------------------------------------------ snapshot / seed
    def state(self) -> dict[str, Any]:
        """The whole state as plain data, without timestamps (stable for comparisons)."""
        with self.read() as c:
            access: dict[str, list[str]] = {}
            for sid, team in c.execute(
                "SELECT segment_id, team_id FROM eps_segment_access ORDER BY segment_id, position"
            ):
                access.setdefault(sid, []).append(team)
            segments = [
                {
                    "segmentId": r[0],
                    "sourceId": r[1],
                    "name": r[2],
                    "description": r[3],
                    "retailerTeamId": r[4],
                    "accessTeamIds": access.get(r[0], []),
                }
                for r in c.execute("SELECT * FROM eps_segments ORDER BY segment_id")
            ]
            links: dict[str, list[str]] = {}
            for cid, seg in c.execute(
                "SELECT customer_id, segment_id FROM eps_customer_segments "
                "ORDER BY customer_id, position"
            ):
                links.setdefault(cid, []).append(seg)
            customers = [
                {"id": r[0], "teamId": r[1], "segmentIds": links.get(r[0], [])}
                for r in c.execute("SELECT id, team_id FROM eps_customers ORDER BY id")
            ]
            members: dict[int, list[str]] = {}
            for aid, pid in c.execute(
                "SELECT m.audience_id, p.integration_id FROM t1_memberships m "
                "JOIN t1_profiles p ON p.id = m.profile_id ORDER BY m.audience_id, p.integration_id"
            ):
                members.setdefault(aid, []).append(pid)
            audiences = [
                {
                    "id": r[0],
                    "integrationId": r[1],
                    "name": r[2],
                    "integration": r[3],
                    "description": r[4],
                    "createdIn3rdParty": bool(r[5]),
                    "members": members.get(r[0], []),
                }
                for r in c.execute(f"SELECT {self._AUDIENCE_COLS} FROM t1_audiences ORDER BY id")
            ]
            profiles = [
                {"id": r[0], "integrationId": r[1], "attributes": json.loads(r[2])}
                for r in c.execute(
                    "SELECT id, integration_id, attributes FROM t1_profiles ORDER BY id"
                )
            ]
        return {
            "epsilon": {"segments": segments, "customers": customers},
            "talonone": {"audiences": audiences, "profiles": profiles},
        }

    def seed(self, data: dict[str, Any], default_team: str) -> None:
        """Upsert a starting state (the shape of :meth:`state`; lists given are replaced)."""
        now = now_rfc3339()
        eps = data.get("epsilon") or {}
        t1 = data.get("talonone") or {}
        with self.tx() as c:
            for seg in eps.get("segments") or []:
                sid = str(seg["segmentId"])
                c.execute(
                    "INSERT OR REPLACE INTO eps_segments VALUES (?, ?, ?, ?, ?)",
                    (
                        sid,
                        str(seg.get("sourceId", "DEFAULT_SOURCE_ID")),
                        str(seg.get("name", sid)),
                        str(seg.get("description", "")),
                        str(seg.get("retailerTeamId", default_team)),
                    ),
                )
                if "accessTeamIds" in seg:
                    self._set_access(c, sid, [str(t) for t in seg["accessTeamIds"]])
            for cust in eps.get("customers") or []:
                cid = str(cust["id"])
                c.execute(
                    "INSERT OR REPLACE INTO eps_customers VALUES (?, ?)",
                    (cid, str(cust.get("teamId") or default_team)),
                )
                if "segmentIds" in cust:
                    c.execute("DELETE FROM eps_customer_segments WHERE customer_id = ?", (cid,))
                    c.executemany(
                        "INSERT INTO eps_customer_segments VALUES (?, ?, ?)",
                        [(cid, i, str(s)) for i, s in enumerate(dict.fromkeys(cust["segmentIds"]))],
                    )
            for prof in t1.get("profiles") or []:
                pid = self._ensure_profile(c, str(prof["integrationId"]), now)
                if "attributes" in prof:
                    c.execute(
                        "UPDATE t1_profiles SET attributes = ? WHERE id = ?",
                        (json.dumps(prof["attributes"], sort_keys=True), pid),
                    )
            for aud in t1.get("audiences") or []:
                iid = str(aud["integrationId"])
                values = (
                    str(aud.get("name", iid)),
                    str(aud.get("integration", "sandbox")),
                    str(aud.get("description", "")),
                    int(bool(aud.get("createdIn3rdParty", True))),
                )
                found = c.execute(
                    "SELECT id FROM t1_audiences WHERE integration_id = ?", (iid,)
                ).fetchone()
                if found is not None:
                    aid = int(found[0])
                    c.execute(
                        "UPDATE t1_audiences SET name = ?, integration = ?, description = ?, "
                        "created_in_3rd_party = ? WHERE id = ?",
                        (*values, aid),
                    )
                else:
                    cur = c.execute(
                        "INSERT INTO t1_audiences (id, integration_id, name, integration, "
                        "description, created_in_3rd_party, created, last_update) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (aud.get("id"), iid, *values, now, now),
                    )
                    assert cur.lastrowid is not None
                    aid = cur.lastrowid
                if "members" in aud:
                    c.execute("DELETE FROM t1_memberships WHERE audience_id = ?", (aid,))
                    c.executemany(
                        "INSERT OR IGNORE INTO t1_memberships VALUES (?, ?)",
                        [(aid, self._ensure_profile(c, str(m), now)) for m in aud["members"]],
                    )
