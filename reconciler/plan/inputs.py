"""What a plan is made from, besides the desired state: the remote as read, where each of its
facts came from, how much was read, and what the platform can do (as data the plan reads).

Providers produce these values; the plan only reads them, so they live here, below the
providers (a platform's limits become plan warnings without the plan knowing the platform).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ..model import EMPTY, State
from .changes import Action, Phase

__all__ = ["Capabilities", "Refresh", "RemoteState", "Source"]


class Source(StrEnum):
    """Where a fact in a remote state comes from (the value is what a plan shows and saves)."""

    LIVE = "live read"
    STATE_STORE = "state store"
    FEED = "last feed written"
    #: Refresh.AUTO on a large target: the customers that changed (and a sample) read live
    TARGETED = "live read of the changed customers and a sample, the rest from the state store"


class Refresh(StrEnum):
    #: read live everything the platform can give back
    FULL = "full"
    #: read live what the plan needs: on a platform that reads customers by id, the
    #: customers whose desired or last-applied membership differs, plus a bounded sample of
    #: the rest for drift (see :mod:`reconciler.membership`); elsewhere the same as FULL
    AUTO = "auto"
    #: plan from the state store alone (fast feedback; says so in the plan)
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do, as data the plan reads."""

    #: items per write request, per phase
    batch_size: Mapping[Phase, int]
    #: the phases the platform has at all (Talon.One: no access control, implicit customers)
    phases: frozenset[Phase] = frozenset(Phase)
    #: (phase, action) the platform cannot do → the warning shown instead of the change
    unsupported: Mapping[tuple[Phase, Action], str] = field(default_factory=dict)
    #: (phase, action) done only in part → the caveat shown beside the change
    caveats: Mapping[tuple[Phase, Action], str] = field(default_factory=dict)
    #: the segment fields the platform carries (the diff compares only these)
    segment_fields: tuple[str, ...] = ("name", "description")
    #: concurrent requests within a phase (a target's ``concurrency`` setting overrides it)
    concurrency: int = 8
    #: the most concurrent requests an apply's writes may grow to while the platform keeps its
    #: pace (a target's ``max_concurrency`` overrides it); 0: fixed at ``concurrency``
    max_concurrency: int = 0
    #: customers can be read by id (:meth:`Provider.targeted_batches`): Refresh.AUTO then
    #: reads only the ones that can change
    reads_by_id: bool = False
    #: under Refresh.NONE the remote is the state store's record (so the plan can diff it in
    #: DuckDB against the membership snapshot); not for a target that is its own record
    offline_from_store: bool = False


@dataclass(frozen=True, slots=True)
class RemoteState:
    state: State
    #: phase → where its facts come from
    sources: Mapping[Phase, Source]
    #: segment ids the platform marks as created by this reconciler
    marked: frozenset[str] = EMPTY
    warnings: tuple[str, ...] = ()
