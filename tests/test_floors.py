"""The declared floors: constraints/floors.txt pins every runtime dependency at its floor.

scripts/check-floors installs those pins in a fresh environment and runs the quick tour (it
needs the network, so it is not run here); these checks keep the pins and pyproject.toml from
drifting apart, offline.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints" / "floors.txt"
SCRIPT = ROOT / "scripts" / "check-floors"


def declared_floors() -> dict[str, Version]:
    """Each runtime dependency of pyproject.toml and the version its ``>=`` allows first."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    floors: dict[str, Version] = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"pyproject.toml: {line!r} declares no single floor (>=)"
        floors[canonicalize_name(req.name)] = lows[0]
    return floors


def pinned() -> dict[str, Version]:
    """Each pin of constraints/floors.txt (``name==version``, nothing else on the line)."""
    pins: dict[str, Version] = {}
    for number, raw in enumerate(CONSTRAINTS.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        where = f"{CONSTRAINTS.name}:{number}: {line!r}"
        assert not req.extras, f"{where}: pip refuses extras in a constraints file"
        assert req.marker is None, f"{where}: a floor holds on every platform"
        specs = list(req.specifier)
        assert len(specs) == 1, f"{where}: one exact pin"
        assert specs[0].operator == "==", f"{where}: one exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{where}: pinned twice"
        pins[name] = Version(specs[0].version)
    return pins


def test_every_runtime_dependency_declares_a_floor() -> None:
    assert declared_floors()


def test_the_constraints_pin_exactly_the_runtime_dependencies() -> None:
    assert sorted(pinned()) == sorted(declared_floors())


def test_each_pin_is_its_declared_floor() -> None:
    floors = declared_floors()
    drifted = {
        name: f"pinned {pin}, declared >={floors[name]}"
        for name, pin in pinned().items()
        if name in floors and pin != floors[name]
    }
    assert drifted == {}


def test_the_script_installs_these_constraints() -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: scripts/check-floors")
    text = SCRIPT.read_text()
    assert "constraints=constraints/floors.txt" in text
    assert '-c "$constraints"' in text


@pytest.mark.parametrize("args", [["--bogus"], ["--constraints"]])
def test_the_script_refuses_bad_arguments_with_its_usage(args: list[str]) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "usage: scripts/check-floors" in done.stderr
    assert "Traceback" not in done.stderr
