"""Hostile configs and data files: each is refused by ``reconcile validate`` (run as a user would,
in a child process) with exit 1 and one located line per problem — ``file:line:col: path:
message`` — never a traceback, never a hang.

Covers: non-finite numbers anywhere in the config; a large document refused while it is composed;
malformed CSV rows; member files read as a table (fast, checks kept); paths confined to the
config's folder unless a path opts out; unusable or credential-bearing URLs; FIFOs, devices and
directories where a file is expected. Inputs are generated into ``tmp_path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from _scenario import cli
from hostile import inputs

from reconciler.config import load, resolve

LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")


def validate(*files: Path, cwd: Path | None = None) -> tuple[int, list[str], str]:
    """``reconcile validate FILES``: exit code, the located problem lines (``path: message``
    part), and stderr."""
    done = cli("validate", *map(str, files), cwd=cwd)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert "Internal error" not in done.stderr + done.stdout, done.stderr
    located = [m["rest"] for m in map(LOCATED.match, done.stderr.splitlines()) if m]
    return done.returncode, located, done.stderr


def refused_with(path: Path, pattern: str) -> list[str]:
    code, located, err = validate(path)
    assert code == 1, err
    assert any(re.search(pattern, line) for line in located), err
    return located


# -- 1. non-finite numbers ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            "    safety: {max_delete_share: .nan}\n",
            r"^targets\.eps\.safety\.max_delete_share: .*not a finite number",
        ),
        ("    safety: {max_delete_share: -.inf}\n", r"max_delete_share: .*not a finite number"),
        ("    timeout: .inf\n", r"^targets\.eps\.timeout: .*not a finite number"),
        ("    timeout: 1.0e+400\n", r"^targets\.eps\.timeout: .*not a finite number"),
    ],
)
def test_a_non_finite_number_in_a_target_is_refused(tmp_path: Path, body: str, where: str) -> None:
    path = inputs.config(tmp_path, body + "segments: []\n")
    refused_with(path, where)


def test_non_finite_numbers_are_refused_anywhere_each_located(tmp_path: Path) -> None:
    (tmp_path / "shoppers.csv").write_text("customer_id,spend\nc1,10\nc2,0\n")
    path = inputs.config(
        tmp_path,
        """spark:
  conf: {spark.some.setting: .NaN}
customer_sources:
  shoppers: {path: shoppers.csv, id_column: customer_id}
segments:
  - id: s1
    name: S
    members:
      rule: {attribute: spend, gt: .inf}
  - id: s2
    name: T
    members:
      rule: {attribute: spend, in: [1, -.Inf]}
""",
    )
    code, located, err = validate(path)
    assert code == 1
    lines = [line for line in err.splitlines() if "not a finite number" in line]
    assert len(lines) == 3, err
    assert any(r.startswith("spark.conf['spark.some.setting']: ") for r in located), err
    assert any(r.startswith("segments[0].members.rule.gt: ") for r in located), err
    assert any(r.startswith("segments[1].members.rule.in[1]: ") for r in located), err
    # each on its own line and column of the YAML
    for where in ("10:30", "17:36", "21:40"):
        assert f"{path}:{where}: " in err, err


# -- 2. a large document is refused while it is composed ------------------------------------------
def test_a_ten_mib_list_is_refused_quickly_saying_the_limit(tmp_path: Path) -> None:
    """5 million items, no alias, just under the size limit: refused at the node that crosses
    the limit, without composing the rest (a fresh process: time and memory are its own)."""
    path = tmp_path / "big.yaml"
    items = (10 * 1024 * 1024 - 100) // 2
    path.write_text("version: 1\nsegments: [" + "1," * (items - 1) + "1]\n")
    probe = """
import resource, sys
from reconciler.config import load
from reconciler.exceptions import ConfigError
try:
    load(sys.argv[1])
except ConfigError as exc:
    print(exc.problems[0])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    problem, peak = done.stdout.strip().splitlines()
    assert "more than 200000 nodes" in problem
    assert "alias" not in problem
    line, col = (int(x) for x in problem.split(":")[1:3])
    assert (line, col) > (2, 200_000 * 2)  # where the limit is crossed, not the top
    # memory: far less than composing 5 million nodes (several GB); the text itself is 10 MiB
    assert int(peak) < 400 * 1024


def test_a_document_nested_too_deep_is_refused_while_composed(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nsegments: " + "[" * 500 + "]" * 500 + "\n")
    code, _, err = validate(path)
    assert code == 1
    assert re.search(rf"{path}:2:1\d\d: the document is nested more than 128 levels deep", err), err


def test_an_integer_of_thousands_of_digits_is_a_located_problem(tmp_path: Path) -> None:
    path = inputs.config(tmp_path, "    concurrency: " + "9" * 5000 + "\nsegments: []\n")
    refused_with(path, r"^targets\.eps\.concurrency: .*digits")


# -- 3. malformed CSV rows -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'customer_id,spend\nc1,10\n"c2,5\nc3,7\n', r"shoppers\.csv:3: .*unterminated quote"),
        (b"customer_id,spend\nc1,10\nc2,5,6\nc3,7\n", r"shoppers\.csv:3: .*columns"),
        (b"customer_id,spend\nc1,10\nc2\nc3,7\n", r"shoppers\.csv:3: .*columns"),
    ],
)
def test_a_malformed_csv_row_is_refused_with_its_line(
    tmp_path: Path, data: bytes, where: str
) -> None:
    path = inputs.csv_source(tmp_path, data)
    found = refused_with(path, "^customer_sources\\.shoppers\\.path: " + where)
    assert not any("c2" in line and "plan" in line for line in found)


def test_a_malformed_csv_row_past_the_sniffed_sample_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    rows = [f"c{i},{i}" for i in range(60_000)]
    rows[50_000] = '"c50000,5'
    data = ("customer_id,spend\n" + "\n".join(rows) + "\n").encode()
    refused_with(
        inputs.csv_source(tmp_path, data),
        r"^customer_sources\.shoppers\.path: shoppers\.csv:50002: .*unterminated quote",
    )


def test_a_malformed_row_in_a_csv_member_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = inputs.segment_with_files(
        tmp_path, {"ids.csv": b'id,x\nc1,1\n"c2,2\nc3,3\n'}, column="id"
    )
    refused_with(
        path, r"^segments\[0\]\.members\.files\[0\]\.path: ids\.csv:3: .*unterminated quote"
    )


def test_a_well_formed_quoted_csv_still_reads(tmp_path: Path) -> None:
    path = inputs.csv_source(
        tmp_path, b'customer_id,spend,note\n"c,1",10,"say ""hi"""\nc2,0,x\nc3,5,\n'
    )
    ((_, state),) = resolve(load(path)).items()
    assert set(state.links) == {"c,1", "c3"}


# -- 4. member files read as a one-column table ---------------------------------------------------
def test_member_file_lines_are_numbered_past_blank_lines_comments_and_crlf(tmp_path: Path) -> None:
    data = b"c1\r\n\r\n# a comment\r\n  c2  \r\nc\x01x\r\n\nc2\n"
    found = refused_with(
        inputs.segment_with_files(tmp_path, {"ids.txt": data}),
        r"ids\.txt:5: customer id .*control character",
    )
    assert any(
        re.search(r"ids\.txt:4: duplicate customer id 'c2' \(again on line 7\)", f) for f in found
    ), found


def test_member_file_ids_resolve_as_before(tmp_path: Path) -> None:
    data = b'# header comment\nc1\n\n  c2\t\nc3\r\nc,4\n"c5\n'
    ((_, state),) = resolve(load(inputs.segment_with_files(tmp_path, {"ids.txt": data}))).items()
    assert set(state.links) == {"c1", "c2", "c3", "c,4", '"c5'}


def test_a_lone_carriage_return_ends_a_member_file_line(tmp_path: Path) -> None:
    path = inputs.segment_with_files(tmp_path, {"ids.txt": b"c1\rc2\nc3\rc1\n"})
    refused_with(path, r"ids\.txt:1: duplicate customer id 'c1' \(again on line 4\)")


def test_a_40mb_member_file_is_checked_in_bounded_time(tmp_path: Path) -> None:
    """Reading the file as one string and splitting it was quadratic (40 MB: 164 s); as a
    table it is linear. The bound only catches that regression."""
    ids = tmp_path / "ids.txt"
    con = duckdb.connect()
    con.execute(  # c00000000 .. c03999999, one a line (written in DuckDB: 4x faster than Python)
        "COPY (SELECT 'c' || lpad(i::VARCHAR, 8, '0') FROM range(4000000) AS t(i) ORDER BY i) "
        f"TO '{ids}' (FORMAT csv, HEADER false, QUOTE '')"
    )
    con.close()
    assert ids.stat().st_size >= 40_000_000
    with ids.open() as fh:
        assert [next(fh), next(fh)] == ["c00000000\n", "c00000001\n"]
    path = inputs.config(
        tmp_path, "segments:\n  - id: big\n    name: Big\n    members:\n      files: [ids.txt]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr


def _bad_inputs(folder: Path) -> list[Path]:
    paths = []
    for n, (maker, data) in enumerate(
        [
            (inputs.csv_source, b"customer_id,spend\nc1,10\nc 2,5\n\x01,7\n"),
            (inputs.csv_source, b"customer_id,spend\n,10\nc2,5\n"),
        ]
    ):
        (folder / str(n)).mkdir()
        paths.append(maker(folder / str(n), data))
    for n, files in enumerate(
        [{"ids.txt": b"c1\nc1\nc\x01x\n"}, {"ids.txt": b"c1\n" + b"x" * 300 + b"\n"}]
    ):
        (folder / f"f{n}").mkdir()
        paths.append(inputs.segment_with_files(folder / f"f{n}", files))
    return paths


def test_validate_finds_what_resolving_would_without_resolving(tmp_path: Path) -> None:
    """``validate`` checks the members without bringing them into Python: the same problems as
    :func:`resolve`, for member files and for the ids a source's rules select."""
    from reconciler.config import check_resolvable
    from reconciler.exceptions import ConfigError

    for path in _bad_inputs(tmp_path):
        config = load(path)
        with pytest.raises(ConfigError) as resolving:
            resolve(config)
        with pytest.raises(ConfigError) as checking:
            check_resolvable(config)
        assert checking.value.problems == resolving.value.problems, path
    good = load(inputs.csv_source(tmp_path, b"customer_id,spend\nc1,10\nc2,0\n"))
    check_resolvable(good)  # nothing to say
    assert set(resolve(good)["eps"].links) == {"c1"}


# -- 5. paths stay inside the config's folder unless one opts out ---------------------------------
def _outside(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "conf"
    shared = tmp_path / "shared"
    folder.mkdir()
    shared.mkdir()
    (shared / "secret.env").write_text("API_KEY=hunter2\n")
    (shared / "ids.txt").write_text("c1\nc2\n")
    (shared / "shoppers.csv").write_text("customer_id,spend\nc1,10\n")
    return folder, shared


def test_a_member_file_outside_the_config_folder_is_refused(tmp_path: Path) -> None:
    folder, _ = _outside(tmp_path)
    path = inputs.config(
        folder,
        "segments:\n  - id: s1\n    name: S\n    members:\n      files: [../shared/secret.env]\n",
    )
    code, located, err = validate(path)
    assert code == 1
    assert any(
        re.match(r"segments\[0\]\.members\.files\[0\]: .*outside the config's folder", r)
        for r in located
    ), err
    assert "hunter2" not in err
    assert "outside_config_dir: true" in err  # says how to opt out


def test_a_symlink_leading_out_of_the_config_folder_is_refused(tmp_path: Path) -> None:
    folder, shared = _outside(tmp_path)
    (folder / "ids.txt").symlink_to(shared / "secret.env")
    path = inputs.config(
        folder, "segments:\n  - id: s1\n    name: S\n    members:\n      files: [ids.txt]\n"
    )
    code, located, err = validate(path)
    assert code == 1
    assert any("outside the config's folder" in r for r in located), err
    assert "hunter2" not in err


def test_absolute_and_source_and_feed_paths_outside_are_refused(tmp_path: Path) -> None:
    folder, shared = _outside(tmp_path)
    path = inputs.config(
        folder,
        f"""  feed:
    type: epsilon-feed
    directory: ../out
customer_sources:
  shoppers: {{path: {shared / "shoppers.csv"}, id_column: customer_id}}
segments:
  - id: s1
    name: S
    members:
      files: [{{path: ../shared/ids.txt}}]
""",
    )
    code, located, err = validate(path)
    assert code == 1
    outside = [r for r in located if "outside the config's folder" in r]
    assert {r.split(":")[0] for r in outside} == {
        "targets.feed.directory",
        "customer_sources.shoppers.path",
        "segments[0].members.files[0].path",
    }, err


def test_paths_marked_outside_config_dir_are_accepted(tmp_path: Path) -> None:
    folder, shared = _outside(tmp_path)
    path = inputs.config(
        folder,
        f"""  feed:
    type: epsilon-feed
    directory: {{path: ../out, outside_config_dir: true}}
customer_sources:
  shoppers: {{path: {shared / "shoppers.csv"}, id_column: customer_id, outside_config_dir: true}}
segments:
  - id: s1
    name: S
    members:
      files: [{{path: ../shared/ids.txt, outside_config_dir: true}}]
      rule: {{attribute: spend, gt: 1}}
""",
    )
    config = load(path)
    assert Path(config.targets["feed"].settings["directory"]).resolve() == tmp_path / "out"
    desired = resolve(config)
    assert set(desired["eps"].links) == {"c1", "c2"}


def test_a_symlinked_config_folder_still_holds_its_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    path = inputs.segment_with_files(real, {"ids.txt": b"c1\n"})
    (tmp_path / "link").symlink_to(real)
    ((_, state),) = resolve(load(tmp_path / "link" / path.name)).items()
    assert set(state.links) == {"c1"}


# -- 6. URLs -------------------------------------------------------------------------------------
def _with_url(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audiences.yaml"
    path.write_text(inputs.HEADER.replace("http://127.0.0.1:9/never-used", url) + "segments: []\n")
    return path


def test_credentials_in_a_base_url_are_refused_and_never_echoed(tmp_path: Path) -> None:
    path = _with_url(tmp_path, "https://svc:s3cr3t-pw@api.example.com")
    code, located, err = validate(path)
    assert code == 1
    assert any(
        re.match(r"targets\.eps\.base_url: .*credentials.*\$\{ENV_VAR\}", r) for r in located
    ), err
    assert "s3cr3t-pw" not in err
    assert "svc" not in err


def test_credentials_in_a_url_the_schema_refuses_are_not_echoed(tmp_path: Path) -> None:
    path = _with_url(tmp_path, "ftp://svc:s3cr3t-pw@api.example.com")
    code, located, err = validate(path)
    assert code == 1
    assert any(re.match(r"targets\.eps\.base_url: .*not an http\(s\) URL", r) for r in located)
    assert "s3cr3t-pw" not in err


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", r"IPv6|not a valid URL"),
        ("http://127.0.0.1:99999", r"port"),
        ("http://127.0.0.1:0/x", r"port"),
        ("http://host:abc", r"port"),
        ("http:///v1", r"no host"),
    ],
)
def test_an_unusable_base_url_is_a_located_validation_error(
    tmp_path: Path, url: str, why: str
) -> None:
    refused_with(_with_url(tmp_path, url), r"^targets\.eps\.base_url: .*" + why)


# -- 7. FIFOs, devices and directories ------------------------------------------------------------
def test_a_fifo_config_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "audiences.yaml"
    os.mkfifo(fifo)
    code, _, err = validate(fifo)  # a hang would time out
    assert code == 1
    assert f"{fifo}:0:0: is a FIFO (named pipe), not a regular file" in err, err


def test_a_directory_or_device_config_is_refused(tmp_path: Path) -> None:
    code, _, err = validate(tmp_path, Path("/dev/null"))
    assert code == 1
    assert f"{tmp_path}:0:0: is a directory, not a regular file" in err, err
    assert "/dev/null:0:0: is a character device, not a regular file" in err, err


def test_a_fifo_member_file_or_source_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ids.txt")
    os.mkfifo(tmp_path / "shoppers.csv")
    (tmp_path / "dir.txt").mkdir()
    path = inputs.config(
        tmp_path,
        """customer_sources:
  shoppers: {path: shoppers.csv, id_column: customer_id}
segments:
  - id: s1
    name: S
    members:
      files: [ids.txt, dir.txt]
""",
    )
    code, located, err = validate(path)
    assert code == 1
    fifo = "is a FIFO (named pipe), not a regular file"
    assert f"customer_sources.shoppers.path: shoppers.csv {fifo}" in located, err
    assert f"segments[0].members.files[0]: ids.txt {fifo}" in located, err
    assert "segments[0].members.files[1]: dir.txt is a directory, not a regular file" in located, (
        err
    )
