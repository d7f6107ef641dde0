"""Apply: a target's plan sent to its platform, batch by batch, each acknowledged batch recorded.

:mod:`.executor` runs the steps, :mod:`.batches` packs and sends the batches, :mod:`.stop` is
the request to stop between them, :mod:`.results` what an apply reports.
"""

from __future__ import annotations

from .executor import apply_target
from .results import ApplyEvent, ApplyResult, ItemFailure, Reporter
from .stop import Stop

__all__ = ["ApplyEvent", "ApplyResult", "ItemFailure", "Reporter", "Stop", "apply_target"]
