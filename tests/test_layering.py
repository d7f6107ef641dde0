"""The package layers: the rule language is a leaf (it imports neither the configuration nor
the engines), and the engines do not import the configuration (no config <-> engines cycle).
Each is checked in a fresh interpreter, where ``sys.modules`` shows everything an import
pulls in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import reconciler

#: the folder holding the package under test, first on the probe's path
_ROOT = str(Path(reconciler.__file__).resolve().parents[1])

_PROBE = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("reconciler."))))
"""


def _loaded(*modules: str) -> list[str]:
    """The reconciler modules a fresh interpreter holds after importing ``modules``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(modules=list(modules))],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")]),
        },
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(modules) <= set(loaded)  # the probe did import what it was given
    return loaded


def _under(loaded: list[str], package: str) -> list[str]:
    return [m for m in loaded if m == package or m.startswith(package + ".")]


@pytest.mark.parametrize(
    "module",
    [
        "reconciler.rules",
        "reconciler.rules.language",
        "reconciler.rules.patterns",
        "reconciler.rules.sql",
    ],
)
def test_the_rule_language_is_a_leaf(module: str) -> None:
    loaded = _loaded(module)
    assert _under(loaded, "reconciler.config") == []
    assert _under(loaded, "reconciler.engines") == []


def test_the_engines_import_nothing_of_the_configuration() -> None:
    loaded = _loaded(
        "reconciler.engines",
        "reconciler.engines._base",
        "reconciler.engines._duckdb",
        "reconciler.engines._spark",
        "reconciler.engines._warehouse",
        "reconciler.engines.readers",
    )
    assert _under(loaded, "reconciler.config") == []
    assert "reconciler.rules" in loaded  # they compile rules: the probe is not vacuous


def test_the_configuration_loads_without_the_membership_diff() -> None:
    """config/ is upstream of membership/: loading a config never imports the diff."""
    loaded = _loaded("reconciler.config")
    assert _under(loaded, "reconciler.membership") == []
