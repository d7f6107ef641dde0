"""`reconcile drift --full` through the CLI: the state store's snapshot against a full read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from _scenario import apply, cli, write_config

from reconciler.model import StateBuilder
from reconciler.statestore import StateStore


def common(sb: Any, tmp: Path) -> list[str]:
    return ["--sandbox-url", sb.url, "--state", str(tmp / "state.db")]


def drop_member(cfg: Path, customer: str) -> None:
    """Edit the config: ``customer`` leaves seg-a."""
    path = cfg.parent / "a.txt"
    path.write_text("".join(f"{c}\n" for c in path.read_text().split() if c != customer))


def corrupt_snapshot(state: Path) -> None:
    """Make the state store wrong about eps: c0002 forgotten, a ghost customer, c0005 moved."""
    store = StateStore(state)
    last = store.load("eps")
    b = StateBuilder()
    for seg in last.segments.values():
        b.add_segment(seg)
    for seg_id, teams in last.access.items():
        b.set_access(seg_id, teams)
    b.add_customers(c for c in last.customers if c != "c0002")
    b.add_customers(["ghost"])
    for customer, segs in last.links.items():
        if customer != "c0002":
            b.set_links(customer, segs)
    b.set_links("ghost", ["seg-a"]).set_links("c0005", ["seg-b"])
    protected = store.protected("eps")
    store.replace("eps", b.build())
    store.set_protection("eps", protected)  # replace() drops the prevent_destroy flags
    store.close()


def test_in_sync_right_after_an_apply(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    done = cli("drift", str(cfg), "--full", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "eps: in sync" in done.stdout
    assert "eps: the state store matches the platform (customers, links read in full)" in (
        done.stdout
    )
    assert "not checked: segments, access" in done.stdout


def test_a_platform_change_equal_to_the_desired_state(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    # the config drops c0001 from seg-a, and someone does the same on Epsilon by hand
    drop_member(cfg, "c0001")
    fresh_sandbox.seed({"epsilon": {"customers": [{"id": "c0001", "segmentIds": []}]}})

    plain = cli("drift", str(cfg), *common(fresh_sandbox, tmp_path))
    assert plain.returncode == 0, plain.stdout + plain.stderr  # nothing left to change...
    assert "eps: in sync" in plain.stdout

    full = cli("drift", str(cfg), "--full", *common(fresh_sandbox, tmp_path))
    assert full.returncode == 2, full.stdout + full.stderr  # ...but the snapshot is wrong
    assert "eps: no pending change" in full.stdout
    assert "eps: the state store is stale: 1 difference(s)" in full.stdout
    assert (
        "1 customer(s) in other segments than the state store records: "
        "c0001 (state store: seg-a; platform: none)"
    ) in full.stdout
    # the fix, with the file as given on the command line (relative to where it ran)
    # and the flags this run needed (a printed command runs as printed)
    fix = (
        f"fix: `reconcile refresh {os.path.relpath(cfg)} --target eps "
        f"--state {tmp_path / 'state.db'} --sandbox-url {fresh_sandbox.url}`"
    )
    assert fix in full.stdout


def test_a_snapshot_edited_to_be_wrong_in_json(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    corrupt_snapshot(tmp_path / "state.db")

    done = cli("drift", str(cfg), "--full", "-f", "json", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 2, done.stderr
    body = json.loads(done.stdout)
    assert body["in_sync"] is False
    (target,) = body["targets"]
    assert target["changes"] == 0  # the plan reads membership live: it sees no change
    assert target["snapshot"] == {
        "in_sync": False,
        "checked": ["customers", "links"],
        "not_checked": {"segments": "state store", "access": "state store"},
        "customers": {
            "missing": {"count": 1, "examples": ["ghost"]},
            "unknown": {"count": 1, "examples": ["c0002"]},
            "differ": {
                "count": 1,
                "examples": ["c0005"],
                "details": {"c0005": {"state_store": ["seg-b"], "platform": ["seg-a"]}},
            },
        },
    }
    assert body["plan"]["targets"][0]["target"] == "eps"

    # without --full the same store is not drift: the key is absent and the exit code 0
    plain = cli("drift", str(cfg), "-f", "json", *common(fresh_sandbox, tmp_path))
    assert plain.returncode == 0, plain.stderr
    assert "snapshot" not in json.loads(plain.stdout)["targets"][0]

    md = cli("drift", str(cfg), "--full", "-f", "markdown", *common(fresh_sandbox, tmp_path))
    assert md.returncode == 2
    assert md.stdout.startswith("## Drift detected")
    assert "### State store against a full read of the platform" in md.stdout
    assert "- eps: the state store is stale: 3 difference(s)" in md.stdout
    assert "  - 1 customer(s) in the state store, not on the platform: ghost" in md.stdout
    assert "reconcile refresh" in md.stdout


def test_talonone_audiences_are_compared_too(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    apply(cfg, fresh_sandbox, tmp_path / "state.db")
    # renamed on the platform to what the config now says; and an audience marked as made by
    # this tool (a forgotten one, say) but not managed: its members are read, not compared
    cfg.write_text(cfg.read_text().replace("name: Beta\n", "name: Beta renamed\n"))
    fresh_sandbox.seed(
        {
            "talonone": {
                "audiences": [
                    {
                        "integrationId": "seg-b",
                        "name": "Beta renamed",
                        "integration": "audience-reconciler",
                    },
                    {
                        "integrationId": "theirs",
                        "name": "Not managed",
                        "integration": "audience-reconciler",
                        "members": ["c0001", "c0999"],
                    },
                ]
            }
        }
    )
    done = cli("drift", str(cfg), "--full", "-f", "json", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 2, done.stderr
    (target,) = json.loads(done.stdout)["targets"]
    assert target["changes"] == 0
    snapshot = target["snapshot"]
    assert snapshot["checked"] == ["segments", "links"]
    assert snapshot["not_checked"] == {}
    assert snapshot["segments"] == {
        "missing": {"count": 0, "examples": []},
        "differ": {
            "count": 1,
            "examples": ["seg-b"],
            "details": {
                "seg-b": {"state_store": {"name": "Beta"}, "platform": {"name": "Beta renamed"}}
            },
        },
    }
    # membership of an audience the reconciler does not manage is not a stale record
    assert snapshot["customers"]["unknown"]["count"] == 0
    assert snapshot["customers"]["differ"]["count"] == 0


def test_errors_are_one_line_and_exit_1(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    done = cli("drift", str(cfg), "--full", "--target", "nope", *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Error: unknown target(s) nope")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
