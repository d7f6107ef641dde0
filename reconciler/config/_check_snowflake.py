"""The semantic checks of the ``snowflake`` section and of ``engine: snowflake`` sources: one
session is opened per validation, in bounded time, and each source's table described there, so
rules are checked against its real columns.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import PlanError, SecretError
from ._analyser import Analyser, first_line
from ._locations import NodePath
from ._model import SnowflakeSettings
from ._sources import bounded, reach, snowflake_engine

if TYPE_CHECKING:
    from ..engines import SnowflakeEngine, SourceRef

__all__ = ["SnowflakeChecks"]


class SnowflakeChecks(Analyser):
    """The ``snowflake`` section and the sources read there."""

    snowflake_settings: SnowflakeSettings | None = None
    #: the session once opened (closed by :meth:`close`), or why there is none
    _snowflake: tuple[SnowflakeEngine | None, str] | None = None
    uses_snowflake = False

    def snowflake(self, raw: Any) -> None:
        """The top-level ``snowflake`` section (None when absent or invalid)."""
        if raw is None or self.bad(("snowflake",)) or not isinstance(raw, Mapping):
            return
        self.snowflake_settings = SnowflakeSettings(
            account=str(raw["account"]),
            user=str(raw["user"]),
            password=self._password(str(raw["password"])),
            warehouse=raw.get("warehouse"),
            database=raw.get("database"),
            schema=raw.get("schema"),
            role=raw.get("role"),
            snapshot_schema=str(raw.get("snapshot_schema", "RECONCILER")),
            url=raw.get("url"),
            timeout=float(raw.get("timeout", 30.0)),
        )

    def _password(self, reference: str) -> str:
        """The password's reference, a ``${file:PATH}`` one made absolute (relative to the
        config's folder), so it reads the same file wherever the session is opened from."""
        from ._secrets import secret_file

        path = secret_file(reference)
        return reference if path is None else "${file:" + str(self.resolve_path(path)) + "}"

    def snowflake_engine(self) -> tuple[SnowflakeEngine | None, str, NodePath]:
        """The session (opened once per validation), or why there is none and where to say so."""
        settings = self.snowflake_settings
        assert settings is not None
        if self._snowflake is None:
            self._snowflake = self._open(settings)
        engine, why = self._snowflake
        # the credential is the problem when it cannot be read or the login refused it
        password = why.startswith("environment variable") or "password" in why.lower()
        where: NodePath = ("snowflake", "password" if password else "account")
        return engine, why, where

    def _open(self, settings: SnowflakeSettings) -> tuple[SnowflakeEngine | None, str]:
        if importlib.util.find_spec("snowflake.connector") is None:
            return None, (
                "engine snowflake needs snowflake-connector-python: "
                "pip install 'audience-reconciler[warehouse]'"
            )
        try:
            engine = snowflake_engine(settings)
        except SecretError as exc:
            return None, first_line(exc)
        url = settings.url or f"https://{settings.account}.snowflakecomputing.com"
        unreachable = reach(url, settings.timeout)
        if unreachable is not None:  # the connector retries a refused connection for minutes
            return None, f"cannot reach Snowflake account {settings.account}: {unreachable}"
        try:
            bounded(lambda: engine.con, settings.timeout)
        except TimeoutError:
            return None, (
                f"cannot reach Snowflake account {settings.account}: no answer within "
                f"{settings.timeout:g} s"
            )
        except PlanError as exc:
            message = first_line(exc).removeprefix("engine snowflake: ")
            return None, f"Snowflake account {settings.account}: {message}"
        return engine, ""

    def snowflake_source(
        self, name: str, raw: Mapping[str, Any], node: NodePath
    ) -> tuple[dict[str, str], str] | None:
        """The columns of a source's Snowflake table and the table's name (None: reported)."""
        self.uses_snowflake = True
        if self.snowflake_settings is None:
            if not self.bad(("snowflake",)):
                self.report((*node, "engine"), "engine snowflake needs a snowflake section")
            return None
        table = raw.get("table")
        if table is None:
            self.report((*node, "path"), "engine snowflake reads a table: give table, not path")
            return None
        engine, why, where = self.snowflake_engine()
        if engine is None:
            if not any(p.message == why for p in self.problems):
                self.report(where, why)
            return None
        from ..engines import SourceRef

        ref = SourceRef(name, raw["id_column"], {}, table=table)
        timeout = self.snowflake_settings.timeout
        try:
            columns = bounded(lambda: _describe(engine, ref), timeout)
        except TimeoutError:
            self.report(
                (*node, "table"), f"cannot read table {table!r}: no answer within {timeout:g} s"
            )
            return None
        except PlanError as exc:
            message = first_line(exc).removeprefix("engine snowflake: ")
            self.report((*node, "table"), f"cannot read table {table!r} on Snowflake: {message}")
            return None
        return columns, table

    def close(self) -> None:
        if self._snowflake is not None and self._snowflake[0] is not None:
            self._snowflake[0].close()
        super().close()


def _describe(engine: SnowflakeEngine, ref: SourceRef) -> dict[str, str]:
    return engine.describe(ref)
