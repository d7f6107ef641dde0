"""The plan is a leaf above the model: importing it loads no provider, config, engine or
command-line module; and its joins are typed (a plan's sources and refresh are enums, read back
as enums from a plan file), display strings being made by the renderers alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler.drift import drift_report
from reconciler.exceptions import PlanError
from reconciler.model import Segment, State, StateBuilder
from reconciler.plan import (
    Capabilities,
    Plan,
    Refresh,
    RemoteState,
    Source,
    build_target_plan,
    plan_from_json,
    plan_json,
)
from reconciler.plan.changes import Phase
from reconciler.plan.diff import Ownership
from reconciler.render import render_markdown, render_text

FORBIDDEN = ("reconciler.providers", "reconciler.config", "reconciler.engines", "reconciler.cli")


def test_importing_the_plan_loads_no_layer_above_it() -> None:
    code = (
        "import sys, json, reconciler.plan, reconciler.plan.planfile, reconciler.plan.safety;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('reconciler'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout)
    assert "reconciler.plan.build" in loaded  # the import did happen
    above = [m for m in loaded if m.startswith(FORBIDDEN) or m == "reconciler.manager"]
    assert above == []


def _plan(refresh: Refresh = Refresh.NONE) -> Plan:
    desired = StateBuilder().add_segment(Segment("s1", "One")).set_links("c1", ["s1"])
    sources = {Phase.SEGMENTS: Source.STATE_STORE, Phase.LINKS: Source.LIVE}
    tp = build_target_plan(
        "t",
        "epsilon",
        Capabilities(batch_size=dict.fromkeys(Phase, 10)),
        desired.build(),
        RemoteState(State(), sources),
        Ownership(),
    )
    return Plan("audiences.yaml", "digest", (tp,), refresh=refresh)


def test_a_plan_file_reads_back_enums() -> None:
    back = plan_from_json(plan_json(_plan()))
    assert back.refresh is Refresh.NONE
    (tp,) = back.targets
    assert all(isinstance(p, Phase) for p in tp.sources)
    assert tp.sources == {Phase.SEGMENTS: Source.STATE_STORE, Phase.LINKS: Source.LIVE}
    assert all(type(s) is Source for s in tp.sources.values())
    data = json.loads(plan_json(_plan()))  # and the file holds the plain values
    assert data["refresh"] == "none"
    assert data["targets"][0]["sources"] == {"segments": "state store", "links": "live read"}


@pytest.mark.parametrize(
    ("field", "value"), [("refresh", "sometimes"), ("sources", {"segments": "a rumour"})]
)
def test_a_plan_file_with_an_unknown_value_is_one_clear_error(field: str, value: object) -> None:
    data = json.loads(plan_json(_plan()))
    if field == "refresh":
        data["refresh"] = value
    else:
        data["targets"][0]["sources"] = value
    with pytest.raises(PlanError, match=r"not a valid plan file: .*(sometimes|a rumour)"):
        plan_from_json(json.dumps(data))


def test_drift_names_the_phases_it_cannot_see_by_enum() -> None:
    report = drift_report(plan_from_json(plan_json(_plan())).targets[0], State())
    assert report.blind == (Phase.SEGMENTS,)
    assert all(type(p) is Phase for p in report.blind)
    assert report.as_dict()["not_read_live"] == ["segments"]


def test_the_renderers_make_the_display_strings() -> None:
    text, markdown = render_text(_plan()), render_markdown(_plan())
    assert "segments from state store, links from live read" in text
    assert "Planned from the state store alone" in text
    assert "segments: state store, links: live read" in markdown
    assert "Planned from the state store alone" in markdown
    assert "Planned from the state store alone" not in render_text(_plan(Refresh.FULL))


def test_the_plan_package_declares_its_public_names() -> None:
    import reconciler.plan as plan

    public = {n for n in vars(plan) if not n.startswith("_") and n != "annotations"}
    modules = {n for n in public if type(getattr(plan, n)).__name__ == "module"}
    assert sorted(public - modules) == sorted(plan.__all__)
    assert modules <= {
        "build",
        "changes",
        "definition",
        "diff",
        "endpoint",
        "fingerprint",
        "inputs",
        "planfile",
        "review",
        "safety",
    }
