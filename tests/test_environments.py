"""Environments: one config, several deployments (staging, production) overriding target
settings and credential references, each with its own state store and lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _scenario import RETAILER, cli, ids

from reconciler.config import load
from reconciler.exceptions import ConfigError

CONFIG = f"""version: 1
targets:
  eps:
    type: epsilon
    base_url: https://api.example.com
    retailer_team_id: {RETAILER}
    bearer_token: ${{EPS_TOKEN}}
    api_key: ${{EPS_KEY}}
  feed:
    type: epsilon-feed
    directory: feed-default
environments:
  staging:
    description: The staging accounts.
    targets:
      eps:
        base_url: https://staging.example.com
        bearer_token: ${{STAGING_EPS_TOKEN}}
      feed:
        directory: feed-staging
  production:
    targets:
      eps:
        safety: {{max_delete_share: 0.1}}
      feed:
        directory: feed-production
segments:
  - id: seg-a
    name: Alpha
    description: The alpha shoppers.
    members:
      ids: [{", ".join(ids(0, 30))}]
"""


def _write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "audiences.yaml"
    path.write_text(text)
    return path


def _problems(path: Path, env: str | None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, env=env)
    return [f"{p.line}:{p.column}: {p.path}: {p.message}" for p in info.value.problems]


def test_an_environment_overrides_settings_and_credential_references(tmp_path: Path) -> None:
    path = _write(tmp_path)
    staging = load(path, env="staging")
    production = load(path, env="production")
    assert staging.environment == "staging"
    eps = staging.targets["eps"]
    assert eps.settings["base_url"] == "https://staging.example.com"
    assert eps.credentials == {"bearer_token": "STAGING_EPS_TOKEN", "api_key": "EPS_KEY"}
    assert staging.targets["feed"].settings["directory"] == tmp_path / "feed-staging"
    assert production.targets["eps"].settings["base_url"] == "https://api.example.com"
    assert production.targets["eps"].safety.max_delete_share == 0.1
    assert production.targets["feed"].settings["directory"] == tmp_path / "feed-production"
    # a plan made for one environment is stale for the other
    assert staging.digest != production.digest


def test_choosing_no_or_an_unknown_environment_is_a_located_error(tmp_path: Path) -> None:
    path = _write(tmp_path)
    assert _problems(path, None) == [
        "12:1: environments: this config declares environments (staging, production): "
        "choose one with --env NAME (or RECONCILE_ENV)"
    ]
    assert _problems(path, "prod") == [
        "12:1: environments: no environment 'prod' (declared: staging, production)"
    ]
    plain = _write(
        tmp_path, CONFIG[: CONFIG.index("environments:")] + CONFIG[CONFIG.index("segments:") :]
    )
    assert load(plain).environment is None
    assert _problems(plain, "staging") == [
        "1:1: : no environment 'staging' (this config declares none)"
    ]


def test_a_bad_override_is_located_where_the_environment_writes_it(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "        base_url: https://staging.example.com\n", "        base_url: 5\n"
    )
    text = text.replace("      feed:\n        directory: feed-production\n", "      nowhere: {}\n")
    text = text.replace("        safety: {max_delete_share: 0.1}\n", "        type: talonone\n")
    path = _write(tmp_path, text)
    (staging,) = _problems(path, "staging")
    assert staging.startswith("17:19: targets.eps.base_url: ")
    assert _problems(path, "production") == [
        "24:15: environments.production.targets.eps.type: an environment cannot change a "
        "target's type",
        "25:7: environments.production.targets.nowhere: no target 'nowhere' to override "
        "(known: eps, feed)",
    ]


def test_validate_checks_every_environment(tmp_path: Path) -> None:
    text = CONFIG.replace("        directory: feed-production\n", "        directory: 7\n")
    path = _write(tmp_path, text)
    done = cli("validate", str(path), "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert [(f["environment"], f["valid"]) for f in report["files"]] == [
        ("staging", True),
        ("production", False),
    ]
    staging = cli("validate", str(path), "--env", "staging")
    assert staging.returncode == 0, staging.stderr
    assert "(environment staging) is valid" in staging.stderr


def test_staging_and_production_plan_and_apply_independently(tmp_path: Path) -> None:
    path = _write(tmp_path)
    c = str(path)
    first = cli("plan", c, "--sandbox", "--env", "staging", "--format", "json")
    assert first.returncode == 0, first.stderr
    to_do = json.loads(first.stdout)["summary"]
    assert to_do["create"] > 0
    staged = cli("apply", c, "--sandbox", "--env", "staging", "--auto-approve")
    assert staged.returncode == 0, staged.stderr
    assert (tmp_path / "feed-staging").is_dir()
    assert not (tmp_path / "feed-production").exists()
    # production has its own platforms and state store: everything is still to do there
    planned = cli("plan", c, "--sandbox", "--env", "production", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["summary"] == to_do
    again = cli("plan", c, "--sandbox", "--env", "staging", "--detailed-exitcode")
    assert again.returncode == 0, again.stderr  # staging is done
    produced = cli("apply", c, "--sandbox", "--env", "production", "--auto-approve")
    assert produced.returncode == 0, produced.stderr
    assert (tmp_path / "feed-production").is_dir()
    for env in ("staging", "production"):
        folder = tmp_path / ".reconcile" / "sandbox" / "env" / env
        assert (folder / "state.db").is_file()
        listed = cli("state", "list", "-c", c, "--sandbox", "--env", env, "-f", "json")
        targets = json.loads(listed.stdout)["targets"]
        assert [t["last_run"]["status"] for t in targets] == ["ok", "ok"]
    assert not (tmp_path / ".reconcile" / "sandbox" / "state.db").exists()
    pending = cli("state", "list", "-c", c, "--sandbox")
    assert pending.returncode == 1
    assert "choose one with --env NAME" in pending.stderr


def test_the_sandbox_commands_find_an_environments_platforms(tmp_path: Path) -> None:
    path = _write(tmp_path)
    done = cli("sandbox", "reset", "--config", str(path), "--env", "production")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(str(Path("sandbox", "env", "production", "remote.db")))
    bad = cli("sandbox", "reset", "--config", str(path), "--env", "../elsewhere")
    assert bad.returncode == 1
    assert "not an environment name" in bad.stderr
