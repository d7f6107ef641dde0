"""No secret ever lands in an artifact: with credentials set to distinctive random values, a full
plan, saved plan, show, apply, plan --format json/markdown, and runs with a wrong key, leave no
trace of any of them in stdout, stderr, the plan file, the state store (bytes, WAL included),
the ``.reconcile`` folder, or the cassettes.

The sandbox is started with those credentials, and the config points at its URLs directly with
``${ENV}`` references: the CLI runs exactly as against a real platform (no --sandbox flags).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from _scenario import RETAILER, TEAM_1, ids
from hostile.remote import run_cli

from reconciler.sandbox import Credentials, Sandbox

ROOT = Path(__file__).parent.parent
ENV_NAMES = {
    "epsilon_bearer_token": "SECRETS_TEST_EPS_BEARER",
    "epsilon_api_key": "SECRETS_TEST_EPS_KEY",
    "talonone_api_key": "SECRETS_TEST_T1_KEY",
    "talonone_management_key": "SECRETS_TEST_T1_MGMT",
}


@pytest.fixture(scope="module")
def creds() -> Credentials:
    # distinctive, random, and each with a marker that cannot occur by chance
    return Credentials(
        **{field: f"s3cr3t-{field[:3]}-{secrets.token_hex(16)}" for field in ENV_NAMES}
    )


@pytest.fixture(scope="module")
def private_sandbox(
    tmp_path_factory: pytest.TempPathFactory, creds: Credentials
) -> Iterator[Sandbox]:
    db = tmp_path_factory.mktemp("secret-sandbox") / "sandbox.db"
    with Sandbox(db, port=0, talonone_rate_limit=10_000.0, credentials=creds) as sb:
        yield sb


def write_config(folder: Path, sb: Sandbox) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "members.txt").write_text("\n".join(ids(0, 40)) + "\n")
    path = folder / "audiences.yaml"
    path.write_text(
        f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: {sb.epsilon_url}
    retailer_team_id: {RETAILER}
    bearer_token: ${{{ENV_NAMES["epsilon_bearer_token"]}}}
    api_key: ${{{ENV_NAMES["epsilon_api_key"]}}}
  talon:
    type: talonone
    base_url: {sb.talonone_url}
    management_url: {sb.talonone_management_url}
    destination_host: sandbox.talon.one
    platform_name: audience-reconciler
    management_rps: 1000
    api_key: ${{{ENV_NAMES["talonone_api_key"]}}}
    management_key: ${{{ENV_NAMES["talonone_management_key"]}}}
segments:
  - id: seg-secret-a
    name: Alpha
    description: Members from a file.
    access: [{TEAM_1}]
    targets: [eps]
    members:
      files: [members.txt]
  - id: seg-secret-b
    name: Beta
    members:
      ids: [{", ".join(ids(30, 60))}]
"""
    )
    return path


def env_of(creds: Credentials) -> dict[str, str]:
    values = creds.as_dict()
    return {ENV_NAMES[field]: values[field] for field in ENV_NAMES}


def needles(*creds: Credentials) -> list[bytes]:
    """Each secret, and a 16-character slice of it (a truncated echo is a leak too)."""
    out: list[bytes] = []
    for c in creds:
        for value in c.as_dict().values():
            out += [value.encode(), value[10:26].encode()]
    return out


def leaks(data: bytes | str, found_in: str, *creds: Credentials) -> list[str]:
    blob = data.encode() if isinstance(data, str) else data
    return [f"{found_in}: {n.decode()}" for n in needles(*creds) if n in blob]


def test_no_secret_in_any_artifact(
    private_sandbox: Sandbox, creds: Credentials, tmp_path: Path
) -> None:
    private_sandbox.reset()
    cfg = write_config(tmp_path / "repo", private_sandbox)
    state = tmp_path / "repo" / ".reconcile" / "state.db"
    plan_file = tmp_path / "plan.json"
    env = env_of(creds)
    common = ["--state", str(state)]
    found: list[str] = []

    steps = [  # text, markdown and JSON renderings; a saved plan; apply; a second apply
        ("plan", [str(cfg), *common, "--out", str(plan_file), "--detailed-exitcode"], 2),
        ("show", [str(plan_file), "--format", "markdown"], 0),
        ("apply", [str(plan_file), *common], 0),
        ("plan", [str(cfg), *common, "--format", "json", "--detailed-exitcode"], 0),
        ("apply", [str(cfg), *common, "--auto-approve", "--format", "markdown"], 0),
    ]
    for command, args, want in steps:
        code, out, err = run_cli(command, *args, env=env)
        assert code == want, (command, args, out, err)
        assert "Traceback" not in err
        found += leaks(out, f"{command} stdout", creds) + leaks(err, f"{command} stderr", creds)

    # the apply really ran against the credentialed sandbox
    remote = private_sandbox.state()
    assert {s["segmentId"] for s in remote["epsilon"]["segments"]} == {
        "seg-secret-a",
        "seg-secret-b",
    }
    assert [a["integrationId"] for a in remote["talonone"]["audiences"]] == ["seg-secret-b"]

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert plan_file in files
    assert any(p.name.startswith("state.db") for p in files)
    for path in files:
        found += leaks(path.read_bytes(), str(path.relative_to(tmp_path)), creds)
    for cassette in sorted((ROOT / "tests" / "cassettes").glob("*.yaml")):
        found += leaks(cassette.read_bytes(), f"cassette {cassette.name}", creds)
    assert found == []


@pytest.mark.parametrize(
    ("wrong", "command"),
    [
        ("epsilon_api_key", "plan"),  # customer read (Basic)
        ("epsilon_bearer_token", "apply"),  # the segment create (Bearer)
        ("talonone_management_key", "plan"),  # audience list
        ("talonone_api_key", "apply"),  # the audience create (CDP)
    ],
)
def test_a_wrong_key_fails_without_echoing_any_key(
    private_sandbox: Sandbox, creds: Credentials, tmp_path: Path, wrong: str, command: str
) -> None:
    private_sandbox.reset()
    cfg = write_config(tmp_path / "repo", private_sandbox)
    bad = Credentials(**{**creds.as_dict(), wrong: f"wr0ng-{wrong[:3]}-{secrets.token_hex(16)}"})
    args = [str(cfg), "--state", str(tmp_path / "state.db")]
    if command == "apply":
        args.append("--auto-approve")
    code, out, err = run_cli(command, *args, env=env_of(bad))
    assert code == 1, (out, err)
    assert "Traceback" not in err, err
    assert "Error" in err or "✗" in out
    assert "401" in err + out or "credentials" in err + out  # says what went wrong
    assert leaks(out + err, "output", creds, bad) == []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes(), str(path), creds, bad) == []


def _file_config(folder: Path, sb: Sandbox, creds: Credentials) -> Path:
    """The config of write_config, its credentials read from files: three beside it (one
    with Windows line ends), one by absolute path; each written with a trailing newline."""
    cfg = write_config(folder, sb)
    values = creds.as_dict()
    secrets_dir = folder / "secrets"
    secrets_dir.mkdir()
    text = cfg.read_text()
    for n, (field, var) in enumerate(ENV_NAMES.items()):
        end = "\r\n" if n == 1 else "\n"
        (secrets_dir / field).write_text(values[field] + end, newline="")
        where = str(secrets_dir / field) if n == 0 else f"secrets/{field}"
        text = text.replace("${" + var + "}", "${file:" + where + "}")
    cfg.write_text(text)
    return cfg


def test_secrets_from_files_are_read_trimmed_and_never_shown(
    private_sandbox: Sandbox, creds: Credentials, tmp_path: Path
) -> None:
    private_sandbox.reset()
    repo = tmp_path / "repo"
    cfg = _file_config(repo, private_sandbox, creds)
    from reconciler.config import load

    config = load(cfg)
    eps = config.targets["eps"]
    assert eps.credential("bearer_token") == creds.as_dict()["epsilon_bearer_token"]
    assert eps.credential("api_key") == creds.as_dict()["epsilon_api_key"]  # \r\n trimmed
    assert leaks(repr(config), "the config's repr", creds) == []

    state = repo / ".reconcile" / "state.db"
    found: list[str] = []
    # no credential in the environment: the files are the only source
    env = {name: "" for name in ENV_NAMES.values()}
    for command, args, want in [
        ("plan", [str(cfg), "--state", str(state), "--detailed-exitcode"], 2),
        ("apply", [str(cfg), "--state", str(state), "--auto-approve"], 0),
        ("plan", [str(cfg), "--state", str(state), "--format", "json", "--detailed-exitcode"], 0),
    ]:
        code, out, err = run_cli(command, *args, env=env)
        assert code == want, (command, out, err)
        found += leaks(out, f"{command} stdout", creds) + leaks(err, f"{command} stderr", creds)
    assert {s["segmentId"] for s in private_sandbox.state()["epsilon"]["segments"]} == {
        "seg-secret-a",
        "seg-secret-b",
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.parent.name != "secrets":
            found += leaks(path.read_bytes(), str(path.relative_to(tmp_path)), creds)
    assert found == []


def test_a_secret_file_that_cannot_be_read_is_located_by_path_not_content(
    private_sandbox: Sandbox, creds: Credentials, tmp_path: Path
) -> None:
    from reconciler.config import load
    from reconciler.exceptions import ConfigError

    cfg = _file_config(tmp_path / "repo", private_sandbox, creds)
    secrets_dir = tmp_path / "repo" / "secrets"
    (secrets_dir / "epsilon_api_key").unlink()
    (secrets_dir / "talonone_api_key").unlink()
    (secrets_dir / "talonone_api_key").mkdir()  # unreadable: a folder
    (secrets_dir / "talonone_management_key").write_text("\n")
    with pytest.raises(ConfigError) as info:
        load(cfg)
    lines = cfg.read_text().splitlines()
    problems = [str(p) for p in info.value.problems]

    def at(field: str) -> str:
        (n,) = [i for i, line in enumerate(lines, 1) if f"file:secrets/{field}" in line]
        return f"{cfg}:{n}:{lines[n - 1].index('$') + 1}"

    assert problems == [
        f"{at('epsilon_api_key')}: targets.eps.api_key: cannot read the secret file "
        "secrets/epsilon_api_key: No such file or directory",
        f"{at('talonone_api_key')}: targets.talon.api_key: cannot read the secret file "
        "secrets/talonone_api_key: Is a directory",
        f"{at('talonone_management_key')}: targets.talon.management_key: the secret file "
        "secrets/talonone_management_key is empty",
    ]
    assert leaks("\n".join(problems), "the problems", creds) == []
    code, _out, err = run_cli("plan", str(cfg))
    assert code == 1
    assert "cannot read the secret file secrets/epsilon_api_key" in err
    assert "Traceback" not in err
