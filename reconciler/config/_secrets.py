"""Credentials are references in the config, never values: ``${ENV_VAR}`` (read from the
environment when a target is used) or ``${file:PATH}`` (a mounted Docker or Kubernetes secret,
read when the config is loaded; PATH is relative to the config's folder, or absolute)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..exceptions import SecretError

__all__ = [
    "FILE_PREFIX",
    "SECRET_PATTERN",
    "SECRET_REF",
    "env_var",
    "read_secret",
    "read_secret_file",
    "secret_file",
]

#: The only accepted forms of a credential in the YAML (the schema uses this exact pattern).
SECRET_PATTERN = r"^\$\{([A-Za-z_][A-Za-z0-9_]*|file:[^}]+)\}$"  # noqa: S105 - a pattern
SECRET_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_FILE_REF = re.compile(r"^\$\{file:([^}]+)\}$")

#: how a file reference is kept among a target's credential references (``file:PATH``)
FILE_PREFIX = "file:"

#: a secret file larger than this is not a credential (a wrong path, most likely)
MAX_SECRET_BYTES = 64 * 1024


def env_var(reference: str) -> str:
    """``"${EPSILON_API_KEY}"`` → ``"EPSILON_API_KEY"`` (ValueError on anything else)."""
    match = SECRET_REF.match(reference)
    if match is None:
        raise ValueError("not an ${ENV_VAR} reference")
    return match.group(1)


def secret_file(reference: str) -> str | None:
    """``"${file:/run/secrets/key}"`` → ``"/run/secrets/key"``; None for an env reference."""
    match = _FILE_REF.match(reference)
    return match.group(1).strip() if match else None


def read_secret(var: str, environ: Mapping[str, str], *, what: str = "credential") -> str:
    """The value of environment variable ``var``; :class:`SecretError` names it if unset/empty."""
    value = environ.get(var)
    if value is None:
        raise SecretError(f"environment variable {var} is not set ({what})")
    if not value:
        raise SecretError(f"environment variable {var} is empty ({what})")
    return value


def read_secret_file(path: Path, shown: str) -> str:
    """The secret in file ``path`` (written ``shown`` in the config), its trailing newlines
    trimmed. :class:`SecretError` names the path, never anything it holds."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SecretError(
            f"cannot read the secret file {shown}: {exc.strerror or type(exc).__name__}"
        ) from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(
            f"the secret file {shown} is larger than {MAX_SECRET_BYTES // 1024} KiB: "
            "not a credential"
        )
    try:
        value = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise SecretError(f"the secret file {shown} is not UTF-8 text") from None
    if not value:
        raise SecretError(f"the secret file {shown} is empty")
    return value
