"""Every broken scenario config in tests/configs/ fails with exactly the expected problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load
from reconciler.exceptions import ConfigError

CONFIGS = Path(__file__).parent / "configs"

EXPECTED: dict[str, list[str]] = {
    "unknown-access-list.yaml": [
        "14:13: segments[0].access: unknown access list brandco-teem (known: brandco-team)",
    ],
    "duplicate-segment.yaml": [
        "14:9: segments[2].id: duplicate segment id seg-1 (first declared on line 10)",
    ],
    "literal-secret.yaml": [
        "8:14: targets.epsilon.api_key: "
        "credentials must be an ${ENV_VAR} or ${file:PATH} reference, not a literal value",
    ],
    "billion-laughs.yaml": [
        "7:4: f: document expands to more than 200000 nodes (YAML alias bomb?)",
    ],
    "recursive-alias.yaml": [
        "2:10: targets: recursive YAML alias is not allowed",
    ],
    "bad-rule-attribute.yaml": [
        "18:25: segments[0].members.rule.all[1].attribute: "
        "source 'shoppers' has no column 'regoin'; did you mean 'region'?",
    ],
    "bad-rule-shape.yaml": [
        "17:13: segments[0].members.rule.all[0]: a comparison has an attribute and exactly one "
        "operator (eq, ne, lt, lte, gt, gte, in, not_in, exists, matches); found gte, lte",
        "18:13: segments[0].members.rule.all[1]: operator gte needs an attribute",
        "19:13: segments[0].members.rule.all[2]: a comparison has an attribute and exactly one "
        "operator (eq, ne, lt, lte, gt, gte, in, not_in, exists, matches); found none",
    ],
    "unknown-target.yaml": [
        "12:24: segments[0].targets[1]: unknown target talon (known: epsilon)",
    ],
    "unknown-source.yaml": [
        "15:22: segments[0].members.rule.source: "
        "unknown customer source 'buyers' (known: shoppers)",
    ],
    "missing-file.yaml": [
        "10:20: customer_sources.shoppers.path: file not found: data/nope.csv",
        "15:29: segments[0].members.files[1]: file not found: data/missing-ids.txt",
    ],
    "bad-team-id.yaml": [
        '10:56: access_lists.brandco-team[1]: "not-a-uuid" is not a UUID',
        '14:14: segments[0].access[0]: "92f4b91f-0089-4102-b13b-6015da8e017" is not a UUID',
    ],
    "bad-segment-id.yaml": [
        '10:9: segments[0].id: segment id "-starts-with-dash" must start with a letter or digit '
        "and contain only letters, digits and . _ : -",
        '12:9: segments[1].id: segment id "has space" must start with a letter or digit '
        "and contain only letters, digits and . _ : -",
    ],
    "bad-customer-id.yaml": [
        '13:19: segments[0].members.ids[1]: customer id "has space" '
        "contains whitespace or a control character",
        "13:32: segments[0].members.ids[2]: must not be empty",
    ],
    "tab-in-name.yaml": [
        "11:11: segments[0].name: name contains a tab, newline or carriage return, "
        "which the Epsilon file feed cannot carry",
        "12:18: segments[0].description: description contains a tab, newline or carriage "
        "return, which the Epsilon file feed cannot carry",
    ],
    "bad-regex.yaml": [
        "15:40: segments[0].members.rule.matches: invalid regular expression '^(Jo': "
        "missing ): ^(Jo",
    ],
    "type-mismatch.yaml": [
        "17:37: segments[0].members.rule.any[0].gt: gt: column 'region' is VARCHAR, "
        "so the value must be text, not number 85",
        "18:36: segments[0].members.rule.any[1].eq: eq: column 'spend' is BIGINT, "
        'so the value must be a number, not text "ninety"',
        "19:37: segments[0].members.rule.any[2].lt: lt cannot apply to column 'active' "
        "of type BOOLEAN",
        "20:41: segments[0].members.rule.any[3].matches: matches cannot apply to column "
        "'spend' of type BIGINT",
        "21:38: segments[0].members.rule.any[4].gte: gte: column 'joined' is DATE, "
        'so the value must be an ISO date string, not text "last tuesday"',
    ],
    "unknown-field.yaml": [
        "12:5: segments[0].descripton: unknown field descripton; did you mean description?",
    ],
    "wrong-type.yaml": [
        "9:18: targets.epsilon.concurrency: expected an integer, got a string",
        "13:22: segments[0].prevent_destroy: expected true or false, got a string",
    ],
    "bad-guards.yaml": [
        "10:35: targets.epsilon.safety.guards.max_removed_share: 1.5 is greater than the "
        "maximum of 1",
        "10:54: targets.epsilon.safety.guards.min_existing: -1 is less than the minimum of 0",
        "14:32: segments[0].guards.max_growth_share: expected a number or null, got a string",
        "14:53: segments[0].guards.min_members: expected an integer or null, got a number",
        "17:33: segments[1].guards.max_removed_share: .nan is not a finite number; write a "
        "finite value",
        "17:39: segments[1].guards.max_shrink: unknown field max_shrink",
    ],
    "duplicate-key.yaml": [
        "12:5: segments[0].name: duplicate key name (first defined on line 11)",
    ],
    "syntax-error.yaml": [
        "6:1: YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'",
    ],
    "not-utf8.yaml": [
        "2:6: file is not valid UTF-8 (byte 0xe9)",
    ],
    "missing-id-column.yaml": [
        "10:50: customer_sources.shoppers.id_column: column 'customer' not found in "
        "data/shoppers.csv; did you mean 'customer_id'?",
    ],
    "unknown-target-type.yaml": [
        '10:11: targets.legacy.type: unknown target type "epsilon-classic" '
        "(known: epsilon, epsilon-feed, talonone)",
    ],
    "removed-still-declared.yaml": [
        "14:10: removed[1].id: segment seg-1 is listed as removed but still declared "
        "(segments[0], line 10)",
    ],
    "bad-version.yaml": [
        "1:10: version: unsupported version 2; this reconciler reads version 1",
    ],
    "several-problems.yaml": [
        "8:14: targets.epsilon.api_key: "
        "credentials must be an ${ENV_VAR} or ${file:PATH} reference, not a literal value",
        "16:13: segments[0].access: unknown access list nobody (known: team)",
        "17:15: segments[0].targets[0]: unknown target nowhere (known: epsilon)",
        "19:25: segments[0].members.rule.attribute: "
        "source 'shoppers' has no column 'spending'; did you mean 'spend'?",
        "20:9: segments[1].id: duplicate segment id seg-1 (first declared on line 14)",
    ],
}


def _problems(name: str) -> list[str]:
    path = CONFIGS / name
    with pytest.raises(ConfigError) as info:
        load(path)
    out = []
    for problem in info.value.problems:
        assert problem.file == str(path)
        text = str(problem)
        assert text.startswith(f"{path}:")
        out.append(text[len(f"{path}:") :])
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config_reports_exactly(name: str) -> None:
    assert _problems(name) == EXPECTED[name]


def test_every_scenario_config_is_asserted() -> None:
    on_disk = {p.name for p in CONFIGS.glob("*.yaml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 18


def test_literal_secret_value_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load(CONFIGS / "literal-secret.yaml")
    assert "sk_live_do_not_print_me" not in str(info.value)
    assert all("sk_live" not in str(p) for p in info.value.problems)


def test_error_message_summarises_the_first_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load(CONFIGS / "several-problems.yaml")
    assert str(info.value).endswith("(and 4 more)")
