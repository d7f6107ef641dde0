"""Credentials are ``${ENV_VAR}`` references in the config; values live only in the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..exceptions import SecretError

__all__ = ["SECRET_PATTERN", "SECRET_REF", "env_var", "read_secret"]

#: The only accepted form of a credential in the YAML (the schema uses this exact pattern).
SECRET_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"  # noqa: S105 - a pattern, not a secret
SECRET_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def env_var(reference: str) -> str:
    """``"${EPSILON_API_KEY}"`` → ``"EPSILON_API_KEY"`` (ValueError on anything else)."""
    match = SECRET_REF.match(reference)
    if match is None:
        raise ValueError("not an ${ENV_VAR} reference")
    return match.group(1)


def read_secret(var: str, environ: Mapping[str, str], *, what: str = "credential") -> str:
    """The value of environment variable ``var``; :class:`SecretError` names it if unset/empty."""
    value = environ.get(var)
    if value is None:
        raise SecretError(f"environment variable {var} is not set ({what})")
    if not value:
        raise SecretError(f"environment variable {var} is empty ({what})")
    return value
