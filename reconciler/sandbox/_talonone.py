"""Talon.One simulation: the CDP ("third-party") API, one Integration API read, and the
Management API reads that the official SDK models parse.

Unknown numeric or external audience ids in membership writes answer **404**, and the whole
request is refused (nothing applied).

The platform's routes, its authentication (an API key for the CDP and Integration APIs, a
management key for the Management API) and its two error shapes are here; its tables are in
:mod:`reconciler.sandbox._talonone_tables`.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox._proto import (
    ApiError,
    Request,
    Response,
    Route,
    as_bool_param,
    as_int_list,
    as_int_param,
    as_object,
    as_str,
    as_str_list,
    json_response,
)
from reconciler.sandbox._talonone_tables import TalonOneTables

__all__ = [
    "ACTIONS_PER_REQUEST",
    "AUTH",
    "CDP_ROUTES",
    "INTEGRATION_ROUTES",
    "MANAGEMENT_ROUTES",
    "TALONONE_API_KEY",
    "TALONONE_MANAGEMENT_KEY",
    "render_cdp_error",
    "render_management_error",
]

TALONONE_API_KEY = "sandbox-talonone-key"
TALONONE_MANAGEMENT_KEY = "sandbox-talonone-mgmt-key"
#: the authentication of each route: scheme → (error shape, header prefix, credentials field)
AUTH = {
    "cdp": ("cdp", "ApiKey-v1", "talonone_api_key"),
    "apikey": ("management", "ApiKey-v1", "talonone_api_key"),
    "management": ("management", "ManagementKey-v1", "talonone_management_key"),
}

ACTIONS_PER_REQUEST = 1000
PAGE_SIZE_MAX = 1000


def _check_actions(count: int) -> None:
    if count > ACTIONS_PER_REQUEST:
        raise ApiError(
            400,
            f"at most {ACTIONS_PER_REQUEST} adds + deletes per request, got {count}",
            "BATCH_TOO_LARGE",
        )


def _no_overlap(adds: list[Any], deletes: list[Any], where: str) -> None:
    both = set(adds) & set(deletes)
    if both:
        first = sorted(str(b) for b in both)[0]
        raise ApiError(400, f"{where}: audience {first} is both added and deleted")


def _audience_body(req: Request) -> tuple[str, str]:
    body = as_object(req.json(), "body", ("audienceId", "audienceName"))
    audience_id = as_str(body["audienceId"], "audienceId", max_len=1000)
    name = as_str(body["audienceName"], "audienceName", max_len=1000)
    return audience_id, name


def _cdp_audience(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "created", "accountId", "name", "integration", "integrationId")
    return {k: row[k] for k in keys}


# ---------------------------------------------------------------------- CDP API
def create_audience(req: Request, store: TalonOneTables) -> Response:
    audience_id, name = _audience_body(req)
    row = store.t1_create_audience(audience_id, name, req.headers["customer-data-platform-name"])
    return json_response(_cdp_audience(row), 201)


def update_audience(req: Request, store: TalonOneTables) -> Response:
    audience_id, name = _audience_body(req)
    if audience_id != req.params["audienceId"]:
        raise ApiError(400, "audienceId in the body must match the path")
    return json_response(_cdp_audience(store.t1_update_audience(audience_id, name)))


def delete_audience(req: Request, store: TalonOneTables) -> Response:
    store.t1_delete_audience(req.params["audienceId"])
    return Response(204)


def update_profile(req: Request, store: TalonOneTables) -> Response:
    for key in req.query:
        if key != "skipNonExistingAttributes":
            raise ApiError(400, f"unknown query parameter {key!r}")
    as_bool_param(req.query, "skipNonExistingAttributes")
    profile = as_str(req.params["customerProfileId"], "customerProfileId", max_len=1000)
    body = as_object(req.json(), "body", (), ("attributes", "runRuleEngine", "audiencesChanges"))
    attributes = as_object(body.get("attributes", {}), "attributes", open_keys=True)
    run = body.get("runRuleEngine", False)
    if not isinstance(run, bool):
        raise ApiError(400, "runRuleEngine: expected a boolean")
    changes = as_object(
        body.get("audiencesChanges", {}), "audiencesChanges", (), ("adds", "deletes")
    )
    adds = as_int_list(changes.get("adds", []), "audiencesChanges.adds")
    deletes = as_int_list(changes.get("deletes", []), "audiencesChanges.deletes")
    _check_actions(len(adds) + len(deletes))
    _no_overlap(adds, deletes, "audiencesChanges")
    store.t1_check_audiences([*adds, *deletes])
    store.t1_apply_changes([(profile, adds, deletes)], attributes, touch=run)
    return json_response(store.t1_profile(profile))


def profile_audiences(req: Request, store: TalonOneTables) -> Response:
    profile = as_str(req.params["customerProfileId"], "customerProfileId", max_len=1000)
    body = as_object(req.json(), "body", ("data",))
    data = as_object(body["data"], "data", (), ("adds", "deletes"))
    adds = as_str_list(data.get("adds", []), "data.adds")
    deletes = as_str_list(data.get("deletes", []), "data.deletes")
    _check_actions(len(adds) + len(deletes))
    _no_overlap(adds, deletes, "data")
    ids = store.t1_audience_ids([*adds, *deletes])
    store.t1_apply_changes([(profile, [ids[a] for a in adds], [ids[d] for d in deletes])])
    return Response(200)


def _many_profiles(req: Request, store: TalonOneTables, *, numeric: bool) -> Response:
    body = as_object(req.json(), "body", ("data",))
    entries = body["data"]
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "data: expected a non-empty array")
    parsed: list[tuple[str, list[Any], list[Any]]] = []
    total = 0
    for i, entry in enumerate(entries):
        where = f"data[{i}]"
        obj = as_object(entry, where, ("customerProfileId",), ("adds", "deletes"))
        profile = as_str(obj["customerProfileId"], f"{where}.customerProfileId", max_len=1000)
        adds: list[Any]
        deletes: list[Any]
        if numeric:
            adds = as_int_list(obj.get("adds", []), f"{where}.adds")
            deletes = as_int_list(obj.get("deletes", []), f"{where}.deletes")
        else:
            adds = as_str_list(obj.get("adds", []), f"{where}.adds")
            deletes = as_str_list(obj.get("deletes", []), f"{where}.deletes")
        _no_overlap(adds, deletes, where)
        total += len(adds) + len(deletes)
        parsed.append((profile, adds, deletes))
    _check_actions(total)
    all_ids = [a for _, adds, deletes in parsed for a in (*adds, *deletes)]
    if numeric:
        store.t1_check_audiences(all_ids)
        store.t1_apply_changes(parsed)
    else:
        ids = store.t1_audience_ids(all_ids)
        store.t1_apply_changes(
            [(p, [ids[a] for a in adds], [ids[d] for d in deletes]) for p, adds, deletes in parsed]
        )
    return Response(204)


def many_profiles_numeric(req: Request, store: TalonOneTables) -> Response:
    return _many_profiles(req, store, numeric=True)


def many_profiles_external(req: Request, store: TalonOneTables) -> Response:
    return _many_profiles(req, store, numeric=False)


# ---------------------------------------------------------------------- Integration API
_INVENTORY_FLAGS = ("profile", "referrals", "coupons", "loyalty", "giveaways", "achievements")


def inventory(req: Request, store: TalonOneTables) -> Response:
    for key in req.query:
        if key not in _INVENTORY_FLAGS:
            raise ApiError(400, f"unknown query parameter {key!r}")
    flags = {k: as_bool_param(req.query, k) for k in _INVENTORY_FLAGS}
    profile = store.t1_profile(req.params["integrationId"])
    out: dict[str, Any] = {}
    if flags["profile"]:
        out["profile"] = profile
    if flags["coupons"]:
        out["coupons"] = []
    if flags["referrals"]:
        out["referrals"] = []
    if flags["giveaways"]:
        out["giveaways"] = []
    if flags["loyalty"]:
        out["loyalty"] = {"programs": {}}
    if flags["achievements"]:
        out["achievements"] = []
    return json_response(out)


# ---------------------------------------------------------------------- Management API
_PAGING = ("pageSize", "skip", "sort", "withTotalResultSize")


def _paging(req: Request) -> tuple[int, int, bool]:
    for key in req.query:
        if key not in _PAGING:
            raise ApiError(400, f"unknown query parameter {key!r}")
    page_size = as_int_param(req.query, "pageSize", PAGE_SIZE_MAX, 1, PAGE_SIZE_MAX)
    skip = as_int_param(req.query, "skip", 0, 0)
    with_total = as_bool_param(req.query, "withTotalResultSize")
    return page_size, skip, with_total


def _page(data: list[dict[str, Any]], has_more: bool, total: int, with_total: bool) -> Response:
    out: dict[str, Any] = {"hasMore": has_more}
    if with_total:
        out["totalResultSize"] = total
    out["data"] = data
    return json_response(out)


def _audience_path_id(req: Request) -> int:
    text = req.params["audienceId"]
    if not text.isdigit():
        raise ApiError(400, f"audienceId must be an integer, got {text!r}")
    return int(text)


def list_audiences(req: Request, store: TalonOneTables) -> Response:
    page_size, skip, with_total = _paging(req)
    data, has_more, total = store.t1_list_audiences(page_size, skip)
    return _page(data, has_more, total, with_total)


def list_memberships(req: Request, store: TalonOneTables) -> Response:
    page_size, skip, with_total = _paging(req)
    data, has_more, total = store.t1_memberships(_audience_path_id(req), page_size, skip)
    return _page(data, has_more, total, with_total)


def export_memberships(req: Request, store: TalonOneTables) -> Response:
    if req.query:
        raise ApiError(400, f"unknown query parameter {next(iter(req.query))!r}")
    ids = store.t1_export(_audience_path_id(req))
    text = "profileintegrationid\n" + "".join(f"{i}\n" for i in ids)
    return Response(200, text.encode(), "application/csv")


CDP_ROUTES: tuple[Route, ...] = (
    Route("POST", "/cdp/audiences", create_audience, "cdp"),
    Route("PUT", "/cdp/audiences/{audienceId}", update_audience, "cdp"),
    Route("DELETE", "/cdp/audiences/{audienceId}", delete_audience, "cdp"),
    Route("PUT", "/cdp/customer_profiles/audiences", many_profiles_numeric, "cdp"),
    Route("PUT", "/cdp/customer_profile/audiences", many_profiles_numeric, "cdp"),
    Route("PUT", "/cdp/v2/customer_profiles/audiences", many_profiles_external, "cdp"),
    Route("PUT", "/cdp/customer_profile/{customerProfileId}/audiences", profile_audiences, "cdp"),
    Route("PUT", "/cdp/customer_profile/{customerProfileId}", update_profile, "cdp"),
)

INTEGRATION_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/customer_profiles/{integrationId}/inventory", inventory, "apikey"),
)

MANAGEMENT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/audiences", list_audiences, "management", rate_limited=True),
    Route(
        "GET",
        "/v1/audiences/{audienceId}/memberships",
        list_memberships,
        "management",
        rate_limited=True,
    ),
    Route(
        "GET",
        "/v1/audiences/{audienceId}/memberships/export",
        export_memberships,
        "management",
        rate_limited=True,
    ),
)


def render_cdp_error(err: ApiError, request_uuid: str) -> Response:
    """The CDP API's error shape."""
    return json_response(
        {"StatusCode": err.status, "Error": err.message, "RequestUUID": request_uuid},
        err.status,
    )


def render_management_error(err: ApiError, request_uuid: str) -> Response:
    """The Management (and Integration) API's error shape."""
    return json_response(
        {
            "message": err.message,
            "errors": [{"title": err.code, "details": err.message, "source": {}}],
            "StatusCode": err.status,
        },
        err.status,
    )
