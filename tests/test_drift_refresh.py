"""`reconcile refresh` through the CLI: the state store rewritten from a full read, the platform
left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from _scenario import apply, cli, write_config, writes
from test_drift_full import common, corrupt_snapshot

from reconciler.model import Segment
from reconciler.statestore import StateStore


def protect(cfg: Path, name: str) -> None:
    text = cfg.read_text()
    cfg.write_text(
        text.replace(f"    name: {name}\n", f"    name: {name}\n    prevent_destroy: true\n")
    )


def last_mark(sb: Any) -> int:
    log = sb.requests()
    return int(log[-1]["id"]) if log else 0


def test_refresh_repairs_a_wrong_snapshot(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    protect(cfg, "Alpha")
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    # someone also changes the platform: c0001 leaves seg-a
    fresh_sandbox.seed({"epsilon": {"customers": [{"id": "c0001", "segmentIds": []}]}})
    corrupt_snapshot(state)
    store = StateStore(state)
    before = store.load("eps")
    assert store.protected("eps") == {"seg-a"}
    mark = last_mark(fresh_sandbox)

    done = cli("refresh", str(cfg), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "eps: state store refreshed from the platform",
        "  customers added: 1",
        "  customers removed: 1",
        "  links rewritten: 4",
        "  kept as last applied (the platform cannot read them): segments, access",
    ]
    assert writes(fresh_sandbox, since=mark) == []  # nothing written to the platform

    after = store.load("eps")
    assert after.segments == before.segments
    assert after.access == before.access
    assert store.protected("eps") == {"seg-a"}  # prevent_destroy survives the rewrite
    assert "ghost" not in after.customers
    assert "c0002" in after.customers
    assert after.links["c0005"] == {"seg-a"}
    assert "c0001" not in after.links
    store.close()

    # the snapshot is right again; the platform's change to c0001 remains a pending change
    drift = cli("drift", str(cfg), "--full", "-f", "json", *common(fresh_sandbox, tmp_path))
    assert drift.returncode == 2, drift.stderr
    (target,) = json.loads(drift.stdout)["targets"]
    assert target["snapshot"]["in_sync"] is True
    assert target["changes"] == 1
    assert target["sides"] == {"config": 1}  # the store now records the platform's c0001

    # once the config agrees with the platform, everything is in sync
    members = (tmp_path / "a.txt").read_text().split()
    (tmp_path / "a.txt").write_text("".join(f"{c}\n" for c in members if c != "c0001"))
    in_sync = cli("drift", str(cfg), "--full", *common(fresh_sandbox, tmp_path))
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr

    again = cli("refresh", str(cfg), *common(fresh_sandbox, tmp_path))
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""  # in sync: nothing to say


def test_refresh_of_talonone_records_names_and_members(fresh_sandbox: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ["talonone"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    fresh_sandbox.seed(
        {
            "talonone": {
                "audiences": [
                    {
                        "integrationId": "seg-c",
                        "name": "Gamma by hand",
                        "integration": "audience-reconciler",
                        "members": ["c0300", "c0999"],
                    },
                    {"integrationId": "theirs", "name": "Not managed", "members": ["c0001"]},
                ]
            }
        }
    )
    mark = last_mark(fresh_sandbox)
    done = cli("refresh", str(cfg), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "talon: state store refreshed from the platform",
        "  segments updated: 1",
        "  links rewritten: 10",
    ]
    assert writes(fresh_sandbox, since=mark) == []
    store = StateStore(state)
    last = store.load("talon")
    # the name is the platform's, the description (which Talon.One does not hold) is kept;
    # an audience the reconciler does not manage is not recorded (it would become managed)
    assert last.segments["seg-c"] == Segment("seg-c", "Gamma by hand", "Soon gone.")
    assert set(last.segments) == {"seg-a", "seg-b", "seg-c"}
    assert last.members("seg-c") == {"c0300", "c0999"}
    store.close()
    drift = cli("drift", str(cfg), "--full", "-f", "json", *common(fresh_sandbox, tmp_path))
    assert json.loads(drift.stdout)["targets"][0]["snapshot"]["in_sync"] is True


def test_refresh_refuses_while_another_apply_holds_the_lock(
    fresh_sandbox: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, ["epsilon"])
    state = tmp_path / "state.db"
    apply(cfg, fresh_sandbox, state)
    corrupt_snapshot(state)
    store = StateStore(state)
    before = store.load("eps")
    with store.lock("eps"):
        done = cli("refresh", str(cfg), *common(fresh_sandbox, tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: another apply is running on target 'eps' (process {os.getpid()}); "
        "wait for it to finish"
    ]
    assert store.load("eps") == before  # nothing rewritten
    # and the other way round: an apply finds the refresh that holds the lock
    with store.lock("eps", purpose="refresh"):
        refused = cli("apply", str(cfg), "--auto-approve", *common(fresh_sandbox, tmp_path))
    assert refused.returncode == 1
    assert f"another refresh is running on target 'eps' (process {os.getpid()})" in refused.stderr
    store.close()
