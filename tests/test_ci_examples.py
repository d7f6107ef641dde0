"""The CI examples: the workflow is a valid GitHub Actions workflow, the hooks run."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from _scenario import cli

ROOT = Path(__file__).parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "audiences.yml"


def load_workflow() -> dict[object, object]:
    """As GitHub reads it (YAML 1.2: ``on`` is a key, not the boolean PyYAML makes of it)."""
    data: dict[object, object] = yaml.safe_load(WORKFLOW.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def github_workflow_schema() -> dict[str, object]:
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas")
    text = resources.files(vendor).joinpath("vendor", "github-workflows.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


def test_workflow_matches_the_github_workflow_schema() -> None:
    workflow = load_workflow()
    schema = github_workflow_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(workflow), key=lambda e: list(e.path))
    assert [e.message for e in errors] == []


def test_workflow_does_what_the_readme_says() -> None:
    workflow: dict[str, dict[str, str]] = load_workflow()  # type: ignore[assignment]
    triggers = workflow["on"]
    assert set(triggers) >= {"pull_request", "push", "schedule"}
    jobs = workflow["jobs"]
    assert set(jobs) == {"plan", "apply", "drift"}
    text = WORKFLOW.read_text()
    assert (
        "reconcile plan audiences.yaml --out plan.json --detailed-exitcode --format markdown"
        in text
    )
    assert "reconcile apply plan.json" in text
    assert "reconcile drift audiences.yaml --format markdown" in text
    # secrets only from the environment, never literal
    assert all(
        v.startswith("${{ secrets.")
        for k, v in workflow["env"].items()
        if "KEY" in k or "TOKEN" in k
    )


def test_a_refused_plan_is_still_commented_then_fails_the_check() -> None:
    jobs: dict[str, dict[str, list[dict[str, str]]]] = load_workflow()["jobs"]  # type: ignore[assignment]
    steps = jobs["plan"]["steps"]
    names = [step.get("name", step.get("uses", step.get("run", ""))) for step in steps]
    plan = steps[names.index("Plan")]
    # exit 1 with a plan written (apply would refuse it) does not stop the job here
    assert 'if [ "$code" -eq 1 ] && [ ! -s plan.md ]; then exit 1; fi' in plan["run"]
    comment = names.index("Comment the plan on the pull request")
    assert "if" not in steps[comment]
    last = steps[-1]
    assert comment < len(steps) - 1
    assert last["if"] == "steps.plan.outputs.exitcode == '1'"
    assert last["run"] == "exit 1"


def test_every_reconcile_command_in_the_workflow_exists() -> None:
    commands = set(re.findall(r"reconcile (\w+)", WORKFLOW.read_text()))
    assert commands == {"validate", "plan", "apply", "drift", "state"}
    for command in commands:
        done = cli(command, "--help")
        assert done.returncode == 0, done.stderr


def test_pre_commit_hook_validates_files(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {"id", "name", "entry", "language", "files"} <= set(hook)
    assert re.search(hook["files"], "examples/audiences.yaml")
    assert not re.search(hook["files"], "examples/data/customers.csv")
    entry = hook["entry"].split()
    assert entry[:1] == ["reconcile"]
    bad = tmp_path / "audiences.yaml"
    bad.write_text("version: 1\ntargets: {}\nsegments: []\nsurprise: 1\n")
    good = ROOT / "examples" / "audiences.yaml"
    done = cli(*entry[1:], str(good), str(bad))
    assert done.returncode == 1
    assert f"{bad}:4:1: surprise:" in done.stderr
    assert "audiences.yaml is valid" in done.stderr


def test_the_schema_check_catches_a_broken_workflow() -> None:
    workflow = load_workflow()
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict)
    del jobs["drift"]["runs-on"]
    jobs["plan"]["steps"][0]["uses"] = 42
    schema = github_workflow_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert len(list(validator.iter_errors(workflow))) >= 2


def test_workflow_plans_applies_and_checks_each_environment_with_its_own_state() -> None:
    jobs = load_workflow()["jobs"]
    assert isinstance(jobs, dict)
    for name in ("plan", "apply", "drift"):
        job = jobs[name]
        assert job["strategy"]["matrix"]["environment"] == ["staging", "production"]
        assert job["env"]["RECONCILE_ENV"] == "${{ matrix.environment }}"
        assert "${{ matrix.environment }}" in job["env"]["RECONCILE_STATE"]
    assert jobs["apply"]["strategy"]["max-parallel"] == 1  # staging, then production
    uploads = [s for s in jobs["plan"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads[0]["with"]["name"] == "plan-${{ matrix.environment }}"
