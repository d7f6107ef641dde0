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
  ``epsilon-feed`` target, which can.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._http import Http, HttpStats, StatusError
from ..changes import AccessChange, Action, Change, CustomerChange, LinkChange, Phase, SegmentChange
from ..exceptions import ProviderError
from ..model import StateBuilder
from .base import (
    BatchRejected,
    Capabilities,
    ItemResult,
    Provider,
    ProviderContext,
    ReadScope,
    Refresh,
    RemoteState,
    Source,
)

__all__ = ["EpsilonProvider"]

PAGE_SIZE = 1000

_FEED_HINT = "use an epsilon-feed target (the segment file) for that"


def _error_text(exc: StatusError) -> str:
    """The platform's 400 body: ``{"message", "additionalInfo": [{"code", "message"}]}``."""
    try:
        body = exc.response.json()
    except ValueError:
        return str(exc)
    if not isinstance(body, dict):
        return str(exc)
    parts = [str(body.get("message", ""))]
    for info in body.get("additionalInfo") or []:
        if isinstance(info, dict):
            parts.append(f"{info.get('code', '')}: {info.get('message', '')}")
    return f"HTTP {exc.status}: " + "; ".join(p for p in parts if p)


class EpsilonProvider(Provider):
    type: ClassVar[str] = "epsilon"
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
        secrets = (bearer, key)
        common = {"accept": "application/json"}
        self._partner = Http(
            base,
            headers={**common, "Authorization": f"Bearer {bearer}"},
            secrets=secrets,
            retry=context.retry,
            max_connections=self.concurrency,
        )
        self._integration = Http(
            base,
            headers={**common, "Authorization": f"Basic {key}"},
            secrets=secrets,
            retry=context.retry,
            max_connections=self.concurrency,
        )
        self.retailer_team_id = str(settings["retailer_team_id"])
        self.source_id = str(settings.get("source_id") or "DEFAULT_SOURCE_ID")

    @classmethod
    def sandbox_overrides(cls, sandbox: Any) -> tuple[Mapping[str, Any], Mapping[str, str]]:
        creds = sandbox.credentials
        return (
            {"base_url": sandbox.epsilon_url},
            {"bearer_token": creds["epsilon_bearer_token"], "api_key": creds["epsilon_api_key"]},
        )

    def http_stats(self) -> list[HttpStats]:
        return [self._partner.stats, self._integration.stats]

    async def aclose(self) -> None:
        await self._partner.aclose()
        await self._integration.aclose()

    # -- read -----------------------------------------------------------------------------
    async def read(self, scope: ReadScope) -> RemoteState:
        last = self.context.store.load(self.name)
        sources = {Phase.SEGMENTS: Source.STATE_STORE, Phase.ACCESS: Source.STATE_STORE}
        if scope.refresh is Refresh.NONE:
            sources |= {Phase.CUSTOMERS: Source.STATE_STORE, Phase.LINKS: Source.STATE_STORE}
            return RemoteState(last, sources)
        builder = StateBuilder()
        for seg in last.segments.values():
            builder.add_segment(seg)
        for seg_id, teams in last.access.items():
            builder.set_access(seg_id, teams)
        skip = 0
        while True:
            response = await self._integration.request(
                "GET", "/v1/customers", params={"limit": PAGE_SIZE, "skip": skip}, expect=(200,)
            )
            page = self._customers_of(response.json())
            for item in page:
                cid = str(item["id"])
                builder.add_customers((cid,))
                segs = item.get("segmentIds") or ()
                if segs:
                    builder.set_links(cid, (str(s) for s in segs))
            if len(page) < PAGE_SIZE:
                break
            skip += len(page)
        sources |= {Phase.CUSTOMERS: Source.LIVE, Phase.LINKS: Source.LIVE}
        return RemoteState(builder.build(), sources)

    @staticmethod
    def _customers_of(body: Any) -> list[dict[str, Any]]:
        items = body.get("customers") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ProviderError("Epsilon: unexpected response to GET /v1/customers")
        return [i for i in items if isinstance(i, dict) and "id" in i]

    # -- write ----------------------------------------------------------------------------
    async def write(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        try:
            if phase is Phase.CUSTOMERS:
                return await self._create_customers(changes)
            if len(changes) != 1:
                raise ProviderError(f"Epsilon writes {phase} one at a time")
            return [await self._write_one(changes[0])]
        except StatusError as exc:
            if exc.status == 400:
                raise BatchRejected(_error_text(exc)) from None
            if exc.status in (401, 403):
                raise ProviderError(
                    f"target {self.name!r}: Epsilon refused the credentials ({exc})"
                ) from None
            return [ItemResult(c.key, False, _error_text(exc)) for c in changes]

    async def _write_one(self, change: Change) -> ItemResult:
        match change:
            case SegmentChange(action=Action.CREATE, after=seg) if seg is not None:
                body: dict[str, Any] = {
                    "segment": {
                        "segmentId": seg.id,
                        "sourceId": self.source_id,
                        "name": seg.name,
                        "description": seg.description,
                        "retailerTeamId": self.retailer_team_id,
                    }
                }
                # 409: it exists already (a retried create, or an earlier run that died before
                # recording it). The API cannot read it back to compare.
                await self._partner.request(
                    "POST", "/v1/segments", json=body, expect=(200, 201, 409)
                )
            case SegmentChange(action=Action.DELETE | Action.FORGET):
                pass  # nothing the API can do; the state store stops managing it
            case AccessChange(key=seg_id, after=teams):
                path = f"/v1/segments/{urllib.parse.quote(seg_id, safe='')}:manage-access"
                await self._partner.request("POST", path, json={"accessTeamIds": sorted(teams)})
            case LinkChange(key=cid, after=segs):
                link: dict[str, Any] = {
                    "customerId": cid,
                    "teamId": self.retailer_team_id,
                    "segments": {"segmentIds": sorted(segs)},
                }
                await self._integration.request("POST", "/v1/customers/manage-segments", json=link)
            case _:
                raise ProviderError(f"Epsilon cannot apply {change.phase} {change.action}")
        return ItemResult(change.key, True)

    async def _create_customers(self, changes: Sequence[Change]) -> list[ItemResult]:
        if any(not isinstance(c, CustomerChange) or c.action is not Action.CREATE for c in changes):
            raise ProviderError("Epsilon can only create customers")
        body = {"customers": [{"id": c.key} for c in changes]}
        await self._integration.request("POST", "/v1/customers", json=body)
        return [ItemResult(c.key, True) for c in changes]
