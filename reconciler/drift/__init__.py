"""Drift: which side moved since the last apply, and how far the state store is from the
platform.

:mod:`.report` says, for every pending change, which side it comes from; :mod:`.snapshot`
compares the state store's snapshot with a full live read (:func:`snapshot_drift`);
:mod:`.refresh` is what ``reconcile refresh`` records instead (:func:`refreshed_state`) and
counts what that rewrites (:func:`store_changes`). Pure.
"""

from __future__ import annotations

from .refresh import RefreshResult, refreshed_state, store_changes
from .report import DriftCheck, DriftReport, Side, classify, drift_report, drift_reports
from .snapshot import Mismatch, SnapshotReport, snapshot_drift

__all__ = [
    "DriftCheck",
    "DriftReport",
    "Mismatch",
    "RefreshResult",
    "Side",
    "SnapshotReport",
    "classify",
    "drift_report",
    "drift_reports",
    "refreshed_state",
    "snapshot_drift",
    "store_changes",
]
