"""Epsilon Retail Media through its file feed: a segment file and a customer file in a directory
that Epsilon pulls from (a synced bucket, an SFTP drop...).

The feed carries what the API cannot: segment renames, descriptions and deletions (by presence
in the segment file), access lists (``team_ids``) and links (the customer file; customers exist
by appearing there). Format: :mod:`._feed_format`.

A feed must be published whole. :meth:`EpsilonFeedProvider.write` only folds each batch into the
new state in memory (starting from the last feed written) and acknowledges it;
:meth:`EpsilonFeedProvider.commit`, called once by the executor after the last step, publishes
the files, each atomically (temporary file + rename). The two files cannot be replaced in one
step, so they are published in an order that keeps every published pair consistent — every
segment the published customer file names is in the published segment file:

1. the segment file with the new segments *and* the ones being deleted (a superset of both);
2. the customer file;
3. the segment file without the deleted segments (only when something was deleted).

A crash between two steps leaves a consistent pair (at worst, deleted segments still listed);
the next run reads the files back, plans again and finishes the job.

``mode: delta`` writes a customer file with a ``status`` column (``INSERT`` / ``UPDATE`` /
``DELETE``) against the last feed written, whose full snapshot is kept in ``.last/`` inside the
directory; each delta replaces the previous one, so Epsilon must have pulled a delta before the
next apply publishes (rows carry whole lists, so pulling one twice is harmless).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..exceptions import ConfigError, Problem, ProviderError, UnsupportedError
from ..model import EMPTY, Segment, State, StateBuilder
from ..plan import Capabilities, Source
from ..plan.changes import (
    AccessChange,
    Action,
    Change,
    CustomerChange,
    LinkChange,
    Phase,
    SegmentChange,
)
from . import _feed_format as fmt
from .base import ItemResult, Provider, ProviderContext, ReadScope
from .settings import Setting, boolean, choice, directory

__all__ = ["EpsilonFeedProvider"]

SEGMENT_FILE = "segments.tsv"
CUSTOMER_FILE = "customers.tsv"
#: inside the feed directory: the last full customer snapshot (delta mode)
LAST_DIR = ".last"
MODES = ("snapshot", "delta")


class _Pending:
    """The feed being built: the last feed's state with this apply's changes folded in."""

    def __init__(self, base: State) -> None:
        self.base = base
        self.segments: dict[str, Segment] = dict(base.segments)
        self.access: dict[str, frozenset[str]] = dict(base.access)
        self.links: dict[str, frozenset[str]] = dict(base.links)
        self.deleted: set[str] = set()
        self.segments_changed = False
        self.links_changed = False

    def apply(self, change: Change) -> None:
        match change:
            case SegmentChange(action=Action.CREATE | Action.UPDATE, after=Segment() as seg):
                fmt.check_text(seg.id, "segment id")
                fmt.check_text(seg.name, f"the name of segment {seg.id!r}:")
                fmt.check_text(seg.description, f"the description of segment {seg.id!r}:")
                self.segments[seg.id] = seg
                self.deleted.discard(seg.id)
                self.segments_changed = True
            case SegmentChange(action=Action.DELETE, key=seg_id):
                if self.segments.pop(seg_id, None) is not None:
                    self.deleted.add(seg_id)
                self.access.pop(seg_id, None)
                self.segments_changed = True
            case SegmentChange(action=Action.FORGET):
                pass  # no longer managed, but left in the feed: removing it would delete it
            case AccessChange(key=seg_id, after=teams):
                fmt.json_list(teams, f"a team id of segment {seg_id!r}:")
                if teams:
                    self.access[seg_id] = teams
                else:
                    self.access.pop(seg_id, None)
                self.segments_changed = True
            case CustomerChange():
                pass  # customers exist by appearing in the customer file
            case LinkChange(key=cid, after=segs):
                fmt.check_text(cid, "customer id")
                fmt.json_list(segs, f"a segment id of customer {cid!r}:")
                if segs:
                    self.links[cid] = segs
                else:
                    self.links.pop(cid, None)
                self.links_changed = True
            case _:  # pragma: no cover - exhaustive above
                raise ProviderError(f"the Epsilon feed cannot apply {change!r}")


class EpsilonFeedProvider(Provider):
    type: ClassVar[str] = "epsilon-feed"
    title: ClassVar[str] = "Epsilon file feed"
    capabilities: ClassVar[Capabilities] = Capabilities(
        # in-memory writes: batches are only bookkeeping, the files are published at commit
        batch_size={
            Phase.SEGMENTS: 1000,
            Phase.ACCESS: 1000,
            Phase.LINKS: 10_000,
        },
        phases=frozenset({Phase.SEGMENTS, Phase.ACCESS, Phase.LINKS}),
        concurrency=1,
    )
    live_source: ClassVar[Source] = Source.FEED
    settings_spec: ClassVar[tuple[Setting, ...]] = (
        directory("directory", "Directory", "Where the segment and customer files are written"),
        choice(
            "mode",
            "Mode",
            "`snapshot` writes the full customer file; `delta` writes INSERT/UPDATE/DELETE rows.",
            MODES,
        ),
        boolean("gzip", "Gzip", "Compress the files with gzip."),
    )

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        credentials: Mapping[str, str],
        context: ProviderContext,
    ) -> None:
        super().__init__(name, settings, credentials, context)
        directory = settings.get("directory")
        if not directory:
            raise ProviderError(f"target {name!r}: the epsilon-feed target needs a directory")
        path = Path(str(directory))
        self.directory = path if path.is_absolute() else context.base_dir / path
        self.mode = str(settings.get("mode") or "snapshot")
        if self.mode not in MODES:
            raise ConfigError(
                [
                    Problem(
                        "<config>",
                        0,
                        0,
                        f"targets.{name}.mode",
                        f"must be one of {', '.join(MODES)}, not {self.mode!r}",
                    )
                ]
            )
        self.gzip = bool(settings.get("gzip", False))
        self._pending: _Pending | None = None

    # -- files ----------------------------------------------------------------------------
    def _name(self, base: str, compress: bool | None = None) -> str:
        return f"{base}.gz" if (self.gzip if compress is None else compress) else base

    def _existing(self, directory: Path, base: str) -> Path | None:
        """The file ``base`` in ``directory``, in the configured compression or else the other."""
        for compress in (self.gzip, not self.gzip):
            path = directory / self._name(base, compress)
            if path.exists():
                return path
        return None

    @property
    def segment_path(self) -> Path:
        return self.directory / self._name(SEGMENT_FILE)

    @property
    def customer_path(self) -> Path:
        return self.directory / self._name(CUSTOMER_FILE)

    @property
    def last_path(self) -> Path:
        return self.directory / LAST_DIR / self._name(CUSTOMER_FILE)

    def load(self) -> State:
        """The state of the last feed written (empty when nothing was written yet)."""
        builder = StateBuilder()
        self._load_into(builder)
        return builder.build()

    def _load_into(self, builder: StateBuilder) -> frozenset[str]:
        """Add the last feed written to ``builder``; the ids of its segments."""
        seg_file = self._existing(self.directory, SEGMENT_FILE)
        segments: Mapping[str, Segment] = {}
        if seg_file is not None:
            segments, access = fmt.parse_segments(fmt.read_bytes(seg_file), str(seg_file))
            for seg in segments.values():
                builder.add_segment(seg)
            for seg_id, teams in access.items():
                builder.set_access(seg_id, teams)
        for cid, segs in self._last_links().items():
            builder.set_links(cid, segs)
        return frozenset(segments)

    def _last_links(self) -> dict[str, list[str]]:
        """The last full customer list: the published file when it is a snapshot, else the
        snapshot kept beside the delta."""
        published = self._existing(self.directory, CUSTOMER_FILE)
        if published is not None:
            links, delta = fmt.parse_customers(fmt.read_bytes(published), str(published))
            if not delta:
                return links
        kept = self._existing(self.directory / LAST_DIR, CUSTOMER_FILE)
        if kept is not None:
            links, _ = fmt.parse_customers(fmt.read_bytes(kept), str(kept))
            return links
        if published is not None:
            raise ProviderError(
                f"{published} is a delta and the snapshot it was computed against "
                f"({self.directory / LAST_DIR}) is missing: the customer list cannot be "
                "known; remove the customer file to publish a full list again"
            )
        return {}

    # -- read -----------------------------------------------------------------------------
    async def read_live(self, scope: ReadScope, known: StateBuilder, last: State) -> frozenset[str]:
        # the feed is its own record, whatever the refresh: the files are read back
        # every segment in the feed was written by this reconciler
        return self._load_into(known)

    # -- write ----------------------------------------------------------------------------
    async def write_batch(self, phase: Phase, changes: Sequence[Change]) -> list[ItemResult]:
        if self._pending is None:
            self._pending = _Pending(self.load())
        results: list[ItemResult] = []
        for change in changes:
            try:
                self._pending.apply(change)
            except UnsupportedError as exc:
                results.append(ItemResult(change.key, False, str(exc)))
            else:
                results.append(ItemResult(change.key, True))
        return results

    async def commit(self) -> None:
        """Publish the feed built by :meth:`write` (nothing when nothing was written)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        try:
            self.publish(pending)
        except OSError as exc:
            raise ProviderError(
                f"target {self.name!r}: cannot publish the feed in {self.directory}: {exc} "
                "(the files published before are intact; the next apply writes the feed again)"
            ) from exc

    def publish(self, pending: _Pending) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        links = pending.links
        if pending.deleted:
            links = {
                c: frozenset(s - pending.deleted) if not s.isdisjoint(pending.deleted) else s
                for c, s in links.items()
            }
            links = {c: s for c, s in links.items() if s}
        final = pending.segments
        seg_missing = self._existing(self.directory, SEGMENT_FILE) != self.segment_path
        cust_missing = self._existing(self.directory, CUSTOMER_FILE) != self.customer_path
        if pending.segments_changed or seg_missing:
            # 1. new and updated segments, deleted ones still listed: a superset of both files
            superset = {s: pending.base.segments[s] for s in pending.deleted} | final
            superset_access = {
                s: pending.base.access.get(s, EMPTY) for s in pending.deleted
            } | pending.access
            fmt.write_atomic(
                self.segment_path, fmt.segment_rows(superset, superset_access), compress=self.gzip
            )
        if pending.links_changed or pending.deleted or cust_missing:
            # 2. the customer file
            self._publish_customers(pending.base.links, links)
        if pending.deleted:
            # 3. the deleted segments leave the segment file
            fmt.write_atomic(
                self.segment_path, fmt.segment_rows(final, pending.access), compress=self.gzip
            )
        self._drop_other_variant(SEGMENT_FILE)

    def _publish_customers(
        self, before: Mapping[str, frozenset[str]], after: Mapping[str, frozenset[str]]
    ) -> None:
        if self.mode == "snapshot":
            fmt.write_atomic(self.customer_path, fmt.snapshot_rows(after), compress=self.gzip)
            for stale in (self.directory / LAST_DIR).glob(f"{CUSTOMER_FILE}*"):
                stale.unlink()
        else:
            # the delta first, then the snapshot it leads to: a crash in between makes the next
            # run publish the same changes again (idempotent), never lose them
            fmt.write_atomic(self.customer_path, fmt.delta_rows(before, after), compress=self.gzip)
            self.last_path.parent.mkdir(exist_ok=True)
            fmt.write_atomic(self.last_path, fmt.snapshot_rows(after), compress=self.gzip)
            other = self.directory / LAST_DIR / self._name(CUSTOMER_FILE, not self.gzip)
            other.unlink(missing_ok=True)
        self._drop_other_variant(CUSTOMER_FILE)

    def _drop_other_variant(self, base: str) -> None:
        """After publishing ``x.tsv``, remove a stale ``x.tsv.gz`` (or the reverse)."""
        (self.directory / self._name(base, not self.gzip)).unlink(missing_ok=True)
