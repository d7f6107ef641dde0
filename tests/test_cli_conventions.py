"""Command-line conventions: plain help with every default shown and no type after a flag,
--no-color, shell completion, one meaning for --full, and stdout that holds only JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _scenario import cli, write_config

#: every command with options, as typed after ``reconcile``
COMMANDS = [
    [],
    ["validate"],
    ["schema"],
    ["plan"],
    ["apply"],
    ["show"],
    ["drift"],
    ["refresh"],
    ["import"],
    ["explain"],
    ["sandbox", "serve"],
    ["sandbox", "seed"],
    ["sandbox", "reset"],
]


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``reconcile`` in a child process with the environment given (colour not turned off)."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**base, "COLUMNS": "200", **env},
    )


#: ``reconcile COMMAND --help`` for each command of a JSON list, one after another in one
#: process, each as the entry point runs it, each followed by a line: the mark, its exit status
_HELPS = """
import json, sys
from reconciler.cli import main
commands, mark = json.loads(sys.argv[1]), sys.argv[2]
for command in commands:
    sys.argv = ["reconcile", *command, "--help"]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    sys.stdout.flush()
    print(mark, code, flush=True)
"""
_MARK = "--- the help above ended with exit status"


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every command's ``--help`` text, by the command as typed, printed by one child process
    (stdout a pipe, the environment :func:`run` gives: colour not turned off); each exits 0."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    done = subprocess.run(
        [sys.executable, "-c", _HELPS, json.dumps(COMMANDS), _MARK],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path_factory.mktemp("helps"),
        env={**base, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    *parts, rest = re.split(rf"^{re.escape(_MARK)} (.*)\n", done.stdout, flags=re.M)
    assert rest == "", done.stdout
    texts, codes = parts[0::2], parts[1::2]
    assert codes == ["0"] * len(COMMANDS), done.stdout + done.stderr
    return {" ".join(command): text for command, text in zip(COMMANDS, texts, strict=True)}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "reconcile")
def test_help_shows_defaults_and_no_type_after_a_flag(
    command: list[str], helps: dict[str, str]
) -> None:
    stdout = helps[" ".join(command)]
    assert "<bool>" not in stdout
    assert "\x1b[" not in stdout
    for line in stdout.splitlines():  # a flag's row holds no metavar
        words = line.split()
        if words[:1] in (["--help"], ["--sandbox"], ["--auto-approve"], ["--force"]):
            assert not words[1].startswith("<"), line


def test_the_state_store_and_other_defaults_are_visible(helps: dict[str, str]) -> None:
    plan = helps["plan"]
    joined = " ".join(plan.split())
    assert "[env var: RECONCILE_STATE; default: (.reconcile/state.db next to the config;" in joined
    assert "--refresh auto|full|false" in joined
    assert "[default: auto]" in joined
    assert "[default: audiences.yaml]" in joined
    validate = " ".join(helps["validate"].split())
    assert "Audiences files. [default: (audiences.yaml)]" in validate
    root = " ".join(helps[""].split())
    assert "[env var: RECONCILE_LOG_FORMAT; default: text]" in root
    assert "[env var: RECONCILE_LOG_LEVEL; default: warning]" in root


def test_no_color_turns_colour_off(tmp_path: Path, helps: dict[str, str]) -> None:
    write_config(tmp_path, ["epsilon"])
    coloured = run("plan", "audiences.yaml", "--sandbox", cwd=tmp_path, FORCE_COLOR="1")
    assert coloured.returncode == 0, coloured.stderr
    assert "\x1b[" in coloured.stdout + coloured.stderr
    plain = run("--no-color", "plan", "audiences.yaml", "--sandbox", cwd=tmp_path, FORCE_COLOR="1")
    assert plain.returncode == 0, plain.stderr
    assert "\x1b[" not in plain.stdout + plain.stderr
    assert "--no-color" in helps[""]


def test_shell_completion_is_on(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("reconcile")
    if not script.exists():  # pragma: no cover - the package is not installed as a command
        pytest.skip("the reconcile command is not installed beside this Python")
    env = {**os.environ, "_RECONCILE_COMPLETE": "complete_bash", "COMP_CWORD": "2"}

    def complete(words: str) -> list[str]:
        done = subprocess.run(
            [str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**env, "COMP_WORDS": words},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("reconcile plan --all") == ["--all-changes"]
    assert "--refresh" in complete("reconcile plan --")
    assert "--full" not in complete("reconcile plan --")  # the deprecated spelling is hidden
    # the shell named, not the one this test runs under (typer's own switch for tests: without
    # it --show-completion takes no value and shows the script of the parent shell, if known)
    shown = run(
        "--show-completion", "bash", cwd=tmp_path, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"
    )
    assert shown.returncode == 0, shown.stderr
    assert "complete " in shown.stdout


def test_full_on_plan_and_show_is_a_deprecated_alias_of_all_changes(tmp_path: Path) -> None:
    write_config(tmp_path, ["epsilon"])
    saved = cli("plan", "audiences.yaml", "--sandbox", "--out", "plan.json", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    short = cli("show", "plan.json", cwd=tmp_path)
    every = cli("show", "plan.json", "--all-changes", cwd=tmp_path)
    old = cli("show", "plan.json", "--full", cwd=tmp_path)
    assert short.returncode == every.returncode == old.returncode == 0, old.stderr
    assert "--all-changes lists them all" in short.stdout
    assert len(every.stdout.splitlines()) > len(short.stdout.splitlines())
    assert old.stdout == every.stdout
    assert "--full is deprecated here: use --all-changes" in old.stderr
    assert "deprecated" not in every.stderr
    assert "--full" not in cli("show", "--help", cwd=tmp_path).stdout
    planned = cli("plan", "audiences.yaml", "--sandbox", "--full", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert "--full is deprecated here" in planned.stderr


def test_apply_format_json_prints_only_json_on_stdout(tmp_path: Path) -> None:
    write_config(tmp_path, ["epsilon", "talonone"])
    done = cli(
        "-v", "apply", "audiences.yaml", "--sandbox", "--auto-approve", "--format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # the whole of stdout is one document
    assert set(document) == {"plan", "results", "interrupted"}
    assert {r["target"] for r in document["results"]} == {"eps", "talon"}
    assert all(r["ok"] for r in document["results"])
    assert "INFO reconciler." in done.stderr  # the logs and the progress went to stderr
    again = cli(
        "apply", "audiences.yaml", "--sandbox", "--auto-approve", "-f", "json", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["results"] == []  # nothing to apply: still one document


def test_a_command_line_naming_a_command_parses_with_that_command_alone() -> None:
    """The command typed is the only one built (building all costs ~9 ms of each run); a group
    the same; anything else (help, a typo, an option first) gets every command, the sandbox's
    mounted."""
    from reconciler.cli import _COMMANDS, _command_line, _typed_as

    for name in sorted(_COMMANDS):
        alone = _command_line([name, "--help"])
        assert [_typed_as(c) for c in alone.registered_commands] == [name]
        assert alone.registered_groups == []
    for group in ("state", "sandbox"):
        alone = _command_line(["-v", group, "list"])
        assert (alone.registered_commands, [g.name for g in alone.registered_groups]) == (
            [],
            [group],
        )
    for args in ([], ["--help"], ["plna", "x.yaml"], ["--log-format", "json", "plan"]):
        everything = _command_line(args)
        assert {_typed_as(c) for c in everything.registered_commands} == _COMMANDS
        assert {"state", "sandbox"} <= {g.name for g in everything.registered_groups}


def test_no_global_option_takes_a_command_name_as_its_value() -> None:
    """What lets the first word that is not an option name the command: a global option's
    value never is a command's name."""
    import typer.main

    from reconciler.cli import _COMMANDS, app

    group: Any = typer.main.get_command(app)  # click's Group (the click typer ships)
    names = _COMMANDS | set(group.commands)
    options = [p for p in group.params if p.param_type_name == "option"]
    taking = [p for p in options if not (p.is_flag or p.count)]
    assert {p.name for p in taking} == {"log_format", "log_level"}
    for param in taking:
        choices = {str(c) for c in param.type.choices}  # a free value could be a name
        assert choices, param.name
        assert not names & choices, param.name


def test_a_mistyped_command_is_told_apart_from_every_command(tmp_path: Path) -> None:
    done = cli("plna", "audiences.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert "No such command 'plna'" in done.stderr
    assert "plan" in done.stderr  # the commands to choose from are all there
