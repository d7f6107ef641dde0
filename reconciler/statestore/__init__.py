"""The state store: what this reconciler last applied to each target, a run journal, and locks.

It is a SQLite file, by default ``.reconcile/state.db`` next to the config: the record
(:mod:`.store`), written item by item as each write is acknowledged. The journal
(:mod:`.journal`) records every batch an apply sends and its outcome; an apply interrupted
halfway is resumed by re-reading the remote and re-planning, and the journal says what the
earlier run did. Membership (customers and links: the bulk, millions of rows) is also kept as a
columnar snapshot (:mod:`.snapshot`), and each target has an ``flock`` apply lock
(:mod:`.lock`). :mod:`.inspect` reads it for people (``reconcile state``); each apply records
the size of every managed segment (:mod:`.history`). The database carries a schema version and
is migrated forward when opened (:mod:`._db`).
"""

from __future__ import annotations

from ._db import SCHEMA_VERSION
from .history import SizeRecord
from .inspect import SegmentRecord, TargetSummary
from .journal import RunRecord, StepRecord
from .snapshot import Snapshot
from .store import StateStore

__all__ = [
    "SCHEMA_VERSION",
    "RunRecord",
    "SegmentRecord",
    "SizeRecord",
    "Snapshot",
    "StateStore",
    "StepRecord",
    "TargetSummary",
]
