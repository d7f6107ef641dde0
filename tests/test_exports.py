"""The public surface is what we mean it to be."""

from __future__ import annotations

import importlib

import pytest

import reconciler


def test_public_names() -> None:
    assert reconciler.__all__ == [
        "__version__",
        "Config",
        "ConfigError",
        "Overrides",
        "Plan",
        "Problem",
        "Reconciler",
        "ReconcilerError",
        "Sandbox",
        "Segment",
        "State",
        "StateBuilder",
        "StateStore",
        "TargetPlan",
        "explain",
        "load",
        "resolve",
    ]


@pytest.mark.parametrize("name", [n for n in reconciler.__all__ if n != "__version__"])
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(reconciler, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = reconciler.nothing_here  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "module",
    ["reconciler.config", "reconciler.render", "reconciler.sandbox", "reconciler.exceptions"],
)
def test_subpackages_declare_all(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
