"""The provider interface: one small class per platform.

A provider reads a target's remote :class:`~reconciler.model.State`, declares what the platform
can and cannot do (:class:`Capabilities`), and writes batches of changes, answering per item. It
never decides *what* to change: the diff and the plan do that, from the capabilities.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ReconcilerError
from ..model import EMPTY
from ..plan import Capabilities, Refresh, RemoteState
from ..plan.changes import Change, Phase

if TYPE_CHECKING:
    from .._http import Http, HttpStats, RetryPolicy
    from ..statestore import StateStore

__all__ = ["BatchRejected", "ItemResult", "Provider", "ProviderContext", "ReadScope"]


@dataclass(frozen=True, slots=True)
class ReadScope:
    refresh: Refresh = Refresh.FULL
    #: segment ids the config manages on this target (a provider may read only these)
    segments: frozenset[str] = EMPTY
    #: read the members of every segment the platform holds, managed or not (import)
    every_segment: bool = False


@dataclass(frozen=True, slots=True)
class ItemResult:
    key: str
    ok: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything a provider needs besides its settings."""

    store: StateStore
    #: the directory of the config file (relative paths in settings are relative to it)
    base_dir: Path
    retry: RetryPolicy | None = None


class Provider(abc.ABC):
    """Base class of every platform. Subclasses set ``type`` and ``capabilities`` and fill in
    :meth:`read` and :meth:`write`."""

    type: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        context: ProviderContext,
    ) -> None:
        self.name = name
        self.settings = settings
        self.credentials = credentials
        self.context = context

    @classmethod
    def sandbox_overrides(cls, sandbox: Any) -> tuple[Mapping[str, Any], Mapping[str, str]] | None:
        """Settings and credentials that point this provider at a running
        :class:`~reconciler.sandbox.Sandbox` (``None``: the provider needs no sandbox)."""
        return None

    def http(self, base_url: str, headers: Mapping[str, str], **options: Any) -> Http:
        """An HTTP client for this target: the context's retry policy, the target's
        ``timeout`` setting as each request's deadline, every credential redacted from
        messages, which name the target; ``options`` go to :class:`Http`."""
        from .._http import Http

        options.setdefault("max_connections", self.concurrency)
        options.setdefault("timeout", self.settings.get("timeout"))
        return Http(
            base_url,
            headers={"accept": "application/json", **headers},
            secrets=tuple(self.credentials.values()),
            retry=self.context.retry,
            label=f"target {self.name!r}",
            **options,
        )

    @property
    def concurrency(self) -> int:
        return int(self.settings.get("concurrency") or self.capabilities.concurrency)

    @abc.abstractmethod
    async def read(self, scope: ReadScope) -> RemoteState:
        """The target's current state, as far as it can be known."""

    @abc.abstractmethod
    async def write(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        """Apply one batch (at most ``capabilities.batch_size[phase]`` changes of one phase).

        Return one result per change. Raise :class:`BatchRejected` when the platform refused
        the batch as a whole (the executor splits it to isolate the bad items).
        """

    def cost(self, change: Change) -> int:
        """How much of a request's ``capabilities.batch_size`` ``change`` takes: 1 by default
        (the size counts changes); Talon.One counts a link change's membership actions."""
        return 1

    def split(self, change: Change, room: int) -> tuple[Change, Change] | None:
        """``change`` cut in two — a first part costing at most ``room`` (and at least 1), and
        the rest — that applied one after the other, in any order, do what ``change`` does;
        ``None`` when the platform cannot take it in parts (the default). The executor fills
        each batch up to its size this way."""
        return None

    def targeted_batches(self, ids: Sequence[str], customers: int) -> list[list[str]] | None:
        """How to read ``ids`` alone (one list per request), when that takes fewer requests
        than reading all ``customers``; ``None`` otherwise, or when the platform cannot read
        customers by id (the default)."""
        return None

    async def read_targeted(self, batches: Sequence[Sequence[str]]) -> RemoteState:
        """The target's state with only the customers in ``batches`` (the ones that exist)
        read live, as :meth:`targeted_batches` cut them; never called when that is ``None``."""
        raise NotImplementedError(f"{self.type} cannot read customers by id")

    async def commit(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last step of an apply: a provider that writes a whole
        artefact (the file feed) publishes it here, atomically. No-op by default."""

    def http_stats(self) -> list[HttpStats]:
        """Counters of the HTTP clients this provider uses (for the apply summary)."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class BatchRejected(ReconcilerError):
    """The platform refused a whole batch (HTTP 400): the executor splits it and retries."""
