"""Changes: what a plan proposes, one value per object touched, and the order they run in.

Four phases, in a fixed order — segments → access → customers → links — and removals in the
reverse order, after the links (a segment loses its members before it is deleted). The order is
data (:data:`STEPS`), not an accident of code paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from ..model import EMPTY, Segment

__all__ = [
    "STEPS",
    "AccessChange",
    "Action",
    "Change",
    "CustomerChange",
    "LinkChange",
    "Phase",
    "SegmentChange",
    "Step",
    "step_of",
]


class Phase(StrEnum):
    SEGMENTS = "segments"
    ACCESS = "access"
    CUSTOMERS = "customers"
    LINKS = "links"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    #: stop managing an object without deleting it (Terraform's ``removed { destroy = false }``)
    FORGET = "forget"


@dataclass(frozen=True, slots=True)
class SegmentChange:
    phase: ClassVar[Phase] = Phase.SEGMENTS
    action: Action
    key: str
    before: Segment | None = None
    after: Segment | None = None
    #: the fields that differ, for an update (``("name", "description")``)
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessChange:
    phase: ClassVar[Phase] = Phase.ACCESS
    action: Action
    key: str
    before: frozenset[str] = EMPTY
    after: frozenset[str] = EMPTY


@dataclass(frozen=True, slots=True)
class CustomerChange:
    phase: ClassVar[Phase] = Phase.CUSTOMERS
    action: Action
    key: str


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A customer's segment set goes from ``before`` to ``after`` (both complete lists, including
    the segments this config does not manage, which are carried over unchanged)."""

    phase: ClassVar[Phase] = Phase.LINKS
    key: str
    before: frozenset[str]
    after: frozenset[str]

    @property
    def action(self) -> Action:
        return Action.UPDATE

    @property
    def added(self) -> frozenset[str]:
        return self.after - self.before

    @property
    def removed(self) -> frozenset[str]:
        return self.before - self.after


Change = SegmentChange | AccessChange | CustomerChange | LinkChange


@dataclass(frozen=True, slots=True)
class Step:
    """One step of execution: a phase and the actions it carries."""

    phase: Phase
    actions: frozenset[Action]

    @property
    def name(self) -> str:
        removal = Action.DELETE in self.actions or Action.FORGET in self.actions
        return f"{self.phase.value}{' (removals)' if removal else ''}"


_UPSERT = frozenset({Action.CREATE, Action.UPDATE})
_REMOVE = frozenset({Action.DELETE, Action.FORGET})

#: The execution order: creates and updates phase by phase, every link change, then removals in
#: reverse phase order.
STEPS: tuple[Step, ...] = (
    Step(Phase.SEGMENTS, _UPSERT),
    Step(Phase.ACCESS, _UPSERT),
    Step(Phase.CUSTOMERS, _UPSERT),
    Step(Phase.LINKS, frozenset({Action.UPDATE})),
    Step(Phase.CUSTOMERS, _REMOVE),
    Step(Phase.ACCESS, _REMOVE),
    Step(Phase.SEGMENTS, _REMOVE),
)


#: the index in :data:`STEPS` of the step that runs each (phase, action)
_STEP_OF: dict[tuple[Phase, Action], int] = {}
for _i, _step in enumerate(STEPS):
    for _action in _step.actions:
        _STEP_OF.setdefault((_step.phase, _action), _i)


def step_of(change: Change) -> int:
    """The index in :data:`STEPS` at which ``change`` runs (a plan sorts its changes by it:
    one lookup, not a walk of the steps)."""
    found = _STEP_OF.get((change.phase, change.action))
    if found is None:  # pragma: no cover - every phase's actions have a step
        raise ValueError(f"no step runs {change.phase} {change.action}")
    return found
