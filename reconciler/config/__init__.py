"""The configuration language: load ``audiences.yaml`` with locations, validate it in two layers
(JSON Schema, then semantic checks), compile membership rules to SQL and resolve the desired
:class:`~reconciler.model.State` of every target.

::

    config = load("audiences.yaml")        # ConfigError(problems) with EVERY problem found
    config = load("audiences.yaml", env="staging")   # one of its environments
    desired = resolve(config)              # {target name: State}
    explain(config, "cust_00042")          # [Reason(segment_id, targets, via, detail, location)]
    schema_text()                          # the JSON Schema, for editors and `reconcile schema`
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ._environments import ENV_VAR, declared, select
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
from ._resolve import check_resolvable, resolve
from ._schema import schema_text, validate_schema
from ._semantic import analyse
from ._targets import TARGET_TYPES, TargetType, target_type
from ._yaml import load_yaml

__all__ = [
    "ENV_VAR",
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
    "check_environment",
    "check_resolvable",
    "environments",
    "explain",
    "explain_customer",
    "load",
    "resolve",
    "schema_text",
    "target_type",
]


def load(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, env: str | None = None) -> Config:
    """Read and validate a configuration file; ``env``: the environment to load it in (one
    it declares; required when it declares any, see ``environments:``).

    Raises :class:`~reconciler.exceptions.ConfigError` carrying every problem found, each located
    as ``file:line:col: field.path: message``.
    """
    doc = select(load_yaml(Path(path), max_bytes=max_bytes), env)
    schema_problems = validate_schema(doc.data, doc.locations, str(doc.path))
    config = analyse(doc, schema_problems)
    return dataclasses.replace(config, environment=env) if env else config


def environments(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, ...]:
    """The environments a configuration file declares, in the order written (a
    :class:`~reconciler.exceptions.ConfigError` when it cannot be read as YAML)."""
    return declared(load_yaml(Path(path), max_bytes=max_bytes))


def check_environment(path: str | Path, env: str | None) -> str | None:
    """``env``, once checked against the environments the file declares (a located
    :class:`~reconciler.exceptions.ConfigError` as :func:`load` raises), without the rest of
    the checks of :func:`load`."""
    select(load_yaml(Path(path)), env)
    return env
