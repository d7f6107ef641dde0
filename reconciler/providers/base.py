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

from ..exceptions import BatchRejected, StatusError
from ..model import EMPTY, State, StateBuilder
from ..plan import Capabilities, Refresh, RemoteState, Source
from ..plan.changes import Change, Phase
from .settings import Setting

if TYPE_CHECKING:
    from .._http import Http, HttpStats, RetryPolicy
    from ..statestore import StateStore

__all__ = ["ItemResult", "Provider", "ProviderContext", "ReadScope"]


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
    """Base class of every platform; it owns the algorithm, a platform fills hooks.

    A subclass declares ``type``, ``title``, ``capabilities`` and ``settings_spec`` (its
    settings, see :mod:`.settings`), and fills :meth:`read_live` and :meth:`write_batch`
    (plus :meth:`read_ids` when it reads customers by id). This class decides the rest, once
    for every platform: ``refresh: none`` served from the state store, the phases the
    platform cannot read back (``stored_phases``) taken from the state store, where each
    phase's facts come from, and what an HTTP status means for a batch (:meth:`refused`).
    """

    type: ClassVar[str]
    #: what the platform is, in a few words (the schema's description of ``type``)
    title: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    #: the settings a target of this type accepts (defaults, credentials, paths, URLs)
    settings_spec: ClassVar[tuple[Setting, ...]] = ()
    #: phases the platform cannot read back: their facts are the state store's record
    stored_phases: ClassVar[frozenset[Phase]] = frozenset()
    #: where the facts :meth:`read_live` gives come from (the file feed: its last files)
    live_source: ClassVar[Source] = Source.LIVE

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
        #: the HTTP clients declared (:meth:`declare_http`) and those made so far, by key
        self._http_specs: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {}
        self._clients: dict[str, Http] = {}

    # -- the algorithm --------------------------------------------------------------------
    async def read(self, scope: ReadScope) -> RemoteState:
        """The target's current state, as far as it can be known: under ``refresh: none`` the
        state store's record (for a platform whose record it is), else a live read of what
        the platform can give back, the rest from the state store."""
        if scope.refresh is Refresh.NONE and self.capabilities.offline_from_store:
            return self.from_store()
        last = self.last_applied()
        builder = self._known(last)
        marked = await self.read_live(scope, builder, last)
        return RemoteState(builder.build(), self._sources(self.live_source), marked=marked)

    async def read_targeted(self, batches: Sequence[Sequence[str]]) -> RemoteState:
        """The target's state with only the customers in ``batches`` (the ones that exist)
        read live, as :meth:`targeted_batches` cut them; never called when that is ``None``."""
        builder = self._known(self.last_applied())
        await self.read_ids(batches, builder)
        return RemoteState(builder.build(), self._sources(Source.TARGETED))

    def from_store(self, *, membership: bool = True) -> RemoteState:
        """The state store's record of this target, as the remote (``refresh: none``)."""
        state = self.context.store.load(self.name, membership=membership)
        return RemoteState(state, self._sources(Source.STATE_STORE))

    def last_applied(self) -> State:
        """Segments and access lists as last applied (the state store's record, without
        membership); empty for a target that is its own record (``offline_from_store`` off)."""
        if not self.capabilities.offline_from_store:
            return State()
        return self.context.store.load(self.name, membership=False)

    def _known(self, last: State) -> StateBuilder:
        builder = StateBuilder()
        if Phase.SEGMENTS in self.stored_phases:
            for seg in last.segments.values():
                builder.add_segment(seg)
        if Phase.ACCESS in self.stored_phases:
            for seg_id, teams in last.access.items():
                builder.set_access(seg_id, teams)
        return builder

    def _sources(self, read: Source) -> dict[Phase, Source]:
        """Phase → where its facts come from, when the platform's are from ``read``."""
        return {
            p: Source.STATE_STORE if p in self.stored_phases else read
            for p in Phase
            if p in self.capabilities.phases
        }

    async def write(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        """Apply one batch (at most ``capabilities.batch_size[phase]`` changes of one phase):
        one result per change, or :class:`BatchRejected` when the platform refused the batch
        as a whole (the executor splits it to isolate the bad items)."""
        try:
            return await self.write_batch(phase, changes)
        except StatusError as exc:
            return self.refused(changes, exc)

    def refused(self, changes: Sequence[Change], exc: StatusError) -> list[ItemResult]:
        """What an HTTP error answer means, for every platform: 400 refuses the batch (raised
        as :class:`BatchRejected`, so the executor splits it); any other status fails each of
        ``changes``. (401 and 403 never get here: the HTTP client raises
        ``CredentialsRefused`` for them.)"""
        text = self.error_text(exc)
        if exc.status == 400:
            raise BatchRejected(text) from None
        return [ItemResult(c.key, False, text) for c in changes]

    # -- hooks ----------------------------------------------------------------------------
    async def read_live(self, scope: ReadScope, known: StateBuilder, last: State) -> frozenset[str]:
        """Read what the platform can give back into ``known`` (which already holds the
        ``stored_phases``, from ``last``, the state store's record); return the segment ids the
        platform marks as created by this reconciler. Every platform fills it in."""
        raise NotImplementedError(f"{type(self).__name__} does not implement read_live")

    async def write_batch(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        """Send one batch; a :class:`StatusError` raised here is mapped by :meth:`refused`.
        Every platform fills it in."""
        raise NotImplementedError(f"{type(self).__name__} does not implement write_batch")

    @classmethod
    def missing_hooks(cls) -> list[str]:
        """The hooks this class leaves unfilled (a platform class must fill them all)."""
        hooks = (("read_live", "read"), ("write_batch", "write"))
        return [
            hook
            for hook, entry in hooks
            if getattr(cls, hook) is getattr(Provider, hook)
            and getattr(cls, entry) is getattr(Provider, entry)
        ]

    def error_text(self, exc: StatusError) -> str:
        """The platform's error answer as a short line (its body's message, already redacted)."""
        return str(exc)

    async def read_ids(self, batches: Sequence[Sequence[str]], known: StateBuilder) -> None:
        """Read the customers of ``batches`` (and their links) into ``known``; only for a
        platform whose :meth:`targeted_batches` is not ``None``."""
        raise NotImplementedError(f"{self.type} cannot read customers by id")

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

        if "max_connections" not in options:
            options.update(max_connections=self.concurrency, grow_to=self.max_concurrency)
        options.setdefault("timeout", self.settings.get("timeout"))
        return Http(
            base_url,
            headers={"accept": "application/json", **headers},
            secrets=tuple(self.credentials.values()),
            retry=self.context.retry,
            label=f"target {self.name!r}",
            target=self.name,
            **options,
        )

    def declare_http(
        self, key: str, base_url: str, headers: Mapping[str, str], **options: Any
    ) -> None:
        """Declare the HTTP client ``key`` (:meth:`http`'s arguments), made by the first
        :meth:`client` call that needs it: a plan from the state store alone sends nothing, so
        it neither makes a client nor imports the HTTP stack (~85 ms)."""
        self._http_specs[key] = (base_url, dict(headers), options)

    def client(self, key: str) -> Http:
        """The HTTP client ``key`` (:meth:`declare_http`), made now if it is the first use."""
        made = self._clients.get(key)
        if made is None:
            base_url, headers, options = self._http_specs[key]
            made = self._clients[key] = self.http(base_url, headers, **options)
        return made

    @property
    def concurrency(self) -> int:
        return int(self.settings.get("concurrency") or self.capabilities.concurrency)

    @property
    def max_concurrency(self) -> int:
        """What :attr:`concurrency` may grow to (see :mod:`reconciler._limit`): never less."""
        ceiling = self.settings.get("max_concurrency") or self.capabilities.max_concurrency
        return max(self.concurrency, int(ceiling or 0))

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

    async def commit(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last step of an apply: a provider that writes a whole
        artefact (the file feed) publishes it here, atomically. No-op by default."""

    def http_stats(self) -> list[HttpStats]:
        """Counters of the HTTP clients this provider made (for the apply summary)."""
        return [made.stats for made in self._clients.values()]

    async def aclose(self) -> None:
        """Release connections (of the clients made)."""
        for made in self._clients.values():
            await made.aclose()
