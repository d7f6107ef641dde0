"""Providers: one module per platform, behind :class:`~reconciler.providers.base.Provider`.

The registry maps a target's ``type`` in the config to its provider class. Adding a platform is
one new module that defines a subclass and registers it here.
"""

from __future__ import annotations

import importlib

from ..exceptions import ConfigError, Problem
from .base import Provider

__all__ = ["PROVIDER_MODULES", "provider_class", "provider_types"]

#: config ``type`` → module defining its provider (imported on first use)
PROVIDER_MODULES: dict[str, str] = {
    "epsilon": "reconciler.providers.epsilon:EpsilonProvider",
    "talonone": "reconciler.providers.talonone:TalonOneProvider",
    "epsilon-feed": "reconciler.providers.feed:EpsilonFeedProvider",
}


def provider_types() -> tuple[str, ...]:
    return tuple(PROVIDER_MODULES)


def provider_class(type_name: str) -> type[Provider]:
    try:
        module_name, _, attr = PROVIDER_MODULES[type_name].partition(":")
    except KeyError:
        raise ConfigError(
            [Problem("<config>", 0, 0, "targets", f"unknown target type {type_name!r}")]
        ) from None
    cls: type[Provider] = getattr(importlib.import_module(module_name), attr)
    return cls
