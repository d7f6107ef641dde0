"""Loading: the example, target settings and credentials, locations, digest, schema, limits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

import reconciler.config as config_pkg
from reconciler.config import TARGET_TYPES, Config, load, schema_text
from reconciler.config._limits import MAX_ALIASES
from reconciler.exceptions import ConfigError, SecretError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "audiences.yaml"

MINIMAL = """\
version: 1
targets:
  feed:
    type: epsilon-feed
    directory: out/
"""


def _write(tmp_path: Path, text: str, name: str = "audiences.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _messages(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, **kwargs)
    return [f"{p.line}:{p.column}: {p.path}: {p.message}" for p in info.value.problems]


def test_public_api_is_what_we_mean() -> None:
    for name in (
        "load",
        "resolve",
        "explain",
        "schema_text",
        "Config",
        "TargetConfig",
        "SegmentConfig",
        "CustomerSource",
        "RemovedConfig",
        "Reason",
    ):
        assert name in config_pkg.__all__
        assert hasattr(config_pkg, name)


def test_example_loads() -> None:
    config = load(EXAMPLE)
    assert isinstance(config, Config)
    assert config.version == 1
    assert list(config.targets) == ["epsilon", "talon"]
    eps = config.targets["epsilon"]
    assert eps.type == "epsilon"
    assert eps.settings["base_url"] == "https://integration-brandco.citrusad.com"
    assert eps.settings["retailer_team_id"] == "13c84def-41cb-4f99-a3fc-6788264f79fe"
    assert eps.settings["source_id"] == "DEFAULT_SOURCE_ID"
    assert eps.credentials == {"bearer_token": "EPSILON_BEARER_TOKEN", "api_key": "EPSILON_API_KEY"}
    assert eps.safety.max_delete_share == 0.3
    assert eps.safety.min_existing == 10
    assert not eps.prune
    talon = config.targets["talon"]
    assert talon.credentials == {
        "api_key": "TALONONE_API_KEY",
        "management_key": "TALONONE_MANAGEMENT_KEY",
    }
    assert talon.settings["destination_host"] == "mycompany.europe-west1.talon.one"
    ids = [s.id for s in config.segments]
    assert ids == [
        "general-segment-1",
        "general-segment-2",
        "general-segment-3",
        "custom-segment-1",
    ]
    seg1 = config.segments[0]
    assert seg1.name == "High Spending Shoppers"
    assert seg1.targets == ("epsilon", "talon")
    assert seg1.prevent_destroy
    assert seg1.access is None
    custom = config.segment("custom-segment-1")
    assert custom.name == "Custom: High Purchase Recency BrandCo"
    assert custom.targets == ("epsilon",)
    assert custom.access == frozenset(
        {"a5166fc4-f874-4741-a721-c05ffd9941a5", "92f4b91f-0089-4102-b13b-6015da8e0174"}
    )
    src = config.customer_sources["shoppers"]
    assert src.format == "csv"
    assert src.id_column == "customer_id"
    assert src.columns["customer_id"] == "VARCHAR"
    assert (seg1.line, seg1.column) == config.location(("segments", 0))


def test_example_validates_against_the_schema() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    validator = Draft202012Validator(json.loads(schema_text()))
    assert list(validator.iter_errors(data)) == []
    assert EXAMPLE.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=../schemas/audiences.schema.json"
    )


def test_schema_is_valid_2020_12_and_documented() -> None:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (ROOT / "schemas" / "audiences.schema.json").read_text(encoding="utf-8") == schema_text()

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                assert "description" in sub or "$ref" in sub, f"{where}.{name}"
                assert "title" in sub or "$ref" in sub, f"{where}.{name}"
            if node.get("type") == "object" and "properties" in node and "allOf" not in node:
                assert node.get("additionalProperties") is False, where
            for key, sub in node.items():
                if key != "if":  # the type discriminator, not a documented property
                    walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "#")


def test_schema_target_types_match_the_registry() -> None:
    schema = json.loads(schema_text())
    enum = schema["$defs"]["target"]["properties"]["type"]["enum"]
    assert enum == list(TARGET_TYPES)
    branches = {
        b["if"]["properties"]["type"]["const"]: b["then"]
        for b in schema["$defs"]["target"]["allOf"]
    }
    for name, ttype in TARGET_TYPES.items():
        props = branches[name]["properties"]
        for field in (*ttype.settings, *ttype.credentials):
            assert field in props, (name, field)


def test_credentials_read_the_environment_and_name_the_variable() -> None:
    target = load(EXAMPLE).targets["epsilon"]
    assert target.credential("api_key", {"EPSILON_API_KEY": "k"}) == "k"
    with pytest.raises(SecretError, match="EPSILON_API_KEY") as info:
        target.credential("api_key", {})
    assert "api_key" in str(info.value)
    with pytest.raises(SecretError, match="EPSILON_API_KEY is empty"):
        target.credential("api_key", {"EPSILON_API_KEY": ""})
    with pytest.raises(SecretError, match="EPSILON_BEARER_TOKEN"):
        target.check_credentials({"EPSILON_API_KEY": "k"})
    with pytest.raises(KeyError):
        target.credential("password", {})


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load(_write(tmp_path, MINIMAL))
    feed = config.targets["feed"]
    assert feed.settings == {"directory": tmp_path / "out/", "mode": "snapshot", "gzip": False}
    assert feed.credentials == {}
    assert config.segments == ()
    assert config.removed == ()


def test_removed_defaults(tmp_path: Path) -> None:
    text = MINIMAL + "removed:\n  - {id: old-1, destroy: false}\n  - id: old-2\n"
    config = load(_write(tmp_path, text))
    assert [(r.id, r.destroy, r.targets) for r in config.removed] == [
        ("old-1", False, ("feed",)),
        ("old-2", True, ("feed",)),
    ]


def test_digest_covers_yaml_and_data_files(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE.parent, tmp_path / "ex")
    path = tmp_path / "ex" / "audiences.yaml"
    first = load(path).digest
    assert first == load(path).digest
    assert len(first) == 64
    vip = tmp_path / "ex" / "data" / "vip.txt"
    vip.write_text(vip.read_text() + "cust_00100\n")
    second = load(path).digest
    assert second != first
    path.write_text(path.read_text() + "\n# comment\n")
    assert load(path).digest not in (first, second)


def test_digest_is_the_yaml_and_each_files_digest_in_path_order(tmp_path: Path) -> None:
    """SHA-256 of the YAML, then of each referenced file's own SHA-256 under its path from
    the YAML's folder (each file hashed once, by the thread that hashes them as found)."""
    import hashlib
    import threading

    shutil.copytree(EXAMPLE.parent, tmp_path / "ex")
    path = tmp_path / "ex" / "audiences.yaml"
    config = load(path)
    files = sorted({"data/customers.csv", "data/vip.txt"})
    h = hashlib.sha256(b"audiences.yaml\0" + path.read_bytes())
    for name in files:
        content = hashlib.sha256((tmp_path / "ex" / name).read_bytes()).hexdigest()
        h.update(b"\0" + name.encode() + b"\0" + content.encode())
    assert config.digest == h.hexdigest()
    for thread in [t for t in threading.enumerate() if t.name == "config-digest"]:
        thread.join(timeout=10)  # it ends once the digest is made
        assert not thread.is_alive()


def test_a_file_that_cannot_be_read_for_the_digest_is_said_when_it_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.config import _digest

    def unreadable(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_digest, "_file_digest", unreadable)
    shutil.copytree(EXAMPLE.parent, tmp_path / "ex")
    config = load(tmp_path / "ex" / "audiences.yaml")
    with pytest.raises(PermissionError):
        _ = config.digest


def test_locations_of_nodes() -> None:
    config = load(EXAMPLE)
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    line, col = config.location(("segments", 3, "access"))
    assert lines[line - 1][col - 1 :] == "brandco-team"
    # unknown deeper paths fall back to the nearest located ancestor
    assert config.location(("segments", 3, "access", "nope", 7)) == (line, col)


def test_empty_file(tmp_path: Path) -> None:
    assert _messages(_write(tmp_path, "")) == ["1:1: : expected a mapping, got null"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load(tmp_path / "nope.yaml")


def test_file_size_is_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "#" * 200 + "\n")
    assert _messages(path, max_bytes=100) == [
        f"0:0: : file is {path.stat().st_size} bytes; at most 100 are allowed"
    ]


def test_alias_count_is_bounded(tmp_path: Path) -> None:
    aliases = ", ".join(["*x"] * (MAX_ALIASES + 1))
    path = _write(tmp_path, MINIMAL + f"x: &x 1\ny: [{aliases}]\n")
    (message,) = _messages(path)
    assert message.startswith("7:4: y: more than 100 YAML aliases")


def test_small_aliases_are_fine_and_merge_keys_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace("directory: out/", "directory: &dir out/") + (
        "  feed2: {type: epsilon-feed, directory: *dir}\n"
    )
    assert load(_write(tmp_path, text)).targets["feed2"].settings["directory"] == tmp_path / "out/"
    merged = MINIMAL + "  feed2:\n    <<: {type: epsilon-feed}\n    directory: x\n"
    assert _messages(_write(tmp_path, merged)) == [
        "7:5: targets.feed2: YAML merge keys (<<) are not supported; write the fields out"
    ]


def test_unsupported_tags(tmp_path: Path) -> None:
    text = MINIMAL + "segments: !!set {a, b}\n"
    assert _messages(_write(tmp_path, text)) == [
        "6:11: segments: unsupported YAML tag 'tag:yaml.org,2002:set'"
    ]


def test_unknown_target_type_does_not_cascade(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  x: {type: nope, whatever: 1}\n"
    assert _messages(_write(tmp_path, text)) == [
        '3:13: targets.x.type: unknown target type "nope" (known: epsilon, epsilon-feed, talonone)'
    ]


def test_missing_required_fields(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  t: {type: talonone}\nsegments:\n  - id: s\n"
    assert _messages(_write(tmp_path, text)) == [
        "3:6: targets.t: missing required field management_url",
        "5:5: segments[0]: missing required field name",
    ]


def test_invalid_target_name(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  'bad name': {type: epsilon-feed, directory: x}\n"
    assert _messages(_write(tmp_path, text)) == [
        "3:3: targets['bad name']: invalid name \"bad name\": use letters, digits, - and _ "
        "(at most 64, starting with a letter or digit)"
    ]


def test_several_sources_need_a_named_source(tmp_path: Path) -> None:
    data = tmp_path / "c.csv"
    data.write_text("id,x\na,1\n")
    text = MINIMAL + (
        "customer_sources:\n"
        "  one: {path: c.csv, id_column: id}\n"
        "  two: {path: c.csv, id_column: id}\n"
        "segments:\n"
        "  - id: s\n    name: S\n    members:\n      rule: {attribute: x, eq: 1}\n"
    )
    assert _messages(_write(tmp_path, text)) == [
        "13:13: segments[0].members.rule: several customer sources (one, two): "
        "name one with source:"
    ]


def test_member_file_column_must_exist(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("id,x\na,1\n")
    text = MINIMAL + (
        "segments:\n  - id: s\n    name: S\n    members:\n"
        "      files: [{path: m.csv, column: customer}]\n"
    )
    assert _messages(_write(tmp_path, text)) == [
        "10:37: segments[0].members.files[0].column: column 'customer' not found in m.csv"
    ]


def test_mapping_keys_must_be_text(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  1: {type: epsilon-feed, directory: x}\n  yes: {}\n"
    assert _messages(_write(tmp_path, text)) == [
        "3:3: targets: mapping key '1' is read as int, not text; quote it",
        "4:3: targets: mapping key 'yes' is read as bool, not text; quote it",
    ]
