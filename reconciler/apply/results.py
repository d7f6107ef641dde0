"""What an apply reports: its progress events as it runs, and its result at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..statestore import RunRecord

__all__ = ["ApplyEvent", "ApplyResult", "ItemFailure", "Reporter"]


@dataclass(frozen=True, slots=True)
class ApplyEvent:
    """Progress, for the CLI to render (the library never prints)."""

    target: str
    step: str
    kind: str  # "start" | "advance" | "end" | "note"
    done: int = 0
    total: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    phase: str
    key: str
    error: str


@dataclass(slots=True)
class ApplyResult:
    target: str
    applied: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    batches: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    resumed: list[RunRecord] = field(default_factory=list)
    #: changes still pending after the verify read (None: not verified)
    remaining: int | None = None
    #: changes never sent, or sent and abandoned unacknowledged, because a Stop was asked for
    unsent: int = 0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and not self.remaining and not self.unsent and not self.interrupted


Reporter = Callable[[ApplyEvent], None]
