"""The error tree of audience-reconciler.

Every error the library raises derives from :class:`ReconcilerError`; the CLI catches that one
class, prints one line per problem and maps it to an exit code. Errors from libraries (YAML,
httpx, DuckDB, SQLite) are translated at the boundary with ``raise ... from exc``.

::

    ReconcilerError
    ├── ConfigError              the configuration is invalid (carries every Problem found)
    ├── PatternError             a pattern outside the portable subset (also a ValueError;
    │                            the checker turns it into a Problem)
    ├── SecretError              a credential reference cannot be resolved
    ├── ProviderError            a target answered something the reconciler cannot use
    │   ├── UnsupportedError     the target cannot do what was asked
    │   └── CredentialsRefused   HTTP 401 or 403: the target refused the credentials
    ├── BatchRejected            the platform refused a whole batch (the executor splits it)
    ├── RemoteError              the network or the target failed after all retries
    │   └── StatusError          an answer with a status the caller did not expect
    ├── StateStoreError          the local state store is unreadable or locked
    │   ├── LockedError          another apply holds the target's lock
    │   └── SnapshotError        a membership snapshot file cannot be read
    ├── PlanError                a plan file is malformed, stale or unsafe
    │   ├── StalePlanError       the config or the remote changed since the plan was made
    │   └── UnsafePlanError      the plan crosses a safety threshold or prevent_destroy
    ├── OutputError              a file a command writes (an imported config) cannot be written
    └── SandboxError             the local sandbox could not start or was misused
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BatchRejected",
    "ConfigError",
    "CredentialsRefused",
    "LockedError",
    "OutputError",
    "PatternError",
    "PlanError",
    "Problem",
    "ProviderError",
    "ReconcilerError",
    "RemoteError",
    "SandboxError",
    "SecretError",
    "SnapshotError",
    "StalePlanError",
    "StateStoreError",
    "StatusError",
    "UnsafePlanError",
    "UnsupportedError",
]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One located finding: ``file:line:col: field.path: message``.

    ``line`` and ``column`` are 1-based; 0 means "the whole file".
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class ReconcilerError(Exception):
    """Base class of every error raised by audience-reconciler."""


class ConfigError(ReconcilerError):
    """The configuration is invalid; ``problems`` lists every reason, sorted by location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        first = str(self.problems[0]) if self.problems else "invalid configuration"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class PatternError(ReconcilerError, ValueError):
    """A pattern outside the portable subset; ``position`` is 0-based."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position
        self.message = message


class SecretError(ReconcilerError):
    """A ``${ENV_VAR}`` credential reference names a variable that is not set."""


class ProviderError(ReconcilerError):
    """A target answered something the reconciler cannot use."""


class UnsupportedError(ProviderError):
    """The target cannot perform the requested operation."""


class CredentialsRefused(ProviderError):
    """HTTP 401 or 403: the target refused the credentials. Never retried."""


class BatchRejected(ReconcilerError):
    """The platform refused a whole batch (HTTP 400): the executor splits it and retries."""


class RemoteError(ReconcilerError):
    """The network or the target kept failing after every retry."""


class StatusError(RemoteError):
    """A response with a status the caller did not expect (providers map the ones they know;
    any other reaches the user as one line). ``text`` and ``body`` are already redacted."""

    def __init__(self, message: str, status: int, text: str, body: Any) -> None:
        super().__init__(message)
        self.status = status
        #: an excerpt of the answer's text, redacted
        self.text = text
        #: the answer's JSON with every string redacted (None: not JSON)
        self.body = body


class StateStoreError(ReconcilerError):
    """The local state store cannot be read or written."""


class LockedError(StateStoreError):
    """Another apply holds the lock of this target."""


class SnapshotError(StateStoreError):
    """A target's membership snapshot (a file the state store keeps beside its database)
    cannot be read; the database still holds the record it was written from."""


class PlanError(ReconcilerError):
    """A plan file is malformed, or cannot be applied."""


class StalePlanError(PlanError):
    """The configuration or the remote changed since the saved plan was computed."""


class UnsafePlanError(PlanError):
    """The plan crosses a safety threshold or would destroy a protected segment."""


class OutputError(ReconcilerError):
    """A file a command writes (an imported config, its member files) cannot be written."""


class SandboxError(ReconcilerError):
    """The local sandbox could not start or was used wrongly."""
