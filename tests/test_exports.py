"""The public surface is what we mean it to be."""

from __future__ import annotations

import importlib
import pkgutil
import re

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
        _ = reconciler.nothing_here


@pytest.mark.parametrize(
    "module",
    ["reconciler.config", "reconciler.render", "reconciler.sandbox", "reconciler.exceptions"],
)
def test_subpackages_declare_all(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


#: exceptions that steer control flow inside one module and never reach a caller
_PRIVATE_CONTROL_FLOW = {
    "reconciler._http._Retryable",
    # a batch that waited for a slot and may no longer be sent: raised in the HTTP layer,
    # caught by the executor, which counts the batch as not sent
    "reconciler._limit.NotSent",
    "reconciler.cli._signals.Signalled",  # a signal, raised up to main() like KeyboardInterrupt
    "reconciler.config._limits._TooBig",
    "reconciler.config._limits._Bomb",
    "reconciler.sandbox._app._Dropped",
    # the simulated platform's own error, sealed inside the sandbox
    "reconciler.sandbox._proto.ApiError",
}


def _package_modules() -> list[str]:
    found = pkgutil.walk_packages(reconciler.__path__, "reconciler.")
    return ["reconciler", *(info.name for info in found)]


def test_every_exception_class_is_in_the_drawn_tree() -> None:
    from reconciler import exceptions

    found: dict[str, type[BaseException]] = {}
    for name in _package_modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            is_error = isinstance(value, type) and issubclass(value, BaseException)
            if is_error and value.__module__.startswith("reconciler"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    assert "reconciler.exceptions.ReconcilerError" in found
    strays = sorted(
        qual
        for qual, cls in found.items()
        if qual not in _PRIVATE_CONTROL_FLOW
        and not (
            cls.__module__ == "reconciler.exceptions"
            and issubclass(cls, exceptions.ReconcilerError)
        )
    )
    assert strays == []
    tree = exceptions.__doc__ or ""
    for cls in found.values():
        if cls.__module__ == "reconciler.exceptions":
            drawn = re.search(rf"^[ │├└─]*{cls.__name__}( |$)", tree, re.MULTILINE)
            assert drawn, f"{cls.__name__} is not drawn in the tree"
            assert cls.__name__ in exceptions.__all__
    for qual in _PRIVATE_CONTROL_FLOW:
        assert qual in found, f"{qual} no longer exists: drop it from the list"
