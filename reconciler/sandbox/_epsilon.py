"""Epsilon Retail Media (CitrusAd) simulation: segments (Partner API), customers (Integration API).

Only the operations of Epsilon's "Sync Customers & Audience" guide and the documented customer
reads exist: there is no read of segments or access lists and no customer delete; the state is
visible only under ``/_sandbox/``.

The platform whole, in one module: its tables, its routes, its authentication (a bearer token
for the Partner API, a basic key for the Integration API) and its error shape.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from reconciler.sandbox._db import Database, Row
from reconciler.sandbox._proto import (
    ApiError,
    Request,
    Response,
    Route,
    as_int_param,
    as_object,
    as_str,
    as_str_list,
    json_response,
)

__all__ = [
    "AUTH",
    "CUSTOMERS_PER_REQUEST",
    "EPSILON_API_KEY",
    "EPSILON_BEARER_TOKEN",
    "EPSILON_RETAILER_TEAM_ID",
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "ROUTES",
    "EpsilonTables",
    "render_error",
]

EPSILON_BEARER_TOKEN = "sandbox-epsilon-bearer"  # noqa: S105 - a public sandbox default
EPSILON_API_KEY = "sandbox-epsilon-key"
#: the authentication of each route: scheme → (error shape, header prefix, credentials field)
AUTH = {
    "bearer": ("epsilon", "Bearer", "epsilon_bearer_token"),
    "basic": ("epsilon", "Basic", "epsilon_api_key"),
}

#: The retailer team of the sandbox's API key (a customer created without ``teamId`` gets it).
EPSILON_RETAILER_TEAM_ID = "13c84def-41cb-4f99-a3fc-6788264f79fe"
CUSTOMERS_PER_REQUEST = 100
LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 1000
#: Deprecated customer fields the real API still accepts; the sandbox accepts and ignores them.
_DEPRECATED_CUSTOMER_FIELDS = ("yearOfBirth", "gender", "suburb", "postcode", "targetingData")

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
"""


class EpsilonTables(Database):
    """Epsilon's tables: segments and their access lists, customers and their segments."""

    SCHEMA: ClassVar[str] = _SCHEMA
    TABLES: ClassVar[tuple[str, ...]] = (
        "eps_segments",
        "eps_segment_access",
        "eps_customers",
        "eps_customer_segments",
    )

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

    def _eps_state(self, c: sqlite3.Connection) -> dict[str, Any]:
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
        return {"segments": segments, "customers": customers}

    def _eps_seed(self, c: sqlite3.Connection, eps: dict[str, Any], default_team: str) -> None:
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


def render_error(err: ApiError, request_uuid: str) -> Response:
    """Epsilon's error shape: a JSON body for a 400, the message as plain text otherwise."""
    if err.status == 400:
        body = {
            "message": err.message,
            "additionalInfo": [{"code": err.code, "message": err.message}],
        }
        return json_response(body, 400)
    return Response(err.status, err.message.encode(), "text/plain; charset=utf-8")


def _uuid(text: str, where: str) -> str:
    try:
        uuid.UUID(text)
    except ValueError as exc:
        raise ApiError(400, f"{where}: {text!r} is not a UUID", "INVALID_UUID") from exc
    return text


def create_segment(req: Request, store: EpsilonTables) -> Response:
    body = as_object(req.json(), "body", ("segment",))
    seg = as_object(
        body["segment"],
        "segment",
        ("segmentId", "name", "description", "retailerTeamId"),
        ("sourceId",),
    )
    segment_id = as_str(seg["segmentId"], "segment.segmentId", max_len=1000)
    source_id = as_str(seg.get("sourceId", "DEFAULT_SOURCE_ID"), "segment.sourceId")
    name = as_str(seg["name"], "segment.name", max_len=1000)
    description = as_str(seg["description"], "segment.description", min_len=0, max_len=10000)
    team = _uuid(as_str(seg["retailerTeamId"], "segment.retailerTeamId"), "segment.retailerTeamId")
    store.eps_create_segment(segment_id, source_id, name, description, team)
    return json_response(
        {
            "segment": {
                "segmentId": segment_id,
                "sourceId": source_id,
                "name": name,
                "description": description,
                "retailerTeamId": team,
            }
        }
    )


def manage_access(req: Request, store: EpsilonTables) -> Response:
    body = as_object(req.json(), "body", ("accessTeamIds",))
    teams = as_str_list(body["accessTeamIds"], "accessTeamIds", check=_uuid)
    segment_id = req.params["id"]
    store.eps_set_access(segment_id, teams)
    return json_response({"segmentId": segment_id, "accessTeamIds": list(dict.fromkeys(teams))})


def create_customers(req: Request, store: EpsilonTables) -> Response:
    body = as_object(req.json(), "body", ("customers",))
    items = body["customers"]
    if not isinstance(items, list):
        raise ApiError(400, "customers: expected an array", "INVALID_TYPE")
    if not 1 <= len(items) <= CUSTOMERS_PER_REQUEST:
        raise ApiError(
            400,
            f"customers: between 1 and {CUSTOMERS_PER_REQUEST} customers per request, "
            f"got {len(items)}",
            "BATCH_TOO_LARGE" if items else "INVALID_ARGUMENT",
        )
    parsed: list[tuple[str, str | None]] = []
    for i, item in enumerate(items):
        obj = as_object(item, f"customers[{i}]", ("id",), ("teamId", *_DEPRECATED_CUSTOMER_FIELDS))
        cid = as_str(obj["id"], f"customers[{i}].id", max_len=1000)
        team = obj.get("teamId")
        if team is not None:
            team = _uuid(as_str(team, f"customers[{i}].teamId"), f"customers[{i}].teamId")
        parsed.append((cid, team))
    rows = store.eps_upsert_customers(parsed, EPSILON_RETAILER_TEAM_ID)
    return json_response({"customers": rows})


def manage_segments(req: Request, store: EpsilonTables) -> Response:
    body = as_object(req.json(), "body", ("customerId", "teamId", "segments"))
    customer_id = as_str(body["customerId"], "customerId")
    _uuid(as_str(body["teamId"], "teamId"), "teamId")
    raw = body["segments"]
    groups = raw if isinstance(raw, list) else [raw]
    segment_ids: list[str] = []
    for i, group in enumerate(groups):
        where = f"segments[{i}]" if isinstance(raw, list) else "segments"
        obj = as_object(group, where, ("segmentIds",))
        segment_ids.extend(as_str_list(obj["segmentIds"], f"{where}.segmentIds"))
    store.eps_set_customer_segments(customer_id, segment_ids)
    unique = list(dict.fromkeys(segment_ids))
    return json_response({"customerId": customer_id, "segmentIds": unique})


def list_customers(req: Request, store: EpsilonTables) -> Response:
    for key in req.query:
        if key not in ("limit", "skip", "customerIds"):
            raise ApiError(400, f"unknown query parameter {key!r}", "UNKNOWN_FIELD")
    limit = as_int_param(req.query, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX)
    skip = as_int_param(req.query, "skip", 0, 0)
    ids = req.query.get("customerIds")
    customers, total = store.eps_list_customers(limit, skip, ids)
    return json_response({"customers": customers, "totalCount": total})


def get_customer(req: Request, store: EpsilonTables) -> Response:
    return json_response(store.eps_get_customer(req.params["id"]))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/segments", create_segment, "bearer"),
    Route("POST", "/v1/segments/{id}:manage-access", manage_access, "bearer"),
    Route("POST", "/v1/customers", create_customers, "basic"),
    Route("GET", "/v1/customers", list_customers, "basic"),
    Route("POST", "/v1/customers/manage-segments", manage_segments, "basic"),
    Route("GET", "/v1/customers/{id}", get_customer, "basic"),
)
