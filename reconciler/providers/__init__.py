"""Providers: one module per platform, behind :class:`~reconciler.providers.base.Provider`.

A provider class declares everything about its target type: its capabilities, its settings
(``settings_spec``, see :mod:`.settings`: the config's defaults and the JSON Schema's branch
come from there) and its read and write hooks. A target names its type by a short name of
:data:`PROVIDER_MODULES` or by dotted path (``type: package.module:Class``), so a platform can
ship in a package of its own.
"""

from __future__ import annotations

import functools
import importlib
import re

from ..exceptions import ConfigError, Problem
from .base import Provider

__all__ = ["DOTTED", "PROVIDER_MODULES", "provider_class", "provider_types"]

#: config ``type`` → the provider class, as ``module:Class`` (imported on first use)
PROVIDER_MODULES: dict[str, str] = {
    "epsilon": "reconciler.providers.epsilon:EpsilonProvider",
    "epsilon-feed": "reconciler.providers.feed:EpsilonFeedProvider",
    "talonone": "reconciler.providers.talonone:TalonOneProvider",
}

#: a provider outside this package: ``package.module:Class``
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def provider_types() -> tuple[str, ...]:
    return tuple(PROVIDER_MODULES)


def _refused(message: str) -> ConfigError:
    return ConfigError([Problem("<config>", 0, 0, "targets", message)])


@functools.cache
def provider_class(type_name: str) -> type[Provider]:
    """The provider class of a target ``type``: a built-in name or ``module:Class``.

    Raises :class:`ConfigError` (one problem, its message saying why) for an unknown name, a
    module that cannot be imported, a missing class or a class that is not a Provider; the
    config reports it at the target's ``type``."""
    spec = PROVIDER_MODULES.get(type_name)
    if spec is None and not DOTTED.match(type_name):
        known = ", ".join(PROVIDER_MODULES)
        raise _refused(f"unknown target type {type_name!r} (known: {known}, or module:Class)")
    module_name, _, attr = (spec or type_name).partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import it is the config's problem
        raise _refused(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise _refused(f"module {module_name!r} has no class {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise _refused(f"{type_name} is not a subclass of reconciler.providers.base.Provider")
    missing = cls.missing_hooks()
    if missing:
        raise _refused(f"{type_name} does not implement {', '.join(missing)}")
    return cls
