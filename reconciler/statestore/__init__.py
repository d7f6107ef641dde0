"""The state store: what this reconciler last applied to each target, a run journal, and locks.

It is a SQLite file, by default ``.reconcile/state.db`` next to the config: the record
(:mod:`.store`), written item by item as each write is acknowledged. The journal
(:mod:`.journal`) records every batch an apply sends and its outcome; an apply interrupted
halfway is resumed by re-reading the remote and re-planning, and the journal says what the
earlier run did. Membership (customers and links: the bulk, millions of rows) is also kept as a
columnar snapshot (:mod:`.snapshot`), and each target has an ``flock`` apply lock
(:mod:`.lock`). Each apply also records the size of every managed segment (:mod:`.history`).
"""

from __future__ import annotations

from .history import SizeRecord
from .journal import RunRecord
from .snapshot import Snapshot
from .store import StateStore

__all__ = ["RunRecord", "SizeRecord", "Snapshot", "StateStore"]
