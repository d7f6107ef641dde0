"""Building a target's plan: desired x remote → the diff, then the platform's capabilities turn
what it cannot do into warnings (about this plan's changes) and caveats (what the platform never
does, such as keeping descriptions); the diff never knows the platform."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..model import State
from ._reviews import links, segment_reviews
from ._sizes import Tally, check_links
from .changes import Action, Change, LinkChange, Phase
from .definition import TargetPlan
from .diff import Ownership, diff
from .fingerprint import fingerprint
from .inputs import Capabilities, RemoteState
from .review import Definition, SegmentReview, SegmentStatus

__all__ = ["Overview", "build_target_plan"]


def _group(kind: str, keys: Sequence[str], message: str, limit: int = 8) -> str:
    shown = ", ".join(keys[:limit]) + (
        f" and {len(keys) - limit} more" if len(keys) > limit else ""
    )
    noun = kind if len(keys) == 1 else f"{kind}s"
    return f"{message} ({len(keys)} {noun}: {shown})"


def _caveats(capabilities: Capabilities, desired: State) -> tuple[str, ...]:
    """What the platform never does, for the segments that ask for it (not a warning: no
    change of the plan makes it go away)."""
    caveats: list[str] = []
    if "description" not in capabilities.segment_fields:
        described = sorted(s.id for s in desired.segments.values() if s.description)
        if described:
            caveats.append(
                _group(
                    "segment",
                    described,
                    "this target has no segment descriptions: the descriptions are not sent",
                )
            )
    if Phase.ACCESS not in capabilities.phases:
        asked = sorted(s for s, teams in desired.access.items() if teams)
        if asked:
            note = capabilities.unsupported.get(
                (Phase.ACCESS, Action.UPDATE), "this target has no access control"
            )
            caveats.append(_group("segment", asked, f"{note}: access lists are not applied"))
    return tuple(caveats)


@dataclass(frozen=True, slots=True)
class Overview:
    """What a plan says of the WHOLE remote when it diffed only part of the customers (the
    rest known unchanged): its fingerprint, its sizes, the unchanged links left out."""

    fingerprint: str
    existing: Mapping[str, int]
    unchanged_links: int
    #: the (last-applied, desired) membership pairs of the whole target, counted where the
    #: diff ran (None: no per-segment review)
    tally: Tally | None = None


def build_target_plan(
    target: str,
    type_name: str,
    capabilities: Capabilities,
    desired: State,
    remote: RemoteState,
    ownership: Ownership,
    *,
    protected: Iterable[str] = (),
    overview: Overview | None = None,
    definitions: Mapping[str, Definition] | None = None,
) -> TargetPlan:
    """Diff, then let the target's capabilities turn what it cannot do into warnings; and
    review each managed segment (its sizes cross-checked against the link changes).

    ``overview``: ``desired`` and ``remote`` hold only some of the customers (the ones that can
    change); the overview describes the rest of the remote, and carries its tally.
    ``definitions``: each segment's definition, last applied and declared."""
    phases = capabilities.phases
    result = diff(
        desired,
        remote.state,
        ownership,
        access=Phase.ACCESS in phases,
        customers=Phase.CUSTOMERS in phases,
        compare=capabilities.segment_fields,
    )
    warnings: list[str] = list(remote.warnings)
    kept: list[Change] = []
    dropped: dict[tuple[Phase, Action], list[str]] = {}
    caveated: dict[tuple[Phase, Action], list[str]] = {}
    for change in result.changes:
        k = (change.phase, change.action)
        if k in capabilities.unsupported:
            dropped.setdefault(k, []).append(change.key)
            continue
        if k in capabilities.caveats:
            caveated.setdefault(k, []).append(change.key)
        kept.append(change)
    for k, keys in dropped.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.unsupported[k]))
    for k, keys in caveated.items():
        warnings.append(_group(k[0].value.rstrip("s"), keys, capabilities.caveats[k]))
    remote_state = remote.state
    if overview is None:
        managed = {*desired.segments, *ownership.managed}
        for c in result.changes:  # and any segment a link change touches
            if isinstance(c, LinkChange):
                managed.update(c.before ^ c.after)
            elif c.phase is Phase.SEGMENTS:
                managed.add(c.key)
        overview = Overview(
            fingerprint(remote_state),
            {
                "segments": len(remote_state.segments),
                "customers": len(remote_state.customers),
                "links": remote_state.link_count(),
            },
            0,
            Tally.of_states(desired, remote_state, managed),
        )
    review = _review(target, desired, remote_state, tuple(kept), overview.tally, definitions)
    return TargetPlan(
        target=target,
        type=type_name,
        changes=tuple(kept),
        warnings=tuple(warnings),
        caveats=_caveats(capabilities, desired),
        unmanaged=result.unmanaged,
        sources=dict(remote.sources),
        remote_fingerprint=overview.fingerprint,
        existing=dict(overview.existing),
        unchanged_links=result.unchanged_links + overview.unchanged_links,
        protected=tuple(sorted(set(protected))),
        review=review,
    )


def _review(
    target: str,
    desired: State,
    remote: State,
    changes: tuple[Change, ...],
    tally: Tally | None,
    definitions: Mapping[str, Definition] | None,
) -> tuple[SegmentReview, ...]:
    """The per-segment review, refused when the link changes do not add up to its sizes."""
    if tally is None:
        return ()
    moved = links(target, changes)
    reviews = segment_reviews(target, desired, remote, changes, tally, moved, definitions)
    forgotten = [r.id for r in reviews if r.status is SegmentStatus.FORGOTTEN]
    check_links(target, tally.sizes(), (moved.added, moved.removed), kept=forgotten)
    return reviews
