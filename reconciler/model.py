"""The reconciler's values: segments, access, customers and links of one target.

Desired state (from the YAML) and remote state (from a target) are both a :class:`State`, so the
diff compares like with like. Membership is the bulk of the data: at millions of customers a
``State`` keeps it compact — customer ids are interned strings and every customer with the same
set of segments shares one ``frozenset`` object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

__all__ = [
    "EMPTY",
    "Segment",
    "State",
    "StateBuilder",
]

EMPTY: frozenset[str] = frozenset()

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment (Epsilon) or audience (Talon.One); identity is ``id``."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class State:
    """Everything one target holds that the reconciler reasons about.

    - ``segments``: segment id → :class:`Segment`
    - ``access``: segment id → advertiser team ids allowed to see it (absent: unknown/none)
    - ``customers``: customer ids known to exist on the target
    - ``links``: customer id → segment ids the customer belongs to (customers with no segment
      are absent)
    """

    segments: Mapping[str, Segment] = field(default_factory=lambda: MappingProxyType({}))
    access: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    customers: frozenset[str] = EMPTY
    links: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def members(self, segment_id: str) -> frozenset[str]:
        """Customer ids linked to ``segment_id`` (a scan: use for reports, not in hot loops)."""
        return frozenset(c for c, segs in self.links.items() if segment_id in segs)

    def members_by_segment(self) -> dict[str, set[str]]:
        """Segment id → member customer ids, for every segment with at least one member."""
        out: dict[str, set[str]] = {}
        for customer, segs in self.links.items():
            for seg in segs:
                out.setdefault(seg, set()).add(customer)
        return out

    def link_count(self) -> int:
        return sum(len(s) for s in self.links.values())

    def restricted_to(self, segment_ids: Iterable[str]) -> State:
        """The same state seen through a subset of segments (links to others dropped)."""
        keep = frozenset(segment_ids)
        builder = StateBuilder()
        for seg_id, seg in self.segments.items():
            if seg_id in keep:
                builder.add_segment(seg)
        for seg_id, teams in self.access.items():
            if seg_id in keep:
                builder.set_access(seg_id, teams)
        builder.add_customers(self.customers)
        for customer, segs in self.links.items():
            mine = segs & keep
            if mine:
                builder.set_links(customer, mine)
        return builder.build()


class StateBuilder:
    """Accumulates a :class:`State`, interning ids and sharing identical segment sets."""

    __slots__ = ("_access", "_customers", "_links", "_segments", "_sets")

    def __init__(self) -> None:
        self._segments: dict[str, Segment] = {}
        self._access: dict[str, frozenset[str]] = {}
        self._customers: set[str] = set()
        self._links: dict[str, frozenset[str]] = {}
        self._sets: dict[frozenset[str], frozenset[str]] = {EMPTY: EMPTY}

    def share(self, segment_ids: Iterable[str]) -> frozenset[str]:
        """The canonical frozenset for these ids (one object per distinct membership)."""
        key = frozenset(map(sys.intern, segment_ids))
        return self._sets.setdefault(key, key)

    def add_segment(self, segment: Segment) -> StateBuilder:
        self._segments[sys.intern(segment.id)] = segment
        return self

    def set_access(self, segment_id: str, teams: Iterable[str]) -> StateBuilder:
        self._access[sys.intern(segment_id)] = frozenset(teams)
        return self

    def add_customers(self, ids: Iterable[str]) -> StateBuilder:
        self._customers.update(map(sys.intern, ids))
        return self

    def set_links(self, customer_id: str, segment_ids: Iterable[str]) -> StateBuilder:
        shared = self.share(segment_ids)
        cid = sys.intern(customer_id)
        if shared:
            self._links[cid] = shared
        else:
            self._links.pop(cid, None)
        return self

    def set_links_many(
        self, rows: Iterable[tuple[str, K]], segments_of: Callable[[K], Iterable[str]]
    ) -> StateBuilder:
        """:meth:`set_links` for many customers at once, in order: ``rows`` are (customer id,
        key), where equal keys stand for the same segment list as the platform sent it (a
        tuple of ids, a joined string…), so ``segments_of(key)`` runs once per distinct key
        rather than once per customer."""
        known: dict[K, frozenset[str]] = {}
        links = self._links
        intern = sys.intern
        for customer_id, key in rows:
            shared = known.get(key)
            if shared is None:
                shared = known[key] = self.share(segments_of(key))
            if shared:
                links[intern(customer_id)] = shared
            else:
                links.pop(intern(customer_id), None)
        return self

    def add_link(self, customer_id: str, segment_id: str) -> StateBuilder:
        cid = sys.intern(customer_id)
        current = self._links.get(cid, EMPTY)
        if segment_id not in current:
            self._links[cid] = self.share((*current, segment_id))
        return self

    def build(self) -> State:
        return State(
            segments=MappingProxyType(dict(self._segments)),
            access=MappingProxyType(dict(self._access)),
            customers=frozenset(self._customers),
            links=MappingProxyType(dict(self._links)),
        )
