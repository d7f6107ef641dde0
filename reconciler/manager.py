"""Orchestration: config → desired states; providers → remote states; plan; apply; verify.

The one place that knows every stage. It does I/O only through providers and the state store;
the CLI, the tests and the benchmarks all drive the reconciler through :class:`Reconciler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._logging import fields, logger
from .config import Config, TargetConfig, resolve
from .exceptions import PlanError, SnapshotError
from .membership import membership_inputs
from .membership.definitions import definitions, record_definitions
from .model import State
from .plan import (
    Endpoint,
    Overview,
    Plan,
    Refresh,
    RemoteState,
    Source,
    TargetPlan,
    build_target_plan,
    changes_digest,
    check_config,
    check_endpoints,
    check_fresh,
    check_verdict,
    endpoint_of,
    enforce,
    judge,
)
from .plan.changes import Phase
from .plan.diff import Ownership
from .plan.safety import REPLAN
from .providers import provider_class
from .providers.base import Provider, ProviderContext, ReadScope
from .runtime import Overrides
from .statestore import StateStore

if TYPE_CHECKING:  # apply's and drift's modules are imported by their commands alone
    from .apply import ApplyResult, Reporter, Stop
    from .drift import DriftCheck, RefreshResult, SnapshotReport

__all__ = ["Reconciler"]

#: how many of the last applied sizes a segment's review shows beside the new one
HISTORY = 5

log = logger("manager")


#: the phases whose changes name a customer
_MEMBERSHIP = frozenset({Phase.CUSTOMERS, Phase.LINKS})


class Reconciler:
    """Plans and applies one config against its targets."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        *,
        targets: Iterable[str] | None = None,
        overrides: Overrides | None = None,
        retry: Any = None,
    ) -> None:
        self.config = config
        self.store = store
        # a target named twice is one target (locked once, planned once), in first-named order
        names = list(dict.fromkeys(targets)) if targets else list(config.targets)
        unknown = [n for n in names if n not in config.targets]
        if unknown:
            raise PlanError(
                f"unknown target(s) {', '.join(unknown)}; "
                f"the config declares {', '.join(config.targets)}"
            )
        self.target_names = tuple(names)
        self.overrides = overrides or Overrides()
        self.retry = retry
        self._desired: dict[str, State] | None = None
        self._held = False
        #: Refresh.AUTO: how many unchanged customers to read live for drift (and the seed
        #: that makes the sample repeatable, for tests)
        self.sample = 1000
        self.sample_seed: int | None = None
        #: the target plans this reconciler made (by id, weakly): :meth:`apply` plans again
        #: any other (a saved plan's, one edited since) and refuses it if it is stale
        self._made: weakref.WeakValueDictionary[int, TargetPlan] = weakref.WeakValueDictionary()

    @contextlib.contextmanager
    def hold_locks(self, wait: float = 0.0, purpose: str = "apply") -> Iterator[None]:
        """Hold the apply lock of every target, so a plan made inside is applied inside,
        with no other apply in between (waiting up to ``wait`` seconds for each)."""
        with contextlib.ExitStack() as stack:
            for name in sorted(self.target_names):
                stack.enter_context(self.store.lock(name, wait=wait, purpose=purpose))
            self._held = True
            try:
                yield
            finally:
                self._held = False

    # -- building blocks ------------------------------------------------------------------
    def desired(self) -> dict[str, State]:
        if self._desired is None:
            self._desired = resolve(self.config, self.target_names)
        return self._desired

    def provider(self, name: str) -> Provider:
        target = self.config.targets[name]
        cls = provider_class(target.type)
        settings = {**target.settings, **self.overrides.settings.get(target.type, {})}
        creds = self.overrides.credentials.get(target.type)
        if creds is None:
            target.check_credentials()
            creds = {field_: target.credential(field_) for field_ in target.credentials}
        context = ProviderContext(self.store, self.config.path.parent, self.retry)
        return cls(name, settings, creds, context)

    def endpoint(self, name: str) -> Endpoint:
        """Where target ``name`` is reached: the sandbox or not, and its base URLs (a plan
        records it, and a saved plan is applied there alone)."""
        target = self.config.targets[name]
        supplied = self.overrides.settings.get(target.type, {})
        return endpoint_of(
            {**target.settings, **supplied}, sandbox=self.overrides.sandbox, supplied=supplied
        )

    def _ownership(self, target: TargetConfig, marked: frozenset[str]) -> Ownership:
        forget = frozenset(
            r.id for r in self.config.removed if not r.destroy and target.name in r.targets
        )
        return Ownership(
            managed=self.store.managed_segments(target.name),
            forget=forget,
            marked=marked,
            prune=target.prune,
            prune_prefix=target.prune_prefix,
        )

    def _protected(self, name: str) -> frozenset[str]:
        declared = {s.id for s in self.config.segments if s.prevent_destroy and name in s.targets}
        return self.store.protected(name) | declared

    async def read(self, name: str, refresh: Refresh = Refresh.FULL) -> RemoteState:
        """The remote state of one target, reading everything it holds."""
        provider = self.provider(name)
        try:
            return await provider.read(ReadScope(refresh, frozenset()))
        finally:
            await provider.aclose()

    def last_applied(self) -> dict[str, State]:
        return {name: self.store.load(name) for name in self.target_names}

    # -- plan -----------------------------------------------------------------------------
    async def _plan_one(
        self, name: str, refresh: Refresh, include: Sequence[str] = ()
    ) -> TargetPlan:
        target = self.config.targets[name]
        provider = self.provider(name)
        overview: Overview | None = None
        notes: list[str] = []
        began = time.monotonic()
        try:
            found = None
            caps = provider.capabilities
            columnar = (refresh is Refresh.AUTO and caps.reads_by_id) or (
                refresh is Refresh.NONE and caps.offline_from_store
            )
            snapshot = self.store.snapshot(name) if columnar else None
            if snapshot is not None:
                offline = None
                if refresh is Refresh.NONE:
                    offline = provider.from_store(membership=False)
                try:
                    found = await membership_inputs(
                        self.config,
                        name,
                        provider,
                        snapshot,
                        managed=self.store.managed_segments(name),
                        sample=self.sample,
                        seed=self.sample_seed,
                        offline=offline,
                        include=include,
                    )
                except SnapshotError as exc:  # the database holds the record it came from
                    notes.append(
                        f"{exc}: planned without it, from the state store's database (slower); "
                        "`reconcile refresh` rewrites it"
                    )
            if found is not None:
                desired, remote, overview = found
            else:
                desired = self.desired()[name]
                remote = await provider.read(ReadScope(refresh, frozenset(desired.segments)))
            if notes:
                remote = dataclasses.replace(remote, warnings=(*remote.warnings, *notes))
        finally:
            await provider.aclose()
        read, began, got = time.monotonic() - began, time.monotonic(), remote.state
        log.info(
            "%s: read (refresh %s) in %.2f s: %d segment(s), %d customer(s)",
            name, refresh.value, read, len(got.segments), len(got.customers),
            extra=fields(
                "read", target=name, refresh=refresh.value, seconds=round(read, 3),
                segments=len(got.segments), customers=len(got.customers),
            ),
        )  # fmt: skip
        built = build_target_plan(
            name,
            target.type,
            provider.capabilities,
            desired,
            remote,
            self._ownership(target, remote.marked),
            protected=self._protected(name),
            overview=overview,
            definitions=definitions(self.config, self.store, name),
        )
        took = time.monotonic() - began
        log.info(
            "%s: diff in %.2f s: %d change(s)",
            name,
            took,
            len(built.changes),
            extra=fields("diff", target=name, seconds=round(took, 3), changes=len(built.changes)),
        )
        return self._with_history(dataclasses.replace(built, planned_at=self.endpoint(name)))

    def _with_history(self, plan: TargetPlan) -> TargetPlan:
        """Each reviewed segment with the sizes its last applies recorded."""
        if not plan.review:
            return plan
        recent = self.store.recent_sizes(plan.target, HISTORY)
        review = tuple(dataclasses.replace(r, history=recent.get(r.id, ())) for r in plan.review)
        return dataclasses.replace(plan, review=review)

    async def plan(
        self, refresh: Refresh = Refresh.FULL, *, include: Mapping[str, Sequence[str]] | None = None
    ) -> Plan:
        """The plan of every target. ``include``: per target, customers read live besides
        what ``refresh`` reads (under ``auto``; ``full`` reads them all anyway)."""
        include = include or {}
        plans = await asyncio.gather(
            *(self._plan_one(n, refresh, include.get(n, ())) for n in self.target_names)
        )
        # what apply would refuse, decided now and carried in the plan
        plans = [
            dataclasses.replace(tp, verdict=judge(tp, self.config.guards(tp.target)))
            for tp in plans
        ]
        for tp in plans:
            self._made[id(tp)] = tp
        return Plan(
            config_path=str(self.config.path.name),
            config_digest=self.config.digest,
            targets=tuple(plans),
            refresh=refresh,
        )

    async def replan(
        self,
        saved: Plan,
        source: Path | str = "the saved plan",
        *,
        config: Path | None = None,
        replan: str = REPLAN,
        refresh: Refresh | None = None,
    ) -> Plan:
        """The plan of now in place of ``saved``, refusing (:class:`StalePlanError`) a saved
        plan that was planned somewhere else than where its targets now go, one whose config
        is not ``config`` (the one named to apply it with, if any), or one whose changes are
        no longer exactly the same. ``source`` names the plan in messages; ``replan``: the
        command that makes a new one. Hold the locks (:meth:`hold_locks`) around this and the
        apply, so that nothing comes in between.

        The plan of now reads as ``refresh`` asks (by default as ``saved`` was read, live: a
        plan from the state store alone is planned again with ``auto``), and every customer
        ``saved`` would write is read live besides, so none is written from a stale record."""
        check_endpoints(saved, source, {n: self.endpoint(n) for n in self.target_names})
        if config is not None:
            check_config(saved, source, config, self.config.digest)
        mode = refresh or (Refresh.AUTO if saved.refresh is Refresh.NONE else saved.refresh)
        # for this reconciler's targets: a plan for others is stale
        current = await self.plan(mode, include=saved.customers_written)
        check_fresh(saved, current, replan)
        check_verdict(saved, current, replan)
        return current

    def _made_here(self, plan: Plan) -> bool:
        return all(self._made.get(id(tp)) is tp for tp in plan.targets)

    # -- apply ----------------------------------------------------------------------------
    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """Enforce every target's verdict (raises UnsafePlanError); returns notes when forced."""
        return [note for tp in plan.targets for note in enforce(tp, force=force)]

    def forced(self, plan: Plan) -> Plan:
        """``plan`` with every target's verdict forced (``apply --force``), made here if
        ``plan`` was."""
        made = self._made_here(plan)
        targets = tuple(
            dataclasses.replace(tp, verdict=dataclasses.replace(tp.verdict, forced=True))
            for tp in plan.targets
        )
        for tp in targets if made else ():
            self._made[id(tp)] = tp
        return dataclasses.replace(plan, targets=targets)

    async def apply(
        self,
        plan: Plan,
        *,
        force: bool = False,
        reporter: Reporter | None = None,
        verify: bool | Refresh = True,
        lock_wait: float = 0.0,
        stop: Stop | None = None,
    ) -> list[ApplyResult]:
        """Apply ``plan``; with ``stop`` asked for midway (see :class:`~reconciler.apply.Stop`),
        every target ends between batches, its results say what was not sent, and the verify
        read is skipped (or dropped).

        ``verify``: the plan made after the apply, whose changes are each result's
        ``remaining``: True (``Refresh.AUTO``) reads back the customers the plan wrote, by id,
        with the drift sample (where the platform reads by id; else everything);
        ``Refresh.FULL`` reads everything; False reads nothing.

        A plan this reconciler did not make itself (one read from a file, or edited since),
        or one made from the state store alone, is planned again first, under the locks, and
        refused unless its changes are still exactly the same (:meth:`replan`); the plan of
        now is then applied."""
        if not self._made_here(plan) or plan.refresh is Refresh.NONE:
            with contextlib.ExitStack() as stack:
                if not self._held:
                    stack.enter_context(self.hold_locks(lock_wait))
                plan = await self.replan(plan)
                return await self._apply(plan, force, reporter, verify, lock_wait, stop)
        return await self._apply(plan, force, reporter, verify, lock_wait, stop)

    async def _apply(
        self,
        plan: Plan,
        force: bool,
        reporter: Reporter | None,
        verify: bool | Refresh,
        lock_wait: float,
        stop: Stop | None,
    ) -> list[ApplyResult]:
        from .apply import apply_target

        self.check(plan, force=force)
        digest = changes_digest(plan)

        async def one(tp: TargetPlan) -> ApplyResult:
            provider = self.provider(tp.target)
            try:
                result = await apply_target(
                    provider,
                    tp,
                    self.store,
                    plan_digest=digest,
                    reporter=reporter,
                    lock_wait=lock_wait,
                    locked=self._held,
                    stop=stop,
                )
            finally:
                await provider.aclose()
            self.store.set_protection(tp.target, self._protected_now(tp.target))
            if not (result.failures or result.unsent or result.interrupted):
                record_definitions(self.config, self.store, tp.target)
            return result

        results = list(await asyncio.gather(*(one(tp) for tp in plan.targets if tp.changes)))
        for tp in plan.targets:
            if not tp.changes:  # nothing to do: what is declared is what the target holds
                record_definitions(self.config, self.store, tp.target)
        if verify is not False and results and not (stop is not None and stop.requested):
            mode = Refresh.AUTO if verify is True else Refresh(verify)
            after = await self._verify(stop, mode, plan.customers_written)
            if after is not None:
                for result in results:
                    result.remaining = len(after.target(result.target).changes)
        return results

    async def _verify(
        self, stop: Stop | None, mode: Refresh, written: Mapping[str, Sequence[str]]
    ) -> Plan | None:
        """The plan after an apply, reading as ``mode`` asks and the customers ``written``;
        ``None`` when a stop is asked for first (it only reads, so it is dropped at once)."""
        if stop is None:
            return await self.plan(mode, include=written)
        verifying = asyncio.ensure_future(self.plan(mode, include=written))
        stopping = asyncio.ensure_future(stop.wait_requested())
        try:
            await asyncio.wait([verifying, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not verifying.done():
                verifying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await verifying
        return None if verifying.cancelled() else verifying.result()

    def _protected_now(self, name: str) -> Sequence[str]:
        return [s.id for s in self.config.segments if s.prevent_destroy and name in s.targets]

    # -- drift and refresh ----------------------------------------------------------------
    def segment_fields(self, name: str) -> tuple[str, ...]:
        """The segment fields target ``name``'s platform carries."""
        fields: tuple[str, ...] = provider_class(
            self.config.targets[name].type
        ).capabilities.segment_fields
        return fields

    async def read_all(self) -> dict[str, RemoteState]:
        """A full live read of every target (nothing written anywhere)."""
        lives = await asyncio.gather(*(self.read(n, Refresh.FULL) for n in self.target_names))
        return dict(zip(self.target_names, lives, strict=True))

    async def snapshots(self, last: Mapping[str, State]) -> dict[str, SnapshotReport]:
        """Each target's last-applied state (``last``) against a full live read."""
        from .drift import snapshot_drift

        lives = await self.read_all()
        return {
            name: snapshot_drift(
                last[name], live, target=name, segment_fields=self.segment_fields(name)
            )
            for name, live in lives.items()
        }

    async def drift(self, *, full: bool = False) -> DriftCheck:
        """Which side moved since the last apply; ``full``: also each target's state store
        against a full live read (a stale one is drift too). Reads only."""
        from .drift import DriftCheck, drift_reports

        current = await self.plan()
        if full:
            last = self.last_applied()
        else:  # the pending changes' customers alone: a pending change is classified by them
            last = {
                tp.target: self.store.load(
                    tp.target,
                    customers=(c.key for c in tp.changes if c.phase in _MEMBERSHIP),
                )
                for tp in current.targets
            }
        reports = drift_reports(current, last)
        return DriftCheck(current, reports, await self.snapshots(last) if full else {})

    async def refresh(self) -> list[RefreshResult]:
        """Record in the state store what each target holds now, from a full read; nothing is
        written to the platform. Each target that differs is rewritten (phases the platform
        cannot read kept as last applied, ``prevent_destroy`` kept); one that does not has its
        membership snapshot rewritten if that cannot be read. Under the targets' locks: inside
        :meth:`hold_locks`, or else taken here without waiting."""
        if not self._held:
            with self.hold_locks(purpose="refresh"):
                return await self.refresh()
        from .drift import RefreshResult, refreshed_state, store_changes

        done = []
        for name, live in (await self.read_all()).items():
            last = self.store.load(name)
            new = refreshed_state(last, live, segment_fields=self.segment_fields(name))
            changes = store_changes(last, new)
            if changes:
                self.store.replace(name, new)  # it keeps the prevent_destroy flags
            rewritten = not changes and self.store.repair_snapshot(name)
            kept = tuple(
                p.value for p in Phase if live.sources.get(p, Source.LIVE) is not Source.LIVE
            )
            done.append(RefreshResult(name, changes, kept, rewritten))
        return done
