"""Talon.One's membership writes: link changes as per-customer deltas, packed into requests.

``PUT /cdp/customer_profiles/audiences`` takes at most :data:`MAX_ACTIONS` adds + deletes, by
numeric audience id: a link change becomes one customer's entry (:func:`link_entries`), the
entries are packed into full requests (:func:`pack_link_requests`), and a change that does not
fit in what is left of a batch splits in two (:func:`split_link`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..plan.changes import LinkChange

__all__ = [
    "MAX_ACTIONS",
    "Entry",
    "link_body",
    "link_entries",
    "pack_link_requests",
    "split_link",
]

#: adds + deletes in one ``PUT /cdp/customer_profiles/audiences``
MAX_ACTIONS = 1000

#: one customer's share of a link request: (customerProfileId, adds, deletes)
Entry = tuple[str, list[int], list[int]]


def pack_link_requests(entries: Iterable[Entry], limit: int = MAX_ACTIONS) -> list[list[Entry]]:
    """Pack per-customer deltas into requests of at most ``limit`` adds + deletes each.

    Requests are filled up to the limit: a customer whose actions do not fit in what is left of a
    request is split, the rest going into the next one (deltas commute, so this is safe). The
    number of requests is therefore ``ceil(total actions / limit)``.
    """
    requests: list[list[Entry]] = []
    current: list[Entry] = []
    room = limit
    for key, adds, deletes in entries:
        while adds or deletes:
            if room == 0:
                requests.append(current)
                current, room = [], limit
            take_adds = adds[:room]
            take_deletes = deletes[: room - len(take_adds)]
            adds, deletes = adds[len(take_adds) :], deletes[len(take_deletes) :]
            current.append((key, take_adds, take_deletes))
            room -= len(take_adds) + len(take_deletes)
    if current:
        requests.append(current)
    return requests


def split_link(change: LinkChange, room: int) -> tuple[LinkChange, LinkChange] | None:
    """``change`` as two deltas of the same customer: the first ``room`` of its actions (adds
    first, in id order), then the rest. Each audience is in one part only, so the parts
    commute; the contract limits a request's actions, not how a customer's are spread."""
    adds, removes = sorted(change.added), sorted(change.removed)
    if room < 1 or len(adds) + len(removes) <= room:
        return None
    head_adds = adds[:room]
    head_removes = removes[: room - len(head_adds)]
    middle = (change.before | frozenset(head_adds)) - frozenset(head_removes)
    head = LinkChange(change.key, change.before, middle)
    return head, LinkChange(change.key, middle, change.after)


def link_entries(
    links: Sequence[LinkChange], ids: Mapping[str, int]
) -> tuple[list[Entry], dict[str, str]]:
    """Each change as its customer's entry, by the numeric ids of ``ids`` (integration id →
    id); a change adding an audience without one is an error of its customer instead."""
    errors: dict[str, str] = {}
    entries: list[Entry] = []
    for c in links:
        unknown = sorted(s for s in c.added if s not in ids)
        if unknown:
            errors[c.key] = f"audience {unknown[0]} does not exist on Talon.One"
            continue
        adds = sorted(ids[s] for s in c.added)
        # an audience that no longer exists has no members left to remove
        deletes = sorted(ids[s] for s in c.removed if s in ids)
        if adds or deletes:
            entries.append((c.key, adds, deletes))
    return entries, errors


def link_body(request: Iterable[Entry]) -> dict[str, Any]:
    """The body of one ``PUT /cdp/customer_profiles/audiences``."""
    return {
        "data": [
            {"customerProfileId": key, "adds": adds, "deletes": deletes}
            for key, adds, deletes in request
        ]
    }
