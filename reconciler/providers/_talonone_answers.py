"""Talon.One's answers, as documented, each checked in one place before the provider reads it:
the Management API's audience pages (:func:`audience_page`) and membership exports
(:func:`export_members`), and the error bodies of both APIs (:func:`error_text`).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, NotRequired

from annotated_types import Ge
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from .._redact import EXCERPT, clip
from .._reply import Reply
from ..exceptions import StatusError

__all__ = [
    "EXPORT_COLUMN",
    "PAGE_SIZE",
    "Audience",
    "AudienceList",
    "audience_page",
    "error_text",
    "export_members",
]

#: Management API page size (its maximum)
PAGE_SIZE = 1000
#: the CSV column of a membership export
EXPORT_COLUMN = "profileintegrationid"


class Audience(TypedDict):
    id: int
    name: str
    integrationId: NotRequired[str | None]
    integration: NotRequired[str | None]


class AudienceList(TypedDict):
    hasMore: bool
    totalResultSize: NotRequired[Annotated[int, Ge(0)]]
    data: list[Audience]


def audience_page(reply: Reply, skip: int) -> tuple[list[Audience], bool, int]:
    """A ``GET /v1/audiences`` answer, checked: its documented shape (with the
    ``totalResultSize`` asked for) and no more audiences than a page holds."""
    page = reply.parse(AudienceList)
    total = page.get("totalResultSize")
    if total is None:
        raise reply.error(
            f"the answer (skip={skip}) has no totalResultSize although withTotalResultSize=true "
            "asked for it, so its pages cannot be bounded"
        )
    if len(page["data"]) > PAGE_SIZE:
        raise reply.error(
            f"the answer (skip={skip}) holds {len(page['data']):,} audiences, more than the "
            f"pageSize of {PAGE_SIZE:,} asked for"
        )
    return page["data"], page["hasMore"], total


def error_text(exc: StatusError) -> str:
    """The CDP error body ``{"StatusCode", "Error", "RequestUUID"}`` (or the Management API's
    ``{"message", ...}``, already redacted by the HTTP client), as a short line."""
    body = exc.body
    if isinstance(body, dict):
        text = body.get("Error") or body.get("message")
        if text:
            return clip(f"HTTP {exc.status}: {text}", 2 * EXCERPT)
    return str(exc)


def export_members(reply: Reply) -> list[str]:
    """The members of a ``GET /v1/audiences/{id}/memberships/export`` answer: a CSV of one
    :data:`EXPORT_COLUMN` column (an empty body: no members)."""
    try:
        rows = csv.reader(io.StringIO(reply.text))
        header = next(rows, None)
        if header is None:
            return []
        if [h.strip().lower() for h in header] != [EXPORT_COLUMN]:
            raise reply.error(
                f"the export's header is {clip(','.join(header))!r}, not {EXPORT_COLUMN!r}"
            )
        return [row[0] for row in rows if row and row[0]]
    except csv.Error as exc:
        raise reply.error(f"the export is not a readable CSV ({exc})") from None
