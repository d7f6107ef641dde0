"""The loaded configuration: frozen values, with the location of every node kept for messages."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ..exceptions import SecretError
from ..plan import Guard, Guards, Safety
from ..rules import Rule
from ._locations import Locations, NodePath
from ._secrets import read_secret

__all__ = [
    "Config",
    "CustomerSource",
    "Guard",
    "MemberFile",
    "Members",
    "Reason",
    "RemovedConfig",
    "Safety",
    "SegmentConfig",
    "Selection",
    "SnowflakeSettings",
    "SourceRule",
    "SparkSettings",
    "TargetConfig",
]


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One named target; ``credentials`` maps a credential field to an ENV VAR NAME, not a value
    (or to ``file:PATH`` for a ``${file:PATH}`` reference, whose value was read at load)."""

    name: str
    type: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str]
    prune: bool = False
    prune_prefix: str | None = None
    safety: Safety = field(default_factory=Safety)
    #: the values of the ``${file:PATH}`` credentials, by field (never shown: not in the repr)
    file_secrets: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def credential(self, name: str, environ: Mapping[str, str] | None = None) -> str:
        """The value of credential ``name``, read from its environment variable (or from its
        file, when the config was loaded).

        Raises :class:`SecretError` naming the variable (never a value) when it is unset or empty,
        and :class:`KeyError` when this target has no such credential field.
        """
        var = self.credentials[name]
        if name in self.file_secrets:
            return self.file_secrets[name]
        return read_secret(
            var, os.environ if environ is None else environ, what=f"{name} of target {self.name}"
        )

    def check_credentials(self, environ: Mapping[str, str] | None = None) -> None:
        """Raise :class:`SecretError` listing every unset credential variable of this target."""
        env = os.environ if environ is None else environ
        missing = [
            var
            for name, var in self.credentials.items()
            if name not in self.file_secrets and not env.get(var)
        ]
        if missing:
            raise SecretError(
                f"target {self.name}: environment variable(s) not set: {', '.join(missing)}"
            )


@dataclass(frozen=True, slots=True)
class SparkSettings:
    """The one Spark session of a config: its master and settings."""

    #: ``local[*]``, ``local[N]``, ``sc://host:port`` (Spark Connect) or ``spark://host:port``
    master: str = "local[*]"
    conf: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: seconds a remote master may take to accept a connection and answer (validation)
    timeout: float = 10.0
    #: where the snapshot of last-applied memberships is kept for Spark to diff against (an
    #: absolute local folder or a URI such as ``s3://bucket/prefix``); None: Spark reads the
    #: state store's own file (local masters only)
    snapshot: str | None = None

    @property
    def remote(self) -> bool:
        return not self.master.startswith("local")


@dataclass(frozen=True, slots=True)
class SnowflakeSettings:
    """The one Snowflake connection of a config, and the schema the reconciler owns there."""

    account: str
    user: str
    #: the credential as written in the YAML (a reference such as ``${SNOWFLAKE_PASSWORD}``)
    password: str
    warehouse: str | None = None
    database: str | None = None
    schema: str | None = None
    role: str | None = None
    #: the schema (``db.schema`` or a name in ``database``) where the reconciler keeps each
    #: target's last-applied snapshot as a table of its own (created on first use)
    snapshot_schema: str = "RECONCILER"
    #: ``https://host[:port]`` when the account is not reached at its default address
    url: str | None = None
    #: seconds to log in, and for each request to answer
    timeout: float = 30.0

    def connect_args(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The keyword arguments of ``snowflake.connector.connect``, the password read from its
        reference (raises :class:`SecretError` naming the reference, never a value)."""
        from urllib.parse import urlsplit

        from ._secrets import env_var, read_secret_file, secret_file

        env = os.environ if environ is None else environ
        path = secret_file(self.password)
        password = (
            read_secret(env_var(self.password), env, what="snowflake.password")
            if path is None
            else read_secret_file(Path(path), path)
        )
        args: dict[str, Any] = {"account": self.account, "user": self.user, "password": password}
        for key in ("warehouse", "database", "schema", "role"):
            value = getattr(self, key)
            if value is not None:
                args[key] = value
        if self.url is not None:
            parts = urlsplit(self.url)
            args["host"] = parts.hostname
            args["protocol"] = parts.scheme
            args["port"] = parts.port or (443 if parts.scheme == "https" else 80)
        return args


@dataclass(frozen=True, slots=True)
class CustomerSource:
    """A table of customers with an id column and attributes: a file (CSV, JSON lines or
    Parquet) read by DuckDB, a path or table read by Spark (``engine == "spark"``), or a
    table of Snowflake (``engine == "snowflake"``)."""

    name: str
    #: exactly one of ``path`` and ``table`` is set (a table needs the spark or snowflake engine)
    path: Path | None
    format: Literal["csv", "jsonl", "parquet"] | None
    id_column: str
    #: column name → DuckDB type name, as DESCRIBE reports it (Spark types mapped to these)
    columns: Mapping[str, str]
    node: NodePath
    engine: Literal["duckdb", "spark", "snowflake"] = "duckdb"
    table: str | None = None
    #: a path given as a URI (``s3a://…``): read by Spark where it runs, never by this process
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class MemberFile:
    """A file of customer ids: one per line (``column`` None) or a CSV column."""

    path: Path
    column: str | None
    node: NodePath
    #: as written in the YAML (relative), for messages
    display: str


@dataclass(frozen=True, slots=True)
class SourceRule:
    """A membership rule bound to the customer source it is evaluated over."""

    source: str
    rule: Rule
    node: NodePath


@dataclass(frozen=True, slots=True)
class Selection:
    """Customers chosen by inline ids, files and a rule (their union)."""

    ids: tuple[str, ...] = ()
    files: tuple[MemberFile, ...] = ()
    rule: SourceRule | None = None
    node: NodePath = ()

    @property
    def empty(self) -> bool:
        return not self.ids and not self.files and self.rule is None


@dataclass(frozen=True, slots=True)
class Members:
    """``include`` minus ``exclude``."""

    include: Selection = field(default_factory=Selection)
    exclude: Selection = field(default_factory=Selection)


@dataclass(frozen=True, slots=True)
class SegmentConfig:
    """One declared segment."""

    id: str
    name: str
    description: str
    targets: tuple[str, ...]
    access: frozenset[str] | None
    prevent_destroy: bool
    members: Members
    line: int
    column: int
    index: int = 0
    #: the guards this segment sets itself (``guards:``), over its targets' defaults
    guards: Mapping[str, float | int | None] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def node(self) -> NodePath:
        return ("segments", self.index)


@dataclass(frozen=True, slots=True)
class RemovedConfig:
    """A segment no longer declared: deleted (``destroy``) or forgotten without deleting."""

    id: str
    destroy: bool
    targets: tuple[str, ...]
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a customer is (or, with ``excluded``, is not) in a segment."""

    segment_id: str
    targets: tuple[str, ...]
    via: Literal["ids", "file", "rule"]
    detail: str
    location: tuple[int, int]
    excluded: bool = False

    def __str__(self) -> str:
        verb = "excluded from" if self.excluded else "in"
        return (
            f"{verb} {self.segment_id} via {self.via} ({self.detail}) "
            f"at line {self.location[0]}, column {self.location[1]}"
        )


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration; its paths are absolute (resolved against the YAML's folder)."""

    path: Path
    #: the digest (see :attr:`digest`), being computed in the background
    digest_future: Future[str] = field(repr=False, compare=False)
    version: int
    targets: Mapping[str, TargetConfig]
    access_lists: Mapping[str, frozenset[str]]
    customer_sources: Mapping[str, CustomerSource]
    segments: tuple[SegmentConfig, ...]
    removed: tuple[RemovedConfig, ...]
    locations: Locations = field(default_factory=Locations, repr=False, compare=False)
    #: the Spark session of the ``engine: spark`` sources (None when there are none)
    spark: SparkSettings | None = None
    #: the Snowflake connection of the ``engine: snowflake`` sources (None when there are none)
    snowflake: SnowflakeSettings | None = None
    #: the environment it was loaded in (None: the config declares none)
    environment: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the YAML and of the SHA-256 of every file it references (sources,
        member files): a saved plan is refused when it moved. Hashing a large source takes a
        while (40 ms for a million customers), so each file is hashed beside the checks, as
        soon as they find it (see :mod:`reconciler.config._digest`)."""
        return self.digest_future.result()

    def location(self, path: NodePath) -> tuple[int, int]:
        """1-based ``(line, column)`` of the node at ``path`` (or its nearest located parent)."""
        return self.locations.of(path)

    def guards(self, target: str) -> Guards:
        """What target ``target``'s plan is judged by: its ``safety:``, and each of its
        segments' guards (the target's ``safety.guards`` with the segment's own ``guards:``)."""
        safety = self.targets[target].safety
        mine = [s for s in self.segments if target in s.targets]
        line, _ = self.locations.key(("targets", target))
        return Guards(
            safety,
            MappingProxyType({s.id: safety.guards.merged(s.guards) for s in mine}),
            MappingProxyType({s.id: f"{self.path.name}:{s.line}" for s in mine}),
            f"{self.path.name}:{line}",
            frozenset(s.id for s in mine if "max_removed_share" in s.guards),
        )

    def segment(self, segment_id: str) -> SegmentConfig:
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise KeyError(segment_id)
