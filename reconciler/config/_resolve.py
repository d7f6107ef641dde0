"""From a :class:`Config` to the desired :class:`State` of each target.

The members table (:mod:`._members`) gives each customer one mask of segments; Python only turns
each distinct mask into one shared ``frozenset`` of segment ids.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import replace
from types import MappingProxyType

from ..model import EMPTY, Segment, State
from ._contributions import WORD
from ._located import select_targets
from ._members import _Membership, _membership, bits, check_files, check_membership
from ._model import Config, SegmentConfig

__all__ = ["check_resolvable", "resolve", "skeleton"]


def _links(
    membership: _Membership, seg_ids: list[str], mine: list[int]
) -> dict[str, frozenset[str]]:
    """customer id → shared frozenset of this target's segments (customers without one omitted)."""
    words = len(membership.masks[0]) if membership.masks else 1
    tmask = [0] * words
    for i in mine:
        tmask[i // WORD] |= 1 << (i % WORD)
    by_key: dict[tuple[int, ...], frozenset[str]] = {}
    per_group: list[frozenset[str]] = []
    for mask in membership.masks:
        key = tuple(m & t for m, t in zip(mask, tmask, strict=True))
        shared = by_key.get(key)
        if shared is None:
            shared = by_key[key] = frozenset(
                seg_ids[b] for w, m in enumerate(key) for b in bits(m, w * WORD)
            )
        per_group.append(shared)
    if not membership.ids:
        return {}
    values = [per_group[g] for g in membership.groups]
    if all(per_group):
        return dict(zip(membership.ids, values, strict=True))
    return {c: s for c, s in zip(membership.ids, values, strict=True) if s}


def skeleton(segments: list[SegmentConfig], seg_ids: list[str], mine: list[int]) -> State:
    """A target's desired segments and access lists (no customers, no links)."""
    return State(
        segments=MappingProxyType(
            {
                seg_ids[i]: Segment(segments[i].id, segments[i].name, segments[i].description)
                for i in mine
            }
        ),
        access=MappingProxyType(
            {
                seg_ids[i]: segments[i].access or EMPTY
                for i in mine
                if segments[i].access is not None
            }
        ),
    )


def _segments(config: Config, names: list[str]) -> list[SegmentConfig]:
    wanted = set(names)
    return [s for s in config.segments if wanted.intersection(s.targets)]


def check_resolvable(config: Config, targets: Iterable[str] | None = None) -> None:
    """Raise the :class:`~reconciler.exceptions.ConfigError` :func:`resolve` would (member
    files, sources, the ids their rules select), without building the states: ``validate``'s
    check, which never holds a customer in Python."""
    check_membership(config, _segments(config, select_targets(config, targets)))


def resolve(config: Config, targets: Iterable[str] | None = None) -> dict[str, State]:
    """The desired :class:`State` of each target (all targets, or the ones named).

    Links map each customer to one frozenset shared by every customer with the same segments
    on that target; ``customers`` is every customer with at least one link. The order of
    ``links`` is unspecified (sort when presenting).
    """
    names = select_targets(config, targets)
    segments = _segments(config, names)
    check_files(config, segments)
    membership = _membership(config, segments)
    seg_ids = [sys.intern(s.id) for s in segments]

    out: dict[str, State] = {}
    everyone: frozenset[str] | None = None
    for name in names:
        mine = [i for i, s in enumerate(segments) if name in s.targets]
        links = _links(membership, seg_ids, mine)
        if len(links) == len(membership.ids):
            everyone = everyone if everyone is not None else frozenset(membership.ids)
            customers = everyone
        else:
            customers = frozenset(links)
        out[name] = replace(
            skeleton(segments, seg_ids, mine),
            customers=customers,
            links=MappingProxyType(links),
        )
    return out
