"""A document the tests produce checked against one of the project's JSON Schemas, by the
compiled validator (jsonschema-rs, which the config's check runs first): a plan of thousands
of changes takes it milliseconds, jsonschema a second. The small plans of ``test_plan``, the
platforms' request bodies and the schemas themselves are still checked by jsonschema, so both
validators read each schema."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jsonschema_rs

__all__ = ["assert_valid"]


@functools.cache
def _validator(text: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(text))


def assert_valid(schema: Mapping[str, Any], document: Any) -> None:
    """Fail with every error (where, and why) when ``document`` does not conform."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = [
        f"{'/'.join(map(str, e.instance_path)) or '(the document)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors[:20])
