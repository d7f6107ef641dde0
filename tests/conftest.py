"""Shared fixtures: one sandbox per test session (per xdist worker), reset for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox import Sandbox

#: High enough that the Management API limit never trips unless a test lowers it.
FAST_RATE_LIMIT = 10_000.0


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
