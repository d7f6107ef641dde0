"""The command line: exit codes, formats, help on every command, one line per error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from _scenario import cli

from reconciler import __version__
from reconciler.plan import plan_json

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "audiences.yaml"
COMMANDS = [
    "validate",
    "schema",
    "plan",
    "apply",
    "show",
    "drift",
    "import",
    "explain",
    "history",
    "sandbox",
]


def test_version() -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"audience-reconciler {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    done = cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


def test_the_help_lists_every_command() -> None:
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout, command


CREDENTIALS = [
    "EPSILON_BEARER_TOKEN",
    "EPSILON_API_KEY",
    "TALONONE_API_KEY",
    "TALONONE_MANAGEMENT_KEY",
]
#: a command run in a fresh interpreter, then whether the sandbox was imported
_IMPORTS_PROBE = """
import sys
from reconciler.cli import main
sys.argv = ["reconcile", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("sandbox imported:", any(m.startswith("reconciler.sandbox") for m in sys.modules))
"""


@pytest.mark.parametrize(
    ("args", "imported"),
    [
        (["validate", str(EXAMPLE)], False),
        (["-v", "plan", str(EXAMPLE), "--refresh=false", "--state", "{state}"], False),
        (["sandbox", "--help"], True),
    ],
)
def test_only_the_sandbox_commands_import_the_sandbox(
    tmp_path: Path, args: list[str], imported: bool
) -> None:
    """The simulations and uvicorn are imported by the command that serves them, not by
    every command's start."""
    argv = [a.format(state=tmp_path / "state.db") for a in args]
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", **{k: "x" for k in CREDENTIALS}},
    )
    assert f"sandbox imported: {imported}" in done.stdout, done.stdout + done.stderr


def test_validate_the_example() -> None:
    done = cli("validate", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "is valid: 4 segment(s), 2 target(s)" in done.stderr


def test_validate_defaults_to_audiences_yaml_in_the_current_folder() -> None:
    done = cli("validate", cwd=EXAMPLE.parent)
    assert done.returncode == 0, done.stderr


def test_validate_reports_located_problems_as_text_and_json(tmp_path: Path) -> None:
    bad = tmp_path / "audiences.yaml"
    bad.write_text("version: 1\ntargets:\n  x: {type: nope}\nsegments: []\n")
    text = cli("validate", str(bad))
    assert text.returncode == 1
    assert f"{bad}:3:" in text.stderr
    assert "Traceback" not in text.stderr
    as_json = cli("validate", str(bad), "--format", "json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    first = report["problems"][0]
    assert (first["file"], first["line"]) == (str(bad), 3)
    assert first["path"].startswith("targets.x")


def test_missing_file_is_one_located_line(tmp_path: Path) -> None:
    done = cli("plan", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "nope.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_commands_print_valid_json_schemas() -> None:
    for args in (["schema"], ["schema", "--plan"]):
        done = cli(*args)
        assert done.returncode == 0
        schema = json.loads(done.stdout)
        jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(cli("schema").stdout) == json.loads(
        (ROOT / "schemas" / "audiences.schema.json").read_text()
    )


def test_show_renders_a_saved_plan_and_refuses_garbage(tmp_path: Path) -> None:
    from reconciler.model import Segment, State, StateBuilder
    from reconciler.plan import Plan, RemoteState, build_target_plan
    from reconciler.plan.diff import Ownership
    from reconciler.providers.epsilon import EpsilonProvider

    desired = StateBuilder().add_segment(Segment("s1", "One")).set_links("c1", ["s1"]).build()
    tp = build_target_plan(
        "eps",
        "epsilon",
        EpsilonProvider.capabilities,
        desired,
        RemoteState(State(), {}),
        Ownership(),
    )
    saved = tmp_path / "plan.json"
    saved.write_text(plan_json(Plan("audiences.yaml", "0" * 64, (tp,))))
    shown = cli("show", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert "+ segment s1" in shown.stdout
    assert "Plan: 1 segment to create; 1 membership to add." in shown.stdout
    md = cli("show", str(saved), "--format", "markdown")
    assert md.stdout.startswith("### Plan:")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    refused = cli("show", str(garbage))
    assert refused.returncode == 1
    assert "not a valid plan file" in refused.stderr


def test_apply_refuses_without_a_terminal_or_auto_approve(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(EXAMPLE.parent, tmp_path / "ex", ignore=shutil.ignore_patterns(".reconcile"))
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "audiences.yaml", "--sandbox"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path / "ex",
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "refusing to apply without --auto-approve" in done.stderr


def test_missing_credentials_name_the_variable_not_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if "EPSILON" in k or "TALONONE" in k]:
        monkeypatch.delenv(name)
    done = cli("plan", str(EXAMPLE), "--state", str(tmp_path / "s"))
    assert done.returncode == 1
    assert "EPSILON_BEARER_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_entry_point_ends_with_the_commands_status_its_output_and_exit_handlers(
    tmp_path: Path,
) -> None:
    """``python -m reconciler`` ends without the interpreter's teardown: the status and the
    whole output are the command's, and the exit handlers still run (the DuckDB database's
    spill folder, made in the temporary folder, is removed)."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    ok = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(EXAMPLE), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["files"][0]["valid"] is True
    assert not list(tmp_path.glob("reconcile-duckdb-*"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n")
    failed = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(bad)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert failed.returncode == 1
    assert "unsupported version 2" in failed.stderr
    assert failed.stderr.rstrip().endswith("problem(s) found.")


@pytest.mark.parametrize("wait_for", ["nothing", "a thread", "a tracer"])
def test_the_entry_point_leaves_the_teardown_to_python_when_something_may_need_it(
    monkeypatch: pytest.MonkeyPatch, wait_for: str
) -> None:
    """A thread Python's exit would wait for, or a tracer or profiler (which reports at
    exit), keeps the interpreter's own exit; otherwise the exit handlers run, then the
    process ends with the command's status."""
    import atexit
    import threading

    import reconciler.cli as cli

    class Ended(Exception):
        pass

    ran: list[str] = []

    def ended(code: int) -> None:
        ran.append(f"_exit {code}")
        raise Ended

    def command() -> None:
        raise SystemExit(2)

    monkeypatch.setattr(cli, "main", command)
    monkeypatch.setattr(os, "_exit", ended)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append("exit handlers"))
    monkeypatch.setattr(sys, "gettrace", lambda: print if wait_for == "a tracer" else None)
    monkeypatch.setattr(sys, "getprofile", lambda: None)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    if wait_for == "a thread":
        worker.start()
    try:
        if wait_for == "nothing":
            with pytest.raises(Ended):
                cli.entry()
            assert ran == ["exit handlers", "_exit 2"]
        else:
            with pytest.raises(SystemExit) as info:
                cli.entry()
            assert info.value.code == 2
            assert ran == []
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()


def test_the_program_sets_the_collector_before_its_imports_and_freezes_what_they_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import reconciler.__main__ as program
    import reconciler.cli as cli

    calls: list[tuple[object, ...]] = []  # this process's collector is left as it is
    monkeypatch.setattr(gc, "set_threshold", lambda *t: calls.append(("threshold", *t)))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(("freeze",)))
    monkeypatch.setattr(cli, "entry", lambda: calls.append(("entry",)))
    program.main()
    assert calls == [("threshold", 100_000, 20, 20), ("freeze",), ("entry",)]
