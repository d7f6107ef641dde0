"""Epsilon Retail Media, through its Partner API (segments) and Integration API (customers).

Follows the platform's published contract (seed document "Sync Customers & Audience" and
the Integration API reference):

- segments and access lists: Bearer token; created, never read back (the API has no read), so
  the state store holds what was applied;
- customers: Basic key; created in upserts of at most 100;
- links: one ``manage-segments`` request per customer carrying the customer's *whole* segment
  list — the managed segments it should have, plus every segment this config does not manage,
  carried over from the live read;
- the API cannot rename, re-describe or delete a segment: the plan says so and points to the
  ``epsilon-feed`` target, which can;
- when the platform has lost a segment the state store remembers (deleted in its UI, an account
  reset), the write that needs it says so — a link answered 400 naming an unknown segment, an
  access list answered 404 — and the provider re-creates the segment from the state store, sends
  its access list again, and retries the write once (:meth:`EpsilonProvider._restore`). How
  Epsilon answers a link to an unknown segment is not documented: the provider reads the
  sandbox's answer (``SEGMENT_NOT_FOUND``, or a message naming an unknown segment).
- customers are read as ``{"customers": [{"id", "segmentIds": [...]}, ...], "totalCount"}``
  (checked in one place, :func:`~._epsilon_answers.customer_page`): an answer of another shape
  is refused, never read in part, since a customer missing from the read would have its segment
  list overwritten.
"""

from __future__ import annotations

import asyncio
import itertools
import urllib.parse
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ProviderError, StatusError
from ..model import Segment, State, StateBuilder
from ..plan import Capabilities
from ..plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from .base import ItemResult, Provider, ProviderContext, ReadScope
from .settings import Setting, credential, http_settings, text, url

if TYPE_CHECKING:
    from .._http import Http, Reply
    from ._epsilon_answers import Customer

# the answers' checks (._epsilon_answers) are imported where an answer is read: a plan that
# reads nothing (--refresh=false) never imports them (nor annotated-types, ~4 ms)

__all__ = ["EpsilonProvider"]

PAGE_SIZE = 1000
#: the most characters of customer ids one filtered read puts in its URL
_URL_BUDGET = 6000

_FEED_HINT = "use an epsilon-feed target (the segment file) for that"


def _segment_ids(segs: tuple[str, ...]) -> tuple[str, ...]:
    return segs


def _id_batches(ids: list[str]) -> list[list[str]]:
    """``ids`` cut into ``customerIds`` filters whose URLs stay short."""
    batches: list[list[str]] = []
    current: list[str] = []
    length = 0
    for cid in ids:
        cost = len(urllib.parse.quote(cid, safe="")) + len("&customerIds=")
        if current and (length + cost > _URL_BUDGET or len(current) >= PAGE_SIZE):
            batches.append(current)
            current, length = [], 0
        current.append(cid)
        length += cost
    if current:
        batches.append(current)
    return batches


class EpsilonProvider(Provider):
    type: ClassVar[str] = "epsilon"
    title: ClassVar[str] = "Epsilon Retail Media API"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batch_size={Phase.SEGMENTS: 1, Phase.ACCESS: 1, Phase.CUSTOMERS: 100, Phase.LINKS: 1},
        unsupported={
            (Phase.SEGMENTS, Action.UPDATE): "Epsilon's API cannot rename or re-describe a "
            f"segment, so this change is not applied; {_FEED_HINT}",
        },
        caveats={
            (Phase.SEGMENTS, Action.DELETE): "Epsilon's API cannot delete a segment: its "
            "members are unlinked, its access list is cleared and the reconciler stops managing "
            f"it, but the segment stays on the platform; {_FEED_HINT}",
        },
        concurrency=16,
        reads_by_id=True,
        offline_from_store=True,
    )
    stored_phases: ClassVar[frozenset[Phase]] = frozenset({Phase.SEGMENTS, Phase.ACCESS})
    settings_spec: ClassVar[tuple[Setting, ...]] = (
        url(
            "base_url",
            "Base URL",
            "The retailer's Epsilon API base URL, without `/v1` (the provider appends "
            "`/v1/...`), e.g. https://integration-brandco.citrusad.com.",
            required=True,
        ),
        text(
            "retailer_team_id",
            "Retailer team id",
            "The retailer's team UUID (sent as `retailerTeamId` and `teamId`).",
            required=True,
            pattern="^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        ),
        text(
            "source_id",
            "Source id",
            "The `sourceId` sent when creating segments.",
            default="DEFAULT_SOURCE_ID",
            minLength=1,
        ),
        credential("bearer_token", "Bearer token", "Partner API bearer token (segments, access)."),
        credential("api_key", "API key", "Integration API key (customers, links), sent as Basic."),
        *http_settings(capabilities.concurrency, adaptive=True),
    )

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        context: ProviderContext,
    ) -> None:
        super().__init__(name, settings, credentials, context)
        base = str(settings["base_url"]).rstrip("/")
        bearer, key = credentials["bearer_token"], credentials["api_key"]
        self.declare_http("partner", base, {"Authorization": f"Bearer {bearer}"})
        self.declare_http("integration", base, {"Authorization": f"Basic {key}"})
        self.retailer_team_id = str(settings["retailer_team_id"])
        self.source_id = str(settings.get("source_id") or "DEFAULT_SOURCE_ID")
        #: segment id → its restoration in this run (True: it had to be re-created)
        self._restoring: dict[str, asyncio.Future[bool]] = {}

    @classmethod
    def sandbox_overrides(cls, sandbox: Any) -> tuple[Mapping[str, Any], Mapping[str, str]]:
        creds = sandbox.credentials
        return (
            {"base_url": sandbox.epsilon_url},
            {"bearer_token": creds["epsilon_bearer_token"], "api_key": creds["epsilon_api_key"]},
        )

    @property
    def _partner(self) -> Http:
        """The Partner API's client (segments, access)."""
        return self.client("partner")

    @property
    def _integration(self) -> Http:
        """The Integration API's client (customers, links)."""
        return self.client("integration")

    # -- read -----------------------------------------------------------------------------
    async def read_live(self, scope: ReadScope, known: StateBuilder, last: State) -> frozenset[str]:
        # membership is read live: segments and access (no read exists) are the state store's
        await self._read_customers(known)
        return frozenset()

    def targeted_batches(self, ids: Sequence[str], customers: int) -> list[list[str]] | None:
        batches = _id_batches(list(ids))
        return batches if len(batches) < -(-customers // PAGE_SIZE) else None

    async def read_ids(self, batches: Sequence[Sequence[str]], known: StateBuilder) -> None:
        found = await self._read_batches(batches)
        known.add_customers(found)
        known.set_links_many(((cid, tuple(segs)) for cid, segs in found.items()), _segment_ids)

    async def _read_batches(self, batches: Sequence[Sequence[str]]) -> dict[str, list[str]]:
        """Customer id → its segment ids, for the listed customers that exist (one filtered
        read per batch, as many at a time as the client's limit allows)."""
        from ._epsilon_answers import customer_page

        gate = asyncio.Semaphore(self.max_concurrency)  # the client's limit decides
        found: dict[str, list[str]] = {}

        async def one(batch: Sequence[str]) -> None:
            async with gate:
                reply = await self._integration.request(
                    "GET",
                    "/v1/customers",
                    params=[("limit", str(len(batch))), *(("customerIds", c) for c in batch)],
                    expect=(200,),
                )
            page = customer_page(reply, len(batch), f"{len(batch)} customerIds")
            asked = frozenset(batch)
            for item in page["customers"]:
                if item["id"] not in asked:
                    raise reply.error(
                        f"the answer holds customer {item['id']!r}, which was not asked for "
                        "(the customerIds filter was not applied)"
                    )
                found[item["id"]] = item["segmentIds"]

        await asyncio.gather(*(one(b) for b in batches))
        return found

    async def _page(self, skip: int) -> tuple[list[Customer], int, Reply]:
        from ._epsilon_answers import customer_page

        reply = await self._integration.request(
            "GET", "/v1/customers", params={"limit": PAGE_SIZE, "skip": skip}, expect=(200,)
        )
        page = customer_page(reply, PAGE_SIZE, f"skip={skip}")
        total = page.get("totalCount")
        if total is None:
            raise reply.error(
                f"the answer (skip={skip}) has no totalCount, so its pages cannot be bounded"
            )
        return page["customers"], total, reply

    async def _read_customers(self, builder: StateBuilder) -> None:
        """Every customer, page by page, in page order; stops at the first short page, or at
        the ``totalCount`` the first page reports.

        That total gives every other offset up front, so the rest are fetched ``concurrency``
        at a time (a sliding window: at most that many pages are held at once). The pages are
        bounded by it: more customers than it reports, or a page that repeats the one before
        (a platform ignoring ``skip``), is an error, never an endless read.
        """
        page, total, _ = await self._page(0)
        self._add_page(builder, page)
        read = len(page)
        if len(page) < PAGE_SIZE or read >= total:
            return
        previous = [c["id"] for c in page]
        offsets = iter(range(read, total, PAGE_SIZE))
        window: deque[asyncio.Task[tuple[list[Customer], int, Reply]]] = deque(
            asyncio.ensure_future(self._page(o))
            for o in itertools.islice(offsets, max(1, self.concurrency))
        )
        try:
            while window:
                page, _, reply = await window.popleft()
                ids = [c["id"] for c in page]
                if ids and ids == previous:
                    raise reply.error(
                        f"the page at skip={read} repeats the page before it (the platform "
                        "ignores skip?); the read is refused"
                    )
                read += len(page)
                if read > total:
                    raise reply.error(
                        f"the pages hold more customers ({read:,} by skip={read - len(page)}) "
                        f"than the totalCount of {total:,} the first page reported (did the "
                        "customers change during the read? run again); the read is refused"
                    )
                self._add_page(builder, page)
                if len(page) < PAGE_SIZE:
                    return
                previous = ids
                nxt = next(offsets, None)
                if nxt is not None:
                    window.append(asyncio.ensure_future(self._page(nxt)))
        finally:
            for task in window:
                task.cancel()
            await asyncio.gather(*window, return_exceptions=True)

    @staticmethod
    def _add_page(builder: StateBuilder, page: list[Customer]) -> None:
        builder.add_customers([item["id"] for item in page])
        # customers with the same list (as sent) share one frozenset, built once
        builder.set_links_many(
            ((item["id"], tuple(segs)) for item in page if (segs := item["segmentIds"])),
            _segment_ids,
        )

    # -- write ----------------------------------------------------------------------------
    async def write_batch(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        if phase is Phase.CUSTOMERS:
            return await self._create_customers(changes)
        if len(changes) != 1:
            raise ProviderError(f"Epsilon writes {phase} one at a time")
        return [await self._write_one(changes[0])]

    def error_text(self, exc: StatusError) -> str:
        from ._epsilon_answers import error_text

        return error_text(exc)

    async def _write_one(self, change: Change) -> ItemResult:
        match change:
            case SegmentChange(action=Action.CREATE, after=seg) if seg is not None:
                # 409: it exists already (a retried create, or an earlier run that died before
                # recording it). The API cannot read it back to compare.
                await self._create_segment(seg)
            case SegmentChange(action=Action.DELETE | Action.FORGET):
                pass  # nothing the API can do; the state store stops managing it
            case AccessChange(key=seg_id, after=teams):
                try:
                    await self._set_access(seg_id, teams)
                except StatusError as exc:
                    # 404: the segment is gone from the platform (the path names nothing else)
                    if exc.status != 404 or not await self._restore([seg_id]):
                        raise
                    await self._set_access(seg_id, teams)
            case LinkChange(key=cid, after=segs):
                try:
                    await self._link(cid, segs)
                except StatusError as exc:
                    from ._epsilon_answers import error_text, unknown_segment

                    if exc.status != 400 or not unknown_segment(exc):
                        raise
                    if not await self._restore(sorted(segs)):
                        return ItemResult(
                            cid,
                            False,
                            f"{error_text(exc)} (the segments of this customer that the "
                            "config manages are on Epsilon; an unknown one is not managed "
                            "here, so it cannot be re-created)",
                        )
                    await self._link(cid, segs)
            case _:
                raise ProviderError(f"Epsilon cannot apply {change.phase} {change.action}")
        return ItemResult(change.key, True)

    async def _create_segment(self, seg: Segment) -> bool:
        """``POST /v1/segments``; False when it exists already (409)."""
        body: dict[str, Any] = {
            "segment": {
                "segmentId": seg.id,
                "sourceId": self.source_id,
                "name": seg.name,
                "description": seg.description,
                "retailerTeamId": self.retailer_team_id,
            }
        }
        response = await self._partner.request(
            "POST", "/v1/segments", json=body, expect=(200, 201, 409)
        )
        return response.status_code != 409

    async def _set_access(self, seg_id: str, teams: frozenset[str]) -> None:
        path = f"/v1/segments/{urllib.parse.quote(seg_id, safe='')}:manage-access"
        await self._partner.request("POST", path, json={"accessTeamIds": sorted(teams)})

    async def _link(self, cid: str, segs: frozenset[str]) -> None:
        link: dict[str, Any] = {
            "customerId": cid,
            "teamId": self.retailer_team_id,
            "segments": {"segmentIds": sorted(segs)},
        }
        await self._integration.request("POST", "/v1/customers/manage-segments", json=link)

    async def _restore(self, seg_ids: Sequence[str]) -> bool:
        """Make the segments of ``seg_ids`` that the state store remembers exist again, after a
        write said one is gone: each is created again (a 409 says it was there) and, when it
        had to be, its access list as last applied is sent again. Once per segment per apply,
        shared by every write waiting on it. True when one was re-created (worth retrying)."""
        last = self.last_applied()
        waits: list[asyncio.Future[bool]] = []
        for seg_id in seg_ids:
            seg = last.segments.get(seg_id)
            if seg is None:
                continue  # not ours to re-create: its name and description are unknown
            found = self._restoring.get(seg_id)
            if found is None:
                teams = last.access.get(seg_id, frozenset())
                found = asyncio.ensure_future(self._recreate(seg, teams))
                self._restoring[seg_id] = found
            waits.append(found)
        return any(await asyncio.gather(*waits))

    async def _recreate(self, seg: Segment, teams: frozenset[str]) -> bool:
        if not await self._create_segment(seg):
            return False
        if teams:
            await self._set_access(seg.id, teams)
        return True

    async def _create_customers(self, changes: Sequence[Change]) -> list[ItemResult]:
        if any(not isinstance(c, CustomerChange) or c.action is not Action.CREATE for c in changes):
            raise ProviderError("Epsilon can only create customers")
        body = {"customers": [{"id": c.key} for c in changes]}
        await self._integration.request("POST", "/v1/customers", json=body)
        return [ItemResult(c.key, True) for c in changes]
