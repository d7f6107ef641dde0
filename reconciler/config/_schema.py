"""Layer one: the JSON Schema (also used by editors), with every error located and reworded.

JSON has no NaN or infinity but YAML does (``.nan``, ``.inf``), and a JSON Schema cannot tell
them from numbers (NaN passes every ``minimum`` and ``maximum``): every number of the document,
wherever it is, is checked to be finite here, before the schema's own checks.

A document is first checked by a compiled validator (jsonschema-rs: ~2 ms to compile the
schema, ~0.2 ms to check a config); only one it does not pass is checked again by jsonschema,
whose errors are the ones located and reworded (and whose verdict is the one that stands). The
first never passes what the second refuses: the schema's patterns keep to what the two regular
expression engines read alike (tests/test_config_schema_engines.py checks every pattern, and
the configs of the test suite, against both). A command that loads a valid config so never
imports jsonschema (~30 ms: attrs, referencing and its format checkers).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..exceptions import Problem
from ._locations import Locations, NodePath, format_path
from ._secrets import SECRET_PATTERN

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator, ValidationError

__all__ = ["conforms", "schema", "schema_text", "validate_schema"]


@cache
def schema_text() -> str:
    """The JSON Schema of the configuration language (2020-12), as shipped in the package."""
    return (
        resources.files("reconciler")
        .joinpath("schemas/audiences.schema.json")
        .read_text(encoding="utf-8")
    )


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_text())
    return data


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


@cache
def _compiled(text: str) -> jsonschema_rs.Draft202012Validator:
    """The compiled validator (draft 2020-12, as jsonschema's) of the schema whose JSON text is
    ``text``."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(json.loads(text))


def conforms(text: str, data: Any) -> bool:
    """Whether ``data`` passes the schema whose JSON text is ``text``, by the compiled
    validator; False also when it cannot tell (a value JSON has no type for, such as a date
    YAML read): jsonschema then decides."""
    try:
        return _compiled(text).is_valid(data)
    except Exception:  # whatever it cannot check, jsonschema checks
        return False


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """For anyOf/oneOf, the errors of the alternative that went deepest (if it is unambiguous)."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            yield from (e for e in error.context if len(e.absolute_path) == deepest)
            return
    yield error


def _message(error: ValidationError, path: NodePath) -> str:
    v = error.validator
    inst = error.instance
    sch = error.schema if isinstance(error.schema, dict) else {}
    if v == "type":
        wanted = error.validator_value
        words = [
            _TYPE_WORDS.get(str(t), str(t))
            for t in (wanted if isinstance(wanted, list) else [wanted])
        ]
        return f"expected {' or '.join(words)}, got {_describe(inst)}"
    if v == "required":
        missing = [r for r in error.validator_value if isinstance(inst, dict) and r not in inst]
        return f"missing required field {missing[0] if missing else error.validator_value}"
    if v == "const" and path == ("version",):
        return f"unsupported version {_short(inst)}; this reconciler reads version 1"
    if v == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        if len(path) == 3 and path[0] == "targets" and path[2] == "type":
            return f"unknown target type {_short(inst)} (known: {options})"
        return f"{_short(inst)} is not one of: {options}"
    if v == "pattern":
        pattern = error.validator_value
        if pattern == SECRET_PATTERN:
            # never echo the value: it may be a real secret
            return (
                "credentials must be an ${ENV_VAR} or ${file:PATH} reference, not a literal value"
            )
        title = sch.get("title", "value")
        if "\\t\\r\\n" in pattern:
            return (
                f"{title.lower()} contains a tab, newline or carriage return, "
                "which the Epsilon file feed cannot carry"
            )
        if "0-9a-fA-F]{8}" in pattern:
            return f"{_short(inst)} is not a UUID"
        if title == "Customer id":
            return f"customer id {_short(inst)} contains whitespace or a control character"
        if title == "Segment id":
            return (
                f"segment id {_short(inst)} must start with a letter or digit and contain only "
                "letters, digits and . _ : -"
            )
        if title == "Spark master":
            return (
                f"{_short(inst)} is not a Spark master: use local[*], local[N], "
                "sc://host:port (Spark Connect) or spark://host:port"
            )
        if title == "Table":
            return (
                f"table name {_short(inst)} contains whitespace, a control character or a backquote"
            )
        if "https?" in pattern:
            # never echo credentials written into the URL (user:password@)
            shown = re.sub(r"//[^/?#]*@", "//***@", inst) if isinstance(inst, str) else inst
            return f"{_short(shown)} is not an http(s) URL"
        return f"{_short(inst)} does not match {pattern}"
    if v == "maxLength":
        return f"too long: {len(inst)} characters, at most {error.validator_value}"
    if v == "minLength":
        return "must not be empty"
    if v == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    if v == "minProperties":
        return f"needs at least {error.validator_value} entry(ies)"
    if v == "uniqueItems":
        return "items must be unique"
    if v == "oneOf" and sch.get("title") == "Customer source" and isinstance(inst, dict):
        if "path" in inst and "table" in inst:
            return "give path or table, not both"
        return "missing required field path or table (exactly one of them)"
    if v in ("anyOf", "oneOf"):
        return f"{_describe(inst)} is not valid here: {error.schema.get('description', '')}".strip()
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return str(error.message)
    return str(error.message)


def _yaml_number(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    return ".inf" if value > 0 else "-.inf"


def non_finite(data: Any) -> Iterator[tuple[NodePath, str]]:
    """``(path, message)`` for every number in ``data`` that is not finite (NaN, infinity, or an
    integer too large to be a float), at any depth."""
    stack: list[tuple[NodePath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, str(k)), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, float) and not math.isfinite(value):
            yield path, f"{_yaml_number(value)} is not a finite number; write a finite value"
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                float(value)
            except OverflowError:
                yield (
                    path,
                    (
                        f"{len(str(abs(value)))}-digit integer is too large "
                        "(not a finite number); write a finite value"
                    ),
                )


def validate_schema(data: Any, locations: Locations, file: str) -> list[tuple[NodePath, Problem]]:
    """Every schema violation of ``data`` with the node path it concerns; [] when it conforms."""
    problems: list[tuple[NodePath, Problem]] = []
    numbers = dict(non_finite(data))
    if not numbers and conforms(schema_text(), data):
        return problems
    for path_, message in numbers.items():
        line, col = locations.of(path_)
        problems.append((path_, Problem(file, line, col, format_path(path_), message)))
    return _located(_validator(), data, (), numbers, problems, locations, file)


def validate_branch(
    branch: dict[str, Any], data: Any, at: NodePath, locations: Locations, file: str
) -> list[tuple[NodePath, Problem]]:
    """The violations of ``branch`` (a target type's schema, built from its provider's
    declaration) by ``data``, the node at ``at``; reworded and located as
    :func:`validate_schema` does (the finite-number check already ran on the whole file)."""
    if conforms(json.dumps(branch, sort_keys=True), data):
        return []
    from jsonschema import Draft202012Validator

    return _located(Draft202012Validator(branch), data, at, {}, [], locations, file)


def _located(
    validator: Draft202012Validator,
    data: Any,
    at: NodePath,
    numbers: dict[NodePath, str],
    problems: list[tuple[NodePath, Problem]],
    locations: Locations,
    file: str,
) -> list[tuple[NodePath, Problem]]:
    for top in validator.iter_errors(data):
        for error in _leaves(top):
            path: NodePath = (*at, *error.absolute_path)
            if path in numbers:  # already said: not a number the schema can compare
                continue
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                allowed = list(error.schema.get("properties", {}))
                for key in error.instance:
                    if key in allowed:
                        continue
                    key_path = (*path, str(key))
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    line, col = locations.key(key_path)
                    message = f"unknown field {key}{hint}"
                    problems.append(
                        (key_path, Problem(file, line, col, format_path(key_path), message))
                    )
                continue
            if "propertyNames" in error.relative_schema_path:
                key_path = (*path, str(error.instance))
                line, col = locations.key(key_path)
                message = (
                    f"invalid name {_short(error.instance)}: use letters, digits, - and _ "
                    "(at most 64, starting with a letter or digit)"
                )
                problems.append(
                    (key_path, Problem(file, line, col, format_path(key_path), message))
                )
                continue
            message = _message(error, path)
            if message == "give path or table, not both":
                path = (*path, "table")  # point at the second of the two
            line, col = locations.of(path)
            problems.append((path, Problem(file, line, col, format_path(path), message)))
    unique = {problem: path for path, problem in problems}
    return sorted(((path, problem) for problem, path in unique.items()), key=lambda p: p[1])
