"""Shared fixtures: one sandbox per test session (per xdist worker), reset for each test; one
local Spark session per worker, started by the first test that needs it and shared by every
Spark test (a JVM start and its warm-up cost more than most tests); the example project applied
once a run, locally (``--sandbox``) and to a worker's sandbox, as templates a test copies (a
copy costs far less than an apply of the example's 3,000 customers), by the first worker that
needs each."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from reconciler.sandbox import RATE_LIMIT_VAR, Sandbox

if TYPE_CHECKING:
    from reconciler.engines import SparkEngine

#: ``applied_scenario(kinds)``: the config of the applied scenario
ScenarioApply = Callable[[list[str]], Path]

#: the example project, as a user copies it
EXAMPLE = Path(__file__).resolve().parents[1] / "examples"

#: High enough that the Management API limit never trips unless a test lowers it.
FAST_RATE_LIMIT = 10_000.0
# ... and the limit of every sandbox ``--sandbox`` starts (a test of the platform's pace builds
# its sandbox itself); a child process inherits it
os.environ[RATE_LIMIT_VAR] = str(FAST_RATE_LIMIT)

#: the settings of the one Spark session; a config naming ``spark: {master: local[2]}`` gets
#: this session back (``getOrCreate``)
SPARK_MASTER = "local[2]"
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    # a test JVM lives for one run over tiny tables: the optimising JIT (C2) compiled for
    # most of its CPU time and never paid back; the client JIT and the serial collector
    # (no parallel GC threads) are enough, and the results are the same
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto",
}


#: the xdist group of every test on the Spark session: one worker runs them all and starts the
#: only JVM (``--dist loadgroup``, the default in pyproject.toml); a second JVM's start and
#: warm-up cost more CPU than the tests the other worker could take from the group
SPARK_GROUP = pytest.mark.xdist_group("spark")

#: the xdist group of the tests that read answers with the official Talon.One SDK's models: its
#: import takes 1.4 s of CPU, paid once by the one worker that runs them all
TALON_ONE_SDK_GROUP = pytest.mark.xdist_group("talon_one_sdk")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the Spark session is in the Spark group (a test that asks for it
    while running carries the mark itself)."""
    for item in items:
        if "spark_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(SPARK_GROUP)


@pytest.hookimpl(specname="pytest_collection_modifyitems", trylast=True)  # after xdist's own
def pytest_collection_modifyitems_after_xdist(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """``--dist loadgroup`` on an xdist worker: each grouped test's node id ends with its group,
    as xdist means it to (``...::test@spark``, the group its scheduler reads). xdist 3.8 writes
    that id to ``item._nodeid``, which pytest 9.2's structured node ids no longer read: every
    group was silently spread over the workers (pytest-dev/pytest-xdist#1386)."""
    if not getattr(config.option, "loadgroup", False) or not items:
        return
    if not hasattr(items[0], "_id"):  # pytest before 9.2: xdist's own id took
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


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
    """A plain HTTP client that never consults proxy settings (loopback only: no TLS context,
    whose CA bundle costs ~25 ms a test to load)."""
    with httpx.Client(trust_env=False, timeout=10.0, verify=False) as client:  # noqa: S501
        yield client


def copy_example(folder: Path) -> Path:
    """The example project copied to ``folder`` (without a ``.reconcile`` folder): its config."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".reconcile"))
    return folder / "audiences.yaml"


def _run_folder(factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this run sees (under xdist each worker's temporary folder is
    inside the run's)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_a_run(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, made by ``build(folder)`` once a run, by the first worker that asks for it,
    under a lock; the others wait for the lock and find it made. A build that failed leaves no
    mark: the next one starts again from an empty folder."""
    from filelock import FileLock

    made = folder.with_name(folder.name + ".made")
    with FileLock(f"{folder}.lock"):
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            made.touch()
    return folder


@pytest.fixture(scope="session")
def example_applied_locally(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example applied once with ``--sandbox``: its folder, whose ``.reconcile``
    holds the local sandbox's platforms and the state store. A template, made once a run
    (:func:`once_a_run`): tests copy it (``shutil.copytree``) and never change it."""
    from _scenario import cli

    def build(folder: Path) -> None:
        config = copy_example(folder / "ex")
        done = cli("apply", str(config), "--sandbox", "--auto-approve")
        assert done.returncode == 0, done.stderr

    return once_a_run(_run_folder(tmp_path_factory) / "example-local", build) / "ex"


class Applied:
    """Projects applied once to a sandbox, kept as templates: for each, a folder (the project
    and its state store, ``state.db``) and the platforms' state the apply left.
    :meth:`restore` gives a test the result of that apply for the cost of a seed and a copy.

    A template is made once a run (:func:`once_a_run`), on the sandbox of the worker that asks
    for it first. Nothing in it names that sandbox (its address is given on each command
    line), so any worker's sandbox can be seeded with it."""

    def __init__(self, sandbox: Sandbox, shared: Path) -> None:
        self._sandbox = sandbox
        self._shared = shared
        self._made: dict[str, tuple[Path, dict[str, Any]]] = {}

    def _template(self, name: str, build: Callable[[Path], None]) -> tuple[Path, dict[str, Any]]:
        if name not in self._made:

            def make(folder: Path) -> None:
                self._sandbox.reset()
                (folder / "root").mkdir()
                build(folder / "root")
                (folder / "remote.json").write_text(json.dumps(self._sandbox.state()))
                self._sandbox.reset()

            folder = once_a_run(self._shared / f"applied-{name}", make)
            self._made[name] = (folder / "root", json.loads((folder / "remote.json").read_text()))
        return self._made[name]

    def restore(self, name: str, build: Callable[[Path], None], folder: Path) -> None:
        """The sandbox holds what ``build(folder)`` would leave on it (its state seeded back
        and checked equal), and ``folder`` the files it would leave there (copied from the
        template, built once, by ``build``, in a folder of its own). Call it first: it
        empties the sandbox."""
        root, remote = self._template(name, build)
        self._sandbox.reset()
        self._sandbox.seed(remote)
        assert self._sandbox.state() == remote
        shutil.copytree(root, folder, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def _applied(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Applied:
    return Applied(sandbox, _run_folder(tmp_path_factory))


@pytest.fixture
def example_on_sandbox(_applied: Applied, fresh_sandbox: Sandbox, tmp_path: Path) -> Path:
    """The example applied to the sandbox (``apply --sandbox-url``), as that apply leaves it:
    the project in ``tmp_path / "project"``, its state store ``tmp_path / "state.db"``.
    Returns the config's path."""
    from _scenario import cli

    def build(root: Path) -> None:
        config = copy_example(root / "project")
        common = ["--sandbox-url", fresh_sandbox.url, "--state", str(root / "state.db")]
        done = cli("apply", str(config), "--auto-approve", *common)
        assert done.returncode == 0, done.stderr

    _applied.restore("example", build, tmp_path)
    return tmp_path / "project" / "audiences.yaml"


@pytest.fixture
def applied_scenario(_applied: Applied, fresh_sandbox: Sandbox, tmp_path: Path) -> ScenarioApply:
    """``applied_scenario(kinds)``: ``write_config(tmp_path, kinds)`` applied to the sandbox
    with ``_scenario.apply`` (state store ``tmp_path / "state.db"``), as that apply leaves
    the sandbox and ``tmp_path``. Returns the config's path."""
    from _scenario import reconciler, write_config

    def build(root: Path, kinds: list[str]) -> None:
        rec = reconciler(write_config(root, kinds), fresh_sandbox, root / "state.db")
        try:  # _scenario.apply, its state store closed before the template is copied
            current = asyncio.run(rec.plan())
            results = asyncio.run(rec.apply(current))
        finally:
            rec.store.close()
        assert all(r.ok for r in results)

    def applied(kinds: list[str]) -> Path:
        _applied.restore("+".join(kinds), lambda root: build(root, kinds), tmp_path)
        return tmp_path / "audiences.yaml"

    return applied
