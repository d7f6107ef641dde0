"""Epsilon Retail Media (CitrusAd) simulation: segments (Partner API), customers (Integration API).

Only the operations of Epsilon's "Sync Customers & Audience" guide and the documented customer
reads exist: there is no read of segments or access lists and no customer delete; the state is
visible only under ``/_sandbox/``.
"""

from __future__ import annotations

import uuid

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
from reconciler.sandbox._store import Store

__all__ = [
    "CUSTOMERS_PER_REQUEST",
    "EPSILON_RETAILER_TEAM_ID",
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "ROUTES",
]

#: The retailer team of the sandbox's API key (a customer created without ``teamId`` gets it).
EPSILON_RETAILER_TEAM_ID = "13c84def-41cb-4f99-a3fc-6788264f79fe"
CUSTOMERS_PER_REQUEST = 100
LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 1000
#: Deprecated customer fields the real API still accepts; the sandbox accepts and ignores them.
_DEPRECATED_CUSTOMER_FIELDS = ("yearOfBirth", "gender", "suburb", "postcode", "targetingData")


def _uuid(text: str, where: str) -> str:
    try:
        uuid.UUID(text)
    except ValueError as exc:
        raise ApiError(400, f"{where}: {text!r} is not a UUID", "INVALID_UUID") from exc
    return text


def create_segment(req: Request, store: Store) -> Response:
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


def manage_access(req: Request, store: Store) -> Response:
    body = as_object(req.json(), "body", ("accessTeamIds",))
    teams = as_str_list(body["accessTeamIds"], "accessTeamIds", check=_uuid)
    segment_id = req.params["id"]
    store.eps_set_access(segment_id, teams)
    return json_response({"segmentId": segment_id, "accessTeamIds": list(dict.fromkeys(teams))})


def create_customers(req: Request, store: Store) -> Response:
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


def manage_segments(req: Request, store: Store) -> Response:
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


def list_customers(req: Request, store: Store) -> Response:
    for key in req.query:
        if key not in ("limit", "skip", "customerIds"):
            raise ApiError(400, f"unknown query parameter {key!r}", "UNKNOWN_FIELD")
    limit = as_int_param(req.query, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX)
    skip = as_int_param(req.query, "skip", 0, 0)
    ids = req.query.get("customerIds")
    customers, total = store.eps_list_customers(limit, skip, ids)
    return json_response({"customers": customers, "totalCount": total})


def get_customer(req: Request, store: Store) -> Response:
    return json_response(store.eps_get_customer(req.params["id"]))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/segments", create_segment, "bearer"),
    Route("POST", "/v1/segments/{id}:manage-access", manage_access, "bearer"),
    Route("POST", "/v1/customers", create_customers, "basic"),
    Route("GET", "/v1/customers", list_customers, "basic"),
    Route("POST", "/v1/customers/manage-segments", manage_segments, "basic"),
    Route("GET", "/v1/customers/{id}", get_customer, "basic"),
)
