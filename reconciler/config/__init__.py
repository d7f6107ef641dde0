"""The configuration language: load ``audiences.yaml`` with locations, validate it in two layers
(JSON Schema, then semantic checks), compile membership rules to SQL and resolve the desired
:class:`~reconciler.model.State` of every target.

::

    config = load("audiences.yaml")        # ConfigError(problems) with EVERY problem found
    desired = resolve(config)              # {target name: State}
    explain(config, "cust_00042")          # [Reason(segment_id, targets, via, detail, location)]
    schema_text()                          # the JSON Schema, for editors and `reconcile schema`
"""

from __future__ import annotations

from pathlib import Path

from ._explain import Explanation, explain, explain_customer
from ._limits import MAX_FILE_BYTES
from ._model import (
    Config,
    CustomerSource,
    MemberFile,
    Members,
    Reason,
    RemovedConfig,
    Safety,
    SegmentConfig,
    Selection,
    SourceRule,
    TargetConfig,
)
from ._resolve import resolve
from ._schema import schema_text, validate_schema
from ._semantic import analyse
from ._targets import TARGET_TYPES, TargetType, target_type
from ._yaml import load_yaml

__all__ = [
    "TARGET_TYPES",
    "Config",
    "CustomerSource",
    "Explanation",
    "MemberFile",
    "Members",
    "Reason",
    "RemovedConfig",
    "Safety",
    "SegmentConfig",
    "Selection",
    "SourceRule",
    "TargetConfig",
    "TargetType",
    "explain",
    "explain_customer",
    "load",
    "resolve",
    "schema_text",
    "target_type",
]


def load(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> Config:
    """Read and validate a configuration file.

    Raises :class:`~reconciler.exceptions.ConfigError` carrying every problem found, each located
    as ``file:line:col: field.path: message``.
    """
    doc = load_yaml(Path(path), max_bytes=max_bytes)
    schema_problems = validate_schema(doc.data, doc.locations, str(doc.path))
    return analyse(doc, schema_problems)
