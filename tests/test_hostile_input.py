"""Hostile input: every file below is refused by ``reconcile validate`` (run as a user would, in
a child process) with exit 1 and a clear located message — ``file:line:col: path: message``,
or for a data file its name (and line) — and never a traceback. Some cases run in-process
(cheaper): load + resolve must raise ConfigError and nothing else.

The inputs are generated into ``tmp_path`` (see ``hostile/inputs.py``); nothing big is
committed. The 100 MB file is sparse on disk.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import inputs
from hostile.remote import run_cli

from reconciler.config import load, resolve
from reconciler.exceptions import ConfigError

LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")


def validate(*files: Path) -> tuple[int, dict[str, list[tuple[int, int, str]]], str]:
    """Run ``reconcile validate FILES``; problems grouped by file as (line, col, text)."""
    code, out, err = run_cli("validate", *map(str, files))
    assert "Traceback" not in err, err
    assert "Traceback" not in out, out
    problems: dict[str, list[tuple[int, int, str]]] = {}
    for line in err.splitlines():
        m = LOCATED.match(line)
        if m:
            problems.setdefault(m["file"], []).append((int(m["line"]), int(m["col"]), m["rest"]))
    return code, problems, err


def refused(path: Path) -> list[tuple[int, int, str]]:
    """In-process (cheaper than a child process, for the cases that fail today): what validate
    does — load, then resolve — must raise ConfigError and nothing else."""
    with pytest.raises(ConfigError) as info:
        resolve(load(path))
    return [(p.line, p.column, f"{p.path}: {p.message}") for p in info.value.problems]


# -- many hostile files, one validate run (each is reported on its own) -------------------------
def test_each_hostile_file_is_refused_with_a_located_message(tmp_path: Path) -> None:
    t = tmp_path
    long_id = "x" * 10_000
    cases: dict[str, tuple[Path, str]] = {
        # name: (file, a regex on the "path: message" part of one of its problems)
        "laughs": (inputs.billion_laughs(t / "laughs"), r"alias bomb|aliases"),
        "team": (
            inputs.access(t / "team", ["not-a-uuid", inputs.TEAM]),
            r"^access_lists\.partners\[0\]: .*not a UUID",
        ),
        "team-short": (
            inputs.access(t / "team-short", [inputs.TEAM[:-1]]),
            r"^access_lists\.partners\[0\]: .*not a UUID",
        ),
        "inline-control": (
            inputs.config(
                t / "inline-control",
                'segments:\n  - id: s1\n    name: S\n    members:\n      ids: [ok, "c\\u0001x"]\n',
            ),
            r"^segments\[0\]\.members\.ids\[1\]: ",
        ),
        "inline-long": (
            inputs.config(
                t / "inline-long",
                f"segments:\n  - id: s1\n    name: S\n    members:\n      ids: [ok, {long_id}]\n",
            ),
            r"^segments\[0\]\.members\.ids\[1\]: ",
        ),
        "inline-empty": (
            inputs.config(
                t / "inline-empty",
                "segments:\n  - id: s1\n    name: S\n    members:\n      ids: [ok, '']\n",
            ),
            r"^segments\[0\]\.members\.ids\[1\]: ",
        ),
        "segment-id-long": (
            inputs.config(t / "segment-id-long", f"segments:\n  - id: {long_id}\n    name: S\n"),
            r"^segments\[0\]\.id: ",
        ),
        "file-control": (
            inputs.segment_with_files(t / "file-control", {"ids.txt": b"c1\nc\x01x\nc3\n"}),
            r"^segments\[0\]\.members\.files\[0\]: ids\.txt:2: .*control character",
        ),
        "file-long": (
            inputs.segment_with_files(t / "file-long", {"ids.txt": b"c1\n" + b"y" * 10_000}),
            r"^segments\[0\]\.members\.files\[0\]: ids\.txt:2: .*longer than",
        ),
        "file-empty": (
            inputs.segment_with_files(
                t / "file-empty", {"ids.csv": b'id\nc1\n""\nc2\n'}, column="id"
            ),
            r"^segments\[0\]\.members\.files\[0\]: ids\.csv:3: an empty customer id",
        ),
        "file-not-utf8": (
            inputs.segment_with_files(t / "file-not-utf8", {"ids.txt": b"c1\nc\xff\xfe2\n"}),
            r"ids\.txt",
        ),
        "csv-not-utf8": (
            inputs.csv_source(
                t / "csv-not-utf8",
                "customer_id,spend,name\nc1,10,Jos\xe9\nc2,5,Ren\xe9e\n".encode("latin-1"),
            ),
            r"^customer_sources\.shoppers\.path: .*shoppers\.csv.*[Ll]ine",
        ),
    }
    code, problems, err = validate(*(path for path, _ in cases.values()))
    assert code == 1
    for name, (path, pattern) in cases.items():
        found = problems.get(str(path))
        assert found, f"{name}: no located problem in\n{err}"
        assert any(re.search(pattern, text) for _, _, text in found), (name, found)
        assert all(line >= 1 for line, _, _ in found), (name, found)
        # a 10,000-character id is quoted shortened, not echoed whole
        assert all(len(text) < 500 for _, _, text in found), (name, found)
    # the alias bomb is reported where it crosses the limit, not at the top of the file
    assert problems[str(cases["laughs"][0])][0][0] > 1


def test_json_report_lists_every_file_and_problem(tmp_path: Path) -> None:
    bad = inputs.access(tmp_path / "a", ["nope"])
    code, out, err = run_cli("validate", "--format", "json", str(bad))
    assert code == 1
    assert "Traceback" not in err
    body = json.loads(out)
    assert body["valid"] is False
    (problem,) = body["problems"]
    assert problem["file"] == str(bad)
    assert problem["line"] >= 1
    assert problem["column"] >= 1
    assert problem["path"] == "access_lists.partners[0]"


# -- the 100 MB file: refused by size before parsing, memory bounded ----------------------------
def test_a_100mb_yaml_is_refused_by_size_before_it_is_read(tmp_path: Path) -> None:
    huge = inputs.huge_yaml(tmp_path)
    assert huge.stat().st_size == 100 * 1024 * 1024
    code, problems, _ = validate(huge)
    assert code == 1
    ((_, _, text),) = problems[str(huge)]
    assert "at most" in text
    # memory: the loader must not read 100 MB to refuse it (measured in a fresh process)
    probe = """
import resource, sys
from reconciler.config import load
from reconciler.exceptions import ConfigError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load(sys.argv[1])
except ConfigError as exc:
    assert "bytes" in str(exc.problems[0])
else:
    raise SystemExit("loaded a 100 MB file")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe, str(huge)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    grown_kib = int(done.stdout.strip())
    assert grown_kib < 200 * 1024


# -- deep nesting ---------------------------------------------------------------------------------
def test_a_rule_nested_100_levels_deep_still_works(tmp_path: Path) -> None:
    """Depth is not refused for its own sake: 100 ``not`` cancel out to the rule itself."""
    desired = resolve(load(inputs.deep_not(tmp_path, depth=100)))
    ((_, state),) = desired.items()
    assert set(state.links) == {"c1"}


def test_a_rule_nested_300_levels_deep_is_refused_cleanly(tmp_path: Path) -> None:
    found = refused(inputs.deep_not(tmp_path, depth=300))
    assert any("nested" in text for _, _, text in found)


def test_a_rule_nested_10000_levels_deep_is_refused_cleanly(tmp_path: Path) -> None:
    found = refused(inputs.deep_not(tmp_path, depth=10_000))
    assert any("nested" in text for _, _, text in found)


# -- data files ------------------------------------------------------------------------------------
def test_a_bad_id_in_a_member_file_names_the_file_and_line(tmp_path: Path) -> None:
    found = refused(inputs.segment_with_files(tmp_path, {"ids.txt": b"c1\nc\x01x\nc3\n"}))
    assert any("ids.txt:2" in text for _, _, text in found), found


def test_a_member_file_not_utf8_is_located_at_its_files_entry(tmp_path: Path) -> None:
    found = refused(inputs.segment_with_files(tmp_path, {"ids.txt": b"c1\nc\xff\xfe2\n"}))
    assert any(text.startswith("segments[0].members.files[0]: ") for _, _, text in found), found


def test_duplicate_ids_in_a_member_file_are_refused(tmp_path: Path) -> None:
    found = refused(inputs.segment_with_files(tmp_path, {"ids.txt": b"c1\nc2\nc1\n"}))
    assert any("duplicate" in text for _, _, text in found), found
