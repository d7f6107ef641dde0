"""``Reconciler.drift`` classifies each pending change by the state store's record of the
customers those changes name, loaded alone: the reports equal those made from the whole record,
and the rest of the audience is never read from the state store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _scenario import apply, reconciler, write_config
from test_drift_full import corrupt_snapshot

from reconciler.drift import drift_reports
from reconciler.plan.changes import LinkChange, Phase
from reconciler.statestore import StateStore


def test_drift_loads_the_pending_customers_alone_and_reports_as_from_the_whole_record(
    fresh_sandbox: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    state = tmp_path / "state.db"
    apply(write_config(tmp_path, ["epsilon", "talonone"]), fresh_sandbox, state)
    corrupt_snapshot(state)  # the record is wrong about a few customers
    edited = write_config(tmp_path, ["epsilon", "talonone"], edited=True)  # and the config moved
    loaded: list[tuple[str, frozenset[str] | None]] = []
    real = StateStore.load

    def load(self: StateStore, target: str, **kw: Any) -> Any:
        customers = kw.get("customers")
        if customers is not None:
            kw["customers"] = customers = frozenset(customers)
        if kw.get("membership", True):
            loaded.append((target, customers))
        return real(self, target, **kw)

    monkeypatch.setattr(StateStore, "load", load)
    rec = reconciler(edited, fresh_sandbox, state)
    check = asyncio.run(rec.drift())

    named = {
        tp.target: frozenset(c.key for c in tp.changes if c.phase in (Phase.CUSTOMERS, Phase.LINKS))
        for tp in check.plan.targets
    }
    assert dict(loaded) == named  # each target once, with the customers its changes name
    assert all(named.values())
    assert len(named["eps"]) < len(real(rec.store, "eps").customers)
    monkeypatch.setattr(StateStore, "load", real)
    whole = drift_reports(check.plan, rec.last_applied())
    assert [r.as_dict() for r in check.reports] == [r.as_dict() for r in whole]
    # the sides hang on the record: a link change of a customer it holds is "config" only
    # when the record's segments are the change's before (an empty record would say otherwise)
    held = [
        c
        for tp in check.plan.targets
        for c in tp.changes
        if isinstance(c, LinkChange) and c.before and c.key in real(rec.store, tp.target).links
    ]
    assert held
