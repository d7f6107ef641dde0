"""Epsilon's answers, as documented, each checked in one place before the provider reads it:
the customer pages of ``GET /v1/customers`` (:func:`customer_page`) and the 400 bodies of writes
(:func:`error_text`, and :func:`unknown_segment`: the one that says a segment is gone).
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from annotated_types import Ge, MinLen
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from .._redact import EXCERPT, clip
from .._reply import Reply
from ..exceptions import StatusError

__all__ = ["Customer", "CustomerList", "customer_page", "error_text", "unknown_segment"]


class Customer(TypedDict):
    id: Annotated[str, MinLen(1)]
    segmentIds: list[str]


class CustomerList(TypedDict):
    customers: list[Customer]
    totalCount: NotRequired[Annotated[int, Ge(0)]]


def customer_page(reply: Reply, limit: int, asked: str) -> CustomerList:
    """A ``GET /v1/customers`` answer, checked: its documented shape, and no more customers
    than the ``limit`` asked for. An answer that breaks it is refused (a customer dropped from
    a read would have its whole segment list overwritten by the next apply)."""
    page = reply.parse(CustomerList)
    if len(page["customers"]) > limit:
        raise reply.error(
            f"the answer ({asked}) holds {len(page['customers']):,} customers, more than the "
            f"limit of {limit:,} asked for"
        )
    return page


def error_text(exc: StatusError) -> str:
    """The platform's 400 body: ``{"message", "additionalInfo": [{"code", "message"}]}``
    (already redacted by the HTTP client), as a short line."""
    body = exc.body
    if not isinstance(body, dict):
        return str(exc)
    parts = [str(body.get("message", ""))]
    for info in body.get("additionalInfo") or []:
        if isinstance(info, dict):
            parts.append(f"{info.get('code', '')}: {info.get('message', '')}")
    return clip(f"HTTP {exc.status}: " + "; ".join(p for p in parts if p), 2 * EXCERPT)


def unknown_segment(exc: StatusError) -> bool:
    """Whether a 400 says a segment it names does not exist (``SEGMENT_NOT_FOUND``, or a
    message about an unknown segment: the answer is not documented)."""
    body = exc.body
    if not isinstance(body, dict):
        return False
    infos = [i for i in body.get("additionalInfo") or [] if isinstance(i, dict)]
    if any(str(i.get("code", "")).upper() == "SEGMENT_NOT_FOUND" for i in infos):
        return True
    texts = [str(body.get("message", "")), *(str(i.get("message", "")) for i in infos)]
    return any(
        "segment" in t.lower() and ("unknown" in t.lower() or "not found" in t.lower())
        for t in texts
    )
