"""Shared fixtures: one sandbox per test session (per xdist worker), reset for each test; one
local Spark session per worker, started by the first test that needs it and shared by every
Spark test (a JVM start and its warm-up cost more than most tests); the example project applied
once per worker, locally (``--sandbox``) and to the session sandbox, as templates a test copies
(a copy costs far less than an apply of the example's 3,000 customers)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from reconciler.sandbox import Sandbox

if TYPE_CHECKING:
    from reconciler.engines import SparkEngine

#: the example project, as a user copies it
EXAMPLE = Path(__file__).resolve().parents[1] / "examples"

#: High enough that the Management API limit never trips unless a test lowers it.
FAST_RATE_LIMIT = 10_000.0

#: the settings of the one Spark session; a config naming ``spark: {master: local[2]}`` gets
#: this session back (``getOrCreate``)
SPARK_MASTER = "local[2]"
SPARK_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    """The local Spark session of this worker, started once (skipped without pyspark)."""
    pytest.importorskip("pyspark")
    from reconciler.engines import SparkEngine

    engine = SparkEngine(SPARK_MASTER, conf=SPARK_CONF)
    engine.session  # noqa: B018 - started here, shared through getOrCreate
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A running sandbox on a free loopback port with a temporary database."""
    db: Path = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    with Sandbox(db, port=0, talonone_rate_limit=FAST_RATE_LIMIT) as sb:
        yield sb


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox, emptied: no state, no request log, no faults, fast rate limit."""
    sandbox.reset()
    return sandbox


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client that never consults proxy settings (loopback only)."""
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        yield client


def copy_example(folder: Path) -> Path:
    """The example project copied to ``folder`` (without a ``.reconcile`` folder): its config."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".reconcile"))
    return folder / "audiences.yaml"


@pytest.fixture(scope="session")
def example_applied_locally(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example applied once with ``--sandbox``: its folder, whose ``.reconcile``
    holds the local sandbox's platforms and the state store. A template: tests copy it
    (``shutil.copytree``) and never change it."""
    from _scenario import cli

    folder = tmp_path_factory.mktemp("example-local") / "ex"
    config = copy_example(folder)
    done = cli("apply", str(config), "--sandbox", "--auto-approve")
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="session")
def _example_on_sandbox_template(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The example applied once to the (emptied) session sandbox: a folder holding the project
    (``project/``) and the state store (``state.db``), and the platforms' state it left."""
    from _scenario import cli

    root = tmp_path_factory.mktemp("example-on-sandbox")
    config = copy_example(root / "project")
    sandbox.reset()
    common = ["--sandbox-url", sandbox.url, "--state", str(root / "state.db")]
    done = cli("apply", str(config), "--auto-approve", *common)
    assert done.returncode == 0, done.stderr
    remote = sandbox.state()
    sandbox.reset()
    return root, remote


@pytest.fixture
def example_on_sandbox(
    _example_on_sandbox_template: tuple[Path, dict[str, Any]],
    fresh_sandbox: Sandbox,
    tmp_path: Path,
) -> Path:
    """The example applied to the sandbox, as an apply leaves it: the platforms' state seeded
    back (checked equal), the project copied to ``tmp_path / "project"`` and its state store to
    ``tmp_path / "state.db"``. Returns the config's path."""
    root, remote = _example_on_sandbox_template
    fresh_sandbox.seed(remote)
    assert fresh_sandbox.state() == remote
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return tmp_path / "project" / "audiences.yaml"
