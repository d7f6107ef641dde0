"""The sandbox's state: the simulated platforms' tables in one SQLite file.

:class:`Store` joins each platform's tables (:mod:`~reconciler.sandbox._epsilon`,
:mod:`~reconciler.sandbox._talonone_tables`) over one connection, and reads or seeds the whole
state at once (the inspection routes).
"""

from __future__ import annotations

from typing import Any, ClassVar

from reconciler.sandbox._db import now_rfc3339
from reconciler.sandbox._epsilon import EpsilonTables
from reconciler.sandbox._talonone_tables import TalonOneTables

__all__ = ["Store"]


class Store(EpsilonTables, TalonOneTables):
    """The state of the sandbox in one SQLite file."""

    SCHEMA: ClassVar[str] = EpsilonTables.SCHEMA + TalonOneTables.SCHEMA
    TABLES: ClassVar[tuple[str, ...]] = EpsilonTables.TABLES + TalonOneTables.TABLES

    def state(self) -> dict[str, Any]:
        """The whole state as plain data, without timestamps (stable for comparisons)."""
        with self.read() as c:
            epsilon = self._eps_state(c)
            talonone = self._t1_state(c)
        return {"epsilon": epsilon, "talonone": talonone}

    def seed(self, data: dict[str, Any], default_team: str) -> None:
        """Upsert a starting state (the shape of :meth:`state`; lists given are replaced)."""
        now = now_rfc3339()
        with self.tx() as c:
            self._eps_seed(c, data.get("epsilon") or {}, default_team)
            self._t1_seed(c, data.get("talonone") or {}, now)
