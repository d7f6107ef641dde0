"""The error tree of audience-reconciler.

Every error the library raises derives from :class:`ReconcilerError`; the CLI catches that one
class, prints one line per problem and maps it to an exit code. Errors from libraries (YAML,
httpx, DuckDB, SQLite) are translated at the boundary with ``raise ... from exc``.

::

    ReconcilerError
    ├── ConfigError              the configuration is invalid (carries every Problem found)
    ├── SecretError              a credential reference cannot be resolved
    ├── ProviderError            a target answered something the reconciler cannot use
    │   └── UnsupportedError     the target cannot do what was asked
    ├── RemoteError              the network or the target failed after all retries
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

__all__ = [
    "ConfigError",
    "LockedError",
    "OutputError",
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


class SecretError(ReconcilerError):
    """A ``${ENV_VAR}`` credential reference names a variable that is not set."""


class ProviderError(ReconcilerError):
    """A target answered something the reconciler cannot use."""


class UnsupportedError(ProviderError):
    """The target cannot perform the requested operation."""


class RemoteError(ReconcilerError):
    """The network or the target kept failing after every retry."""


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
