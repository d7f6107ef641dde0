"""The compiled validator (jsonschema-rs) never passes what jsonschema refuses.

A valid config is checked by the compiled validator alone (see :mod:`reconciler.config._schema`),
so it must be at least as strict as jsonschema, whose verdict is the one that stands: every
pattern of the schema (and of each target type's branch) is probed with every control, space
and separator character at every place of strings it matches, and every config of the test
suite, each with its leaves replaced by values of the wrong kind or with a stray character, is
checked by both.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.config._schema import conforms, schema, schema_text
from reconciler.config._targets import branch
from reconciler.providers import PROVIDER_MODULES

ROOT = Path(__file__).resolve().parent.parent

#: the characters the two regular expression engines may read differently: controls, every
#: space and separator, format characters, and a few others beyond the Basic Latin
_PROBES = [
    *(chr(c) for c in range(0x00, 0xA1)),
    *(chr(c) for c in (0xAD, 0x1680, 0x180E, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF)),
    *(chr(c) for c in range(0x2000, 0x200F)),
    *(chr(c) for c in (0xE9, 0x65E5, 0xFFFE, 0x1F600, 0x10FFFF)),
]

#: strings some pattern of the schema matches (each pattern is probed from those it matches)
_SEEDS = [
    "a",
    "ab.c-d_e",
    "Segment 1",
    "local[2]",
    "local[*]",
    "sc://spark.example:15002/path",
    "spark://host:7077",
    "https://api.example.com/",
    "https://api.example.com:8443",
    "${EPSILON_API_KEY}",
    "${file:secrets/key}",
    "pkg.module:Provider",
    "db.schema.table",
    "13c84def-41cb-4f99-a3fc-6788264f79fe",
    "cust_00000001",
]


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, sub in node.items():
            if key == "pattern" and isinstance(sub, str):
                yield sub
            else:
                yield from _patterns(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from _patterns(sub)


_ALL_PATTERNS = sorted(
    {*_patterns(schema()), *(p for t in PROVIDER_MODULES for p in _patterns(branch(t)))}
)


@pytest.mark.parametrize("pattern", _ALL_PATTERNS)
def test_no_pattern_passes_in_the_compiled_validator_what_python_refuses(pattern: str) -> None:
    compiled = jsonschema_rs.Draft202012Validator({"type": "string", "pattern": pattern})
    python = re.compile(pattern)
    seeds = [s for s in _SEEDS if python.search(s)]
    assert seeds, f"no seed matches {pattern!r}: add one"
    probed = 0
    passed_only_there = []
    for seed in seeds:
        for at in range(len(seed) + 1):
            for char in _PROBES:
                for text in (seed[:at] + char + seed[at:], seed[:at] + char + seed[at:] + "\n"):
                    probed += 1
                    if compiled.is_valid(text) and not python.search(text):
                        passed_only_there.append(text)
    assert probed > 1000
    assert passed_only_there == []


def _configs() -> list[Path]:
    found = [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/**/*.yaml")]
    return sorted(p for p in found if "cassettes" not in p.parts)


def _load(path: Path) -> Any:
    """The document, unless it is one of the hostile ones (an alias bomb, deep nesting)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    return data if _small(data) else None


def _small(node: Any, depth: int = 0, budget: list[int] | None = None) -> bool:
    budget = [5_000] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > 40:
        return False
    subs = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return all(_small(sub, depth + 1, budget) for sub in subs)


def _leaves(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, sub in node.items():
            yield from _leaves(sub, (*at, key))
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _leaves(sub, (*at, i))
    else:
        yield at, node


def _replaced(data: Any, at: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for key in at[:-1]:
        node = node[key]
    node[at[-1]] = value
    return out


def _wrong(value: Any) -> list[Any]:
    """Values of the wrong kind for a leaf, or the same value with a stray character."""
    if isinstance(value, str):
        return [value + "\n", value + "\x85", "\x1c" + value, value + " x", "", 1, True, None]
    if isinstance(value, bool):
        return [int(value), str(value).lower(), None]
    if isinstance(value, int | float):
        return [True, str(value), -value - 1, value + 0.5, 2**70, None, [value]]
    return ["x", 0]


def _agree(data: Any, validator: Draft202012Validator) -> None:
    if conforms(schema_text(), data):
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], "the compiled validator passed what jsonschema refuses"


def test_every_config_of_the_suite_and_its_variants_the_compiled_validator_passes_is_valid() -> (
    None
):
    validator = Draft202012Validator(json.loads(schema_text()))
    documents = [d for d in map(_load, _configs()) if isinstance(d, dict)]
    assert len(documents) > 10
    passed = 0
    for data in documents:
        _agree(data, validator)
        passed += conforms(schema_text(), data)
        for at, value in _leaves(data):
            if not at:
                continue
            for wrong in _wrong(value):
                _agree(_replaced(data, at, wrong), validator)
    assert passed > 5  # the valid ones are checked on the fast path at all


def test_a_value_the_compiled_validator_cannot_read_is_left_to_jsonschema() -> None:
    """A date YAML read, or a key that is not a string: not passed, so jsonschema decides."""
    import datetime

    text = json.dumps(
        {"properties": {"when": {"type": "string"}}, "propertyNames": {"pattern": "^[a-z]+$"}}
    )
    assert conforms(text, {"when": "today"}) is True
    assert conforms(text, {"when": datetime.date(2026, 12, 3)}) is False
    assert conforms(text, {1: "x"}) is False
    bounded = json.dumps({"properties": {"n": {"type": "integer", "maximum": 10}}})
    assert conforms(bounded, {"n": 2**70}) is False
