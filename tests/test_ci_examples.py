"""The CI examples: the workflow is a valid GitHub Actions workflow, the hooks run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from _scenario import cli, write_config

import reconciler

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


# -- the pinned install, and the reusable action ---------------------------------------------

ACTION = ROOT / "action.yml"
ACTION_EXAMPLE = ROOT / "examples" / "ci" / "audiences-action.yml"
GIT_INSTALL = (
    'pip install "audience-reconciler @ '
    'git+https://github.com/${RECONCILER_REPOSITORY}@${RECONCILER_VERSION}"'
)


def vendored_schema(name: str) -> dict[str, object]:
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas")
    schema: dict[str, object] = json.loads(
        resources.files(vendor).joinpath("vendor", name).read_text()
    )
    return schema


def schema_errors(document: object, name: str) -> list[str]:
    schema = vendored_schema(name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [e.message for e in sorted(validator.iter_errors(document), key=lambda e: list(e.path))]


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return action


def action_step(name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = load_action()["runs"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith(name)]
    return step


def test_workflow_installs_a_pinned_release_from_the_repository() -> None:
    workflow: dict[str, Any] = load_workflow()  # type: ignore[assignment]
    text = WORKFLOW.read_text()
    assert "pip install audience-reconciler\n" not in text  # not on PyPI
    assert workflow["env"]["RECONCILER_REPOSITORY"] == "OWNER/REPO"
    assert workflow["env"]["RECONCILER_VERSION"] == f"v{reconciler.__version__}"
    assert "SET BOTH" in text
    for name, job in workflow["jobs"].items():
        installs = [s for s in job["steps"] if "pip install" in s.get("run", "")]
        assert [s["run"] for s in installs] == [GIT_INSTALL], name


def test_the_action_matches_the_github_action_schema() -> None:
    assert schema_errors(load_action(), "github-actions.json") == []
    assert load_action()["runs"]["using"] == "composite"


def test_the_action_schema_check_catches_a_broken_action() -> None:
    action = load_action()
    del action["description"]
    action["runs"]["steps"][1].pop("shell")  # a composite run step must name its shell
    assert len(schema_errors(action, "github-actions.json")) >= 2


def test_the_action_installs_validates_plans_comments_and_uploads() -> None:
    install = action_step("Install")
    assert install["run"].endswith(
        'pip install --disable-pip-version-check -q "$GITHUB_ACTION_PATH"'
    )
    assert action_step("Validate")["run"] == 'reconcile validate "$CONFIG"'
    plan = action_step("Plan")["run"]
    assert (
        'reconcile plan "$CONFIG" $ARGS --out "$PLAN_FILE" --detailed-exitcode --format markdown'
        in plan
    )
    upload = action_step("Upload")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == "${{ inputs.plan-file }}"
    comment = action_step("Comment")
    assert comment["uses"] == "actions/github-script@v7"
    assert "${{" not in comment["with"]["script"]  # inputs reach the script as variables only
    for flag in ("--out", "--detailed-exitcode", "--format"):
        assert flag in cli("plan", "--help").stdout


def test_the_example_workflow_uses_the_action_at_a_release_tag() -> None:
    workflow: dict[object, Any] = yaml.safe_load(ACTION_EXAMPLE.read_text())
    workflow["on"] = workflow.pop(True)
    assert schema_errors(workflow, "github-workflows.json") == []
    uses = [s for s in workflow["jobs"]["plan"]["steps"] if s["uses"].startswith("OWNER/")]
    assert [s["uses"] for s in uses] == [f"OWNER/REPO@v{reconciler.__version__}"]
    assert workflow["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    assert "Replace OWNER/REPO" in ACTION_EXAMPLE.read_text()


def _run_comment_script(tmp_path: Path, existing: list[dict[str, object]]) -> list[Any]:
    """The action's comment script run by Node against a stand-in GitHub API: what it called."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = action_step("Comment")["with"]["script"]
    harness = tmp_path / "harness.js"
    harness.write_text(
        "const calls = [];\n"
        "const existing = JSON.parse(process.env.EXISTING);\n"
        "const github = {\n"
        "  rest: { issues: {\n"
        "    listComments: 'list',\n"
        "    updateComment: async (a) => { calls.push(['update', a]); },\n"
        "    createComment: async (a) => { calls.push(['create', a]); },\n"
        "  } },\n"
        "  paginate: async (what, args) => {\n"
        "    calls.push(['list', what, args]);\n"
        "    return existing;\n"
        "  },\n"
        "};\n"
        "const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };\n"
        f"(async () => {{\n{script}\n}})()\n"
        "  .then(() => console.log(JSON.stringify(calls)))\n"
        "  .catch((e) => { console.error(e); process.exit(1); });\n"
    )
    (tmp_path / "plan.md").write_text("## Plan\n3 to add\n")
    done = subprocess.run(
        [node, str(harness)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "EXISTING": json.dumps(existing),
            "CONFIG": "audiences.yaml",
            "RUNNER_TEMP": str(tmp_path),
            "PATH": os.environ.get("PATH", ""),
        },
    )
    assert done.returncode == 0, done.stderr
    calls: list[Any] = json.loads(done.stdout)
    return calls


def test_the_action_creates_one_comment_then_updates_it(tmp_path: Path) -> None:
    marker = "<!-- audience-reconciler plan: audiences.yaml -->"
    body = f"{marker}\n## Plan\n3 to add\n"
    first = _run_comment_script(tmp_path, [{"id": 1, "body": "LGTM"}])
    assert first[0] == [
        "list",
        "list",
        {"owner": "o", "repo": "r", "issue_number": 7, "per_page": 100},
    ]
    assert first[1:] == [["create", {"owner": "o", "repo": "r", "issue_number": 7, "body": body}]]
    others: list[dict[str, object]] = [
        {"id": 1, "body": "LGTM"},
        {"id": 2, "body": "<!-- audience-reconciler plan: staging.yaml -->\nold"},
        {"id": 3, "body": f"{marker}\nold"},
        {"id": 4, "body": None},
    ]
    again = _run_comment_script(tmp_path, others)
    assert again[1:] == [["update", {"owner": "o", "repo": "r", "comment_id": 3, "body": body}]]


def test_the_action_plan_step_runs_as_written(tmp_path: Path) -> None:
    """The Plan step's script, run by bash as the runner would (against the sandbox): its
    outputs, the saved plan and the summary."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "reconcile").exists():  # pragma: no cover - not installed as a command
        pytest.skip("the reconcile command is not installed beside this Python")
    write_config(tmp_path, ["epsilon"])
    step = action_step("Plan")
    assert set(step["env"]) == {"CONFIG", "ARGS", "PLAN_FILE"}
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "CONFIG": "audiences.yaml",
        "ARGS": "--sandbox",
        "PLAN_FILE": "plan.json",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
    done = subprocess.run(shell, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert output.read_text().splitlines() == ["exitcode=2", "has-changes=true"]
    assert json.loads((tmp_path / "plan.json").read_text())["targets"]
    assert summary.read_text() == (tmp_path / "plan.md").read_text()
    assert "seg-a" in summary.read_text()
    env["CONFIG"] = "missing.yaml"
    failed = subprocess.run(
        shell, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert failed.returncode == 1  # an error fails the step; changes pending do not
