"""Talon.One, written through its CDP ("third-party") API and read through its Management API.

Follows Talon.One's published CDP and Management API specifications:

- audiences are created, renamed and deleted through ``/cdp/audiences`` (``ApiKey-v1`` key plus
  the ``customer-data-platform-name`` and ``destination-hostname`` headers); a 409 on create means
  the audience is already there, so the provider reads it back and renames it if needed;
- memberships are written as deltas with ``PUT /cdp/customer_profiles/audiences`` (numeric
  audience ids, at most 1000 adds + deletes per request): a link change costs its actions
  (:meth:`TalonOneProvider.cost`) and splits between requests (:func:`split_link`), so the
  executor fills every request across the whole step — ``ceil(actions / 1000)`` requests;
- reads go through the Management API (``ManagementKey-v1``, about 3 requests per second, paced
  by the HTTP client): the audience list maps each ``integrationId`` to its numeric ``id``, and
  one CSV export per managed audience gives its members;
- Talon.One has no access control and creates customer profiles implicitly: those phases do not
  exist here;
- an audience has no description the CDP API can set: the provider declares ``name`` as the
  only segment field, so the diff compares names and the plan says descriptions are not sent.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ProviderError, RemoteError, StatusError
from ..model import Segment, State, StateBuilder
from ..plan import Capabilities
from ..plan.changes import Action, Change, LinkChange, Phase, SegmentChange
from ._talonone_answers import PAGE_SIZE, Audience, audience_page, error_text, export_members
from ._talonone_links import MAX_ACTIONS, link_body, link_entries, pack_link_requests, split_link
from .base import ItemResult, Provider, ProviderContext, ReadScope
from .settings import Setting, credential, http_settings, number, text, url

if TYPE_CHECKING:
    from .._http import Http

__all__ = ["MAX_ACTIONS", "PAGE_SIZE", "TalonOneProvider", "pack_link_requests", "split_link"]

#: the largest export read: one request carries a whole audience (about 13 bytes a member, so
#: some 20 million members), far above a real one, and refused past it
MAX_EXPORT = 256 * 2**20
DEFAULT_PLATFORM_NAME = "audience-reconciler"


class TalonOneProvider(Provider):
    type: ClassVar[str] = "talonone"
    title: ClassVar[str] = "Talon.One CDP + Management API"
    capabilities: ClassVar[Capabilities] = Capabilities(
        # LINKS: membership actions per batch (cost()), one request each; the executor
        # fills every batch across the whole step, splitting a customer's actions (split())
        batch_size={Phase.SEGMENTS: 1, Phase.LINKS: MAX_ACTIONS},
        phases=frozenset({Phase.SEGMENTS, Phase.LINKS}),
        unsupported={
            (Phase.ACCESS, Action.UPDATE): "Talon.One audiences have no access control",
        },
        segment_fields=("name",),
        concurrency=8,
        offline_from_store=True,
    )
    settings_spec: ClassVar[tuple[Setting, ...]] = (
        url(
            "base_url",
            "Base URL",
            "Talon.One CDP (third-party) API base URL.",
            default="https://integration.talon.one",
        ),
        url(
            "management_url",
            "Management URL",
            "The deployment's Management API URL, e.g. https://mycompany.europe-west1.talon.one.",
            required=True,
        ),
        text(
            "platform_name",
            "Platform name",
            "Sent as `customer-data-platform-name`; recorded as the audience's integration.",
            required=True,
            minLength=1,
        ),
        text(
            "destination_host",
            "Destination host",
            "Sent as `destination-hostname`, e.g. mycompany.europe-west1.talon.one.",
            required=True,
            minLength=1,
        ),
        credential(
            "api_key",
            "API key",
            "Integration API key of the CDP third-party service (`ApiKey-v1`).",
        ),
        credential(
            "management_key",
            "Management key",
            "Management API key (`ManagementKey-v1`), used to read audiences and memberships.",
        ),
        number(
            "management_rps",
            "Management requests per second",
            "Rate limit for Management API reads.",
            default=3.0,
            exclusiveMinimum=0,
        ),
        *http_settings(capabilities.concurrency),
    )

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        context: ProviderContext,
    ) -> None:
        super().__init__(name, settings, credentials, context)
        base = str(settings.get("base_url") or "https://integration.talon.one").rstrip("/")
        host = settings.get("destination_host")
        management = settings.get("management_url") or (f"https://{host}" if host else None)
        if not management:
            raise ProviderError(
                f"target {name!r}: Talon.One needs management_url (or destination_host)"
            )
        if not host:
            host = urllib.parse.urlsplit(str(management)).hostname
        self.platform_name = str(settings.get("platform_name") or DEFAULT_PLATFORM_NAME)
        self.destination_host = str(host)
        api_key, management_key = credentials["api_key"], credentials["management_key"]
        self.declare_http(
            "cdp",
            base,
            {
                "Authorization": f"ApiKey-v1 {api_key}",
                "customer-data-platform-name": self.platform_name,
                "destination-hostname": self.destination_host,
            },
        )
        rps = float(settings.get("management_rps") or 3.0)
        self.declare_http(
            "management",
            str(management),
            {"Authorization": f"ManagementKey-v1 {management_key}"},
            rate_limit=rps,
            max_connections=max(1, min(self.concurrency, int(rps) or 1)),
        )
        #: audience integration id → numeric id, and → name (from the last audience list)
        self._ids: dict[str, int] = {}
        self._names: dict[str, str] = {}
        self._listed = 0
        self._list_lock = asyncio.Lock()

    @classmethod
    def sandbox_overrides(cls, sandbox: Any) -> tuple[Mapping[str, Any], Mapping[str, str]]:
        """The sandbox's URLs and credentials, and its Management API rate limit as the pace
        of the reads (3 a second against ``--sandbox``'s default; a sandbox without a limit
        leaves the target's own)."""
        creds = sandbox.credentials
        settings: dict[str, Any] = {
            "base_url": sandbox.talonone_url,
            "management_url": sandbox.talonone_management_url,
            "destination_host": "sandbox.talon.one",
        }
        rate = float(sandbox.talonone_rate_limit)
        if rate > 0:
            settings["management_rps"] = rate
        return (
            settings,
            {
                "api_key": creds["talonone_api_key"],
                "management_key": creds["talonone_management_key"],
            },
        )

    @property
    def _cdp(self) -> Http:
        """The Integration API's client (customer profiles, audience memberships)."""
        return self.client("cdp")

    @property
    def _management(self) -> Http:
        """The Management API's client (audiences, exports), paced at ``management_rps``."""
        return self.client("management")

    # -- read -----------------------------------------------------------------------------
    async def read_live(self, scope: ReadScope, known: StateBuilder, last: State) -> frozenset[str]:
        audiences = await self._list_audiences()
        marked = frozenset(
            iid for iid, a in audiences.items() if a.get("integration") == self.platform_name
        )
        wanted = sorted((scope.segments | last.segments.keys() | marked) & audiences.keys())
        if scope.every_segment:
            wanted = sorted(audiences)
        gate = asyncio.Semaphore(self.concurrency)

        async def export(iid: str) -> list[str] | None:
            async with gate:
                return await self._export(self._ids[iid])

        exported = await asyncio.gather(*(export(iid) for iid in wanted))
        builder = known
        gone = {iid for iid, members in zip(wanted, exported, strict=True) if members is None}
        for iid, audience in audiences.items():
            if iid in gone:
                continue
            builder.add_segment(Segment(iid, audience["name"]))
        per_customer: dict[str, list[str]] = {}
        for iid, members in zip(wanted, exported, strict=True):
            for customer in members or ():
                per_customer.setdefault(customer, []).append(iid)
        for customer, segs in per_customer.items():
            builder.set_links(customer, segs)
        return marked - gone

    async def _list_audiences(self) -> dict[str, Audience]:
        """Every audience with an integration id (``GET /v1/audiences``, paged); refreshes the
        integration id → numeric id map used by link writes.

        The pages are bounded by the ``totalResultSize`` the first one reports: reading stops
        there, and more audiences than it, or a page that repeats the one before (a platform
        ignoring ``skip``), is an error, never an endless read."""
        found: dict[str, Audience] = {}
        skip = 0
        total: int | None = None
        previous: list[int] = []
        while True:
            reply = await self._management.request(
                "GET",
                "/v1/audiences",
                params={"pageSize": PAGE_SIZE, "skip": skip, "withTotalResultSize": "true"},
                expect=(200,),
            )
            data, has_more, reported = audience_page(reply, skip)
            total = reported if total is None else total
            ids = [a["id"] for a in data]
            if ids and ids == previous:
                raise reply.error(
                    f"the page at skip={skip} repeats the page before it (the platform ignores "
                    "skip?); the read is refused"
                )
            if skip + len(data) > total:
                raise reply.error(
                    f"the pages hold more audiences ({skip + len(data):,} by skip={skip}) than "
                    f"the totalResultSize of {total:,} the first page reported (did the "
                    "audiences change during the read? run again); the read is refused"
                )
            for audience in data:
                iid = audience.get("integrationId")
                if iid:
                    found[iid] = audience
            skip += len(data)
            previous = ids
            if not has_more or not data or skip >= total:
                break
        self._ids = {iid: a["id"] for iid, a in found.items()}
        self._names = {iid: a["name"] for iid, a in found.items()}
        self._listed += 1
        return found

    async def _export(self, audience_id: int) -> list[str] | None:
        """The members of one audience (``None``: it disappeared since the list)."""
        reply = await self._management.request(
            "GET",
            f"/v1/audiences/{audience_id}/memberships/export",
            expect=(200, 404),
            max_body=MAX_EXPORT,
        )
        if reply.status_code == 404:
            return None
        return export_members(reply)

    async def _refresh_ids(self, needed: Iterable[str]) -> None:
        """List the audiences again if one of ``needed`` has no known numeric id (one list call,
        shared by every concurrent batch that needs it)."""
        if all(s in self._ids for s in needed):
            return
        seen = self._listed
        async with self._list_lock:
            if self._listed == seen:
                await self._list_audiences()

    # -- write ----------------------------------------------------------------------------
    def cost(self, change: Change) -> int:
        if isinstance(change, LinkChange):
            return len(change.added) + len(change.removed)
        return 1

    def split(self, change: Change, room: int) -> tuple[Change, Change] | None:
        return split_link(change, room) if isinstance(change, LinkChange) else None

    async def write_batch(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        if phase is Phase.LINKS:
            return await self._write_links(changes)
        if phase is not Phase.SEGMENTS:
            raise ProviderError(f"Talon.One has no {phase} phase")
        if len(changes) != 1:
            raise ProviderError("Talon.One writes audiences one at a time")
        return [await self._write_segment(changes[0])]

    def error_text(self, exc: StatusError) -> str:
        return error_text(exc)

    @staticmethod
    def _audience_path(audience_id: str) -> str:
        return f"/cdp/audiences/{urllib.parse.quote(audience_id, safe='')}"

    async def _write_segment(self, change: Change) -> ItemResult:
        match change:
            case SegmentChange(action=Action.CREATE, after=Segment() as seg):
                await self._create(seg)
            case SegmentChange(action=Action.UPDATE, after=Segment() as seg):
                await self._rename(seg)  # the name is the only field the diff compares
            case SegmentChange(action=Action.DELETE, key=audience_id):
                await self._cdp.request(
                    "DELETE", self._audience_path(audience_id), expect=(200, 204, 404)
                )
                self._ids.pop(audience_id, None)
                self._names.pop(audience_id, None)
            case SegmentChange(action=Action.FORGET):
                pass  # stop managing it; the audience stays
            case _:
                raise ProviderError(f"Talon.One cannot apply {change.phase} {change.action}")
        return ItemResult(change.key, True)

    async def _create(self, seg: Segment) -> None:
        body = {"audienceId": seg.id, "audienceName": seg.name}
        response = await self._cdp.request(
            "POST", "/cdp/audiences", json=body, expect=(200, 201, 409)
        )
        if response.status_code != 409:
            created = response.json()
            if isinstance(created, dict) and isinstance(created.get("id"), int):
                self._ids[seg.id] = created["id"]
                self._names[seg.id] = seg.name
            return
        # it exists already (a retried create, or made outside this run): read it, rename it
        await self._list_audiences()
        if self._names.get(seg.id) != seg.name:
            await self._rename(seg)

    async def _rename(self, seg: Segment) -> None:
        body = {"audienceId": seg.id, "audienceName": seg.name}
        response = await self._cdp.request(
            "PUT", self._audience_path(seg.id), json=body, expect=(200, 404)
        )
        if response.status_code == 404:  # deleted behind our back: make it exist again
            await self._create(seg)
        else:
            self._names[seg.id] = seg.name

    async def _write_links(self, changes: Sequence[Change]) -> list[ItemResult]:
        links = [c for c in changes if isinstance(c, LinkChange)]
        if len(links) != len(changes):
            raise ProviderError("Talon.One: a links batch holds only link changes")
        await self._refresh_ids(s for c in links for s in (*c.added, *c.removed))
        entries, errors = link_entries(links, self._ids)
        for request in pack_link_requests(entries):
            try:
                await self._cdp.request(
                    "PUT",
                    "/cdp/customer_profiles/audiences",
                    json=link_body(request),
                    expect=(200, 204),
                )
            except StatusError as exc:
                # a 400 refuses the batch, so the executor splits it to isolate the bad
                # customer (the requests already sent are deltas: sending them again is
                # harmless); any other status fails this request's customers
                sent = {key for key, _, _ in request}
                for result in self.refused([c for c in links if c.key in sent], exc):
                    errors.setdefault(result.key, result.error)
            except RemoteError as exc:
                for key, _, _ in request:
                    errors.setdefault(key, str(exc))
        return [ItemResult(c.key, c.key not in errors, errors.get(c.key, "")) for c in links]
