"""The review of a plan in audiences, not records: per segment, its members before and after,
who enters and who leaves; and the plan's safety verdict, decided when the plan is built.

A :class:`SegmentReview` is what a reviewer reads first ("general-segment-3 (Recurring
Shoppers): 1,155 → 438 members, -717 (-62%)"); a :class:`Verdict` is what apply would refuse,
with the reasons and how to accept each one. Both are values carried in the plan (and in its
file), so a saved plan is judged by the same verdict it was reviewed with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Definition", "Refusal", "SegmentReview", "SegmentStatus", "Verdict"]


class SegmentStatus(StrEnum):
    """What happens to a segment as a whole."""

    CREATED = "created"
    DELETED = "deleted"
    FORGOTTEN = "forgotten"
    RENAMED = "renamed"
    #: its name, description or access changes (not its name)
    UPDATED = "updated"
    #: only its members change
    MEMBERS = "members"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Definition:
    """A segment's definition as YAML text: the one last applied and the one now declared
    (``""`` for none: a new segment, or one applied before definitions were kept)."""

    applied: str
    declared: str

    @property
    def changed(self) -> bool:
        return self.applied != self.declared


@dataclass(frozen=True, slots=True)
class SegmentReview:
    """One managed segment of one target, before and after the plan.

    ``before``: members in what was last applied (the platform's, for a full read);
    ``after``: members once the plan is applied; ``added``/``removed``: the customers that
    enter and leave (``after == before + added - removed``). ``entering``/``leaving``: a few of
    them, chosen by a salted hash so that planning again shows the same ones. ``overlap``:
    other managed segment id → how many of this segment's members (after) are also in it.
    ``history``: the sizes recorded by the last applies, oldest first."""

    id: str
    name: str
    status: SegmentStatus
    before: int
    after: int
    added: int
    removed: int
    entering: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()
    definition: Definition | None = None
    overlap: dict[str, int] = field(default_factory=dict)
    history: tuple[int, ...] = ()

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def share(self) -> float | None:
        """The change as a share of ``before`` (None for a segment that had no members)."""
        return None if self.before == 0 else self.delta / self.before

    @property
    def changes(self) -> bool:
        return self.status is not SegmentStatus.UNCHANGED or bool(self.added or self.removed)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One reason apply would refuse the plan: ``rule`` is what refused it
    (``prevent_destroy``, ``max_delete_share``, ``max_removed_share``, ``max_growth_share``,
    ``min_members``), ``message`` says what and by how much, ``accept`` how to accept it
    (the setting to change in the pull request, or ``--force``; empty when nothing does)."""

    target: str
    segment: str | None
    rule: str
    message: str
    accept: str
    #: whether ``--force`` overrides it (never for ``prevent_destroy``)
    forceable: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """The plan's safety verdict: what apply would refuse, decided when the plan is built.
    ``forced``: the plan was made with ``--force``, which accepts every forceable refusal."""

    refusals: tuple[Refusal, ...] = ()
    forced: bool = False

    @property
    def blocking(self) -> tuple[Refusal, ...]:
        """The refusals that stand: all of them, or the unforceable ones when forced."""
        return tuple(r for r in self.refusals if not (self.forced and r.forceable))

    @property
    def safe(self) -> bool:
        return not self.blocking
