"""The distributions: a wheel and an sdist build offline from the source tree, their metadata
passes the core-metadata checks (``packaging.metadata``, what ``twine check`` and PyPI
enforce), they carry the licence, the schemas and the command, and the wheel installs and runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.metadata import Metadata
from packaging.requirements import Requirement

import reconciler

ROOT = Path(__file__).parent.parent
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in"]

PIP_INSTALL = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]

pytest.importorskip("build")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist built from a copy of the tree (the tree itself stays untouched),
    with the backend installed here: no network."""
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "reconciler", src / "reconciler", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def _check(metadata: Metadata) -> None:
    assert metadata.name == "audience-reconciler"
    assert str(metadata.version) == reconciler.__version__
    assert metadata.license_expression == "Apache-2.0"
    assert metadata.license_files == ["LICENSE"]
    assert metadata.description_content_type == "text/markdown"
    assert metadata.description is not None
    assert metadata.description.startswith("# audience-reconciler")
    assert str(metadata.requires_python) == ">=3.11"
    assert metadata.summary
    assert set(metadata.provides_extra or ()) >= {"spark", "warehouse", "test"}
    names = {Requirement(str(r)).name for r in metadata.requires_dist or ()}
    assert {"httpx", "typer", "duckdb", "uvicorn"} <= names


def test_the_wheel_has_valid_metadata_the_licence_the_schemas_and_the_command(
    dist: Path,
) -> None:
    wheel = _one(dist, "audience_reconciler-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"audience_reconciler-{reconciler.__version__}.dist-info"
        metadata = Metadata.from_email(zf.read(f"{info}/METADATA"), validate=True)
        licence = zf.read(f"{info}/licenses/LICENSE").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    _check(metadata)
    assert licence == (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert "reconcile = reconciler.__main__:main" in entry_points
    assert {
        "reconciler/py.typed",
        "reconciler/schemas/audiences.schema.json",
        "reconciler/schemas/plan.schema.json",
    } <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]


def test_the_sdist_has_valid_metadata_and_the_sources(dist: Path) -> None:
    sdist = _one(dist, "audience_reconciler-*.tar.gz")
    top = f"audience_reconciler-{reconciler.__version__}"
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
        pkg_info = tf.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        metadata = Metadata.from_email(pkg_info.read(), validate=True)
    _check(metadata)
    for name in SOURCES:
        assert f"{top}/{name}" in names
    assert f"{top}/reconciler/schemas/audiences.schema.json" in names


def test_the_wheel_installs_and_runs(dist: Path, tmp_path: Path) -> None:
    wheel = _one(dist, "audience_reconciler-*-py3-none-any.whl")
    target = tmp_path / "site"
    done = subprocess.run(
        [*PIP_INSTALL, "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "reconciler", "schema"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert ran.returncode == 0, ran.stderr
    assert '"$schema"' in ran.stdout
    version = subprocess.run(
        [sys.executable, "-c", "import reconciler; print(reconciler.__file__)"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
    )
    assert version.stdout.strip().startswith(str(target))  # the installed copy ran
