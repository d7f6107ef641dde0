"""Shared fixtures: one sandbox per test session (per xdist worker), reset for each test; one
local Spark session per worker, started by the first test that needs it and shared by every
Spark test (a JVM start and its warm-up cost more than most tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from reconciler.sandbox import Sandbox

if TYPE_CHECKING:
    from reconciler.engines import SparkEngine

#: High enough that the Management API limit never trips unless a test lowers it.
FAST_RATE_LIMIT = 10_000.0

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
