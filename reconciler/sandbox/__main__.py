"""``python -m reconciler.sandbox serve|seed|reset``."""

from __future__ import annotations

from reconciler.sandbox.cli import app

app()
