"""The example data generator: options, determinism, and ``--help`` that never writes."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "examples" / "data" / "generate_customers.py"
SHIPPED = SCRIPT.with_name("customers.csv")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_help_lists_the_options_and_writes_nothing(tmp_path: Path) -> None:
    before = digest(SHIPPED), SHIPPED.stat().st_mtime_ns
    done = run("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for option in ("--count", "--seed", "--out"):
        assert option in done.stdout
    assert "default: 3000" in done.stdout
    assert (digest(SHIPPED), SHIPPED.stat().st_mtime_ns) == before
    assert list(tmp_path.iterdir()) == []


def test_count_seed_and_out(tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    done = run("--count", "25", "--seed", "7", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["customer_id"] for r in table] == [f"cust_{i:05d}" for i in range(1, 26)]
    again = tmp_path / "again.csv"
    assert run("--count", "25", "--seed", "7", "--out", str(again), cwd=tmp_path).returncode == 0
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "other.csv"
    assert run("--count", "25", "--seed", "8", "--out", str(other), cwd=tmp_path).returncode == 0
    assert other.read_bytes() != out.read_bytes()


def test_the_defaults_make_the_shipped_table(tmp_path: Path) -> None:
    done = run("--out", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == SHIPPED.read_bytes()


def test_a_bad_count_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    done = run("--count", "-3", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert "--count: must be 0 or more, not -3" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
