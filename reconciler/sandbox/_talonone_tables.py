"""Talon.One's simulated tables: audiences, customer profiles and their memberships.

The routes that read and write them, Talon.One's authentication and its error shapes are in
:mod:`reconciler.sandbox._talonone`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from reconciler.sandbox._db import Database, Row, now_rfc3339
from reconciler.sandbox._proto import ApiError

__all__ = ["TALONONE_ACCOUNT_ID", "TalonOneTables"]

#: The account id every simulated Talon.One entity belongs to.
TALONONE_ACCOUNT_ID = 1

_SCHEMA = """
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


class TalonOneTables(Database):
    """Talon.One's tables; a membership write names audiences by their numeric id."""

    SCHEMA: ClassVar[str] = _SCHEMA
    TABLES: ClassVar[tuple[str, ...]] = ("t1_audiences", "t1_profiles", "t1_memberships")

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

    def _t1_state(self, c: sqlite3.Connection) -> dict[str, Any]:
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
            for r in c.execute("SELECT id, integration_id, attributes FROM t1_profiles ORDER BY id")
        ]
        return {"audiences": audiences, "profiles": profiles}

    def _t1_seed(self, c: sqlite3.Connection, t1: dict[str, Any], now: str) -> None:
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
