"""audience-reconciler: declarative plan/apply for customer audiences.

The public API, for scripts and notebooks (the ``reconcile`` command uses the same)::

    from reconciler import Reconciler, StateStore, load
    config = load("audiences.yaml")
    rec = Reconciler(config, StateStore(".reconcile/state.db"))
    plan = asyncio.run(rec.plan())

Names are imported on first use, so ``import reconciler`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the one place the version is written (``pyproject.toml`` reads it from here): asking
#: ``importlib.metadata`` instead scans every installed distribution, ~40 ms of each command
__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "load": "reconciler.config",
    "resolve": "reconciler.config",
    "explain": "reconciler.config",
    "Config": "reconciler.config",
    "Reconciler": "reconciler.manager",
    "Overrides": "reconciler.runtime",
    "StateStore": "reconciler.statestore",
    "Plan": "reconciler.plan",
    "TargetPlan": "reconciler.plan",
    "Segment": "reconciler.model",
    "State": "reconciler.model",
    "StateBuilder": "reconciler.model",
    "Sandbox": "reconciler.sandbox",
    "ReconcilerError": "reconciler.exceptions",
    "ConfigError": "reconciler.exceptions",
    "Problem": "reconciler.exceptions",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
