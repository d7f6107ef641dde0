"""Faithful local simulations of the Epsilon Retail Media and Talon.One APIs.

One ASGI app served by uvicorn on 127.0.0.1 with three route groups: ``/epsilon``,
``/talonone`` (CDP + Integration API) and ``/talonone-mgmt`` (Management API), plus inspection
routes under ``/_sandbox/``. State lives in SQLite.

One module per simulated platform (its tables, routes, authentication and error shape:
``_epsilon``; ``_talonone`` with its tables in ``_talonone_tables``) over a small shared core:
``_proto`` (HTTP values), ``_db`` (the SQLite file), ``_store`` (the platforms' tables joined),
``_routing`` (route matching, the rate limit), ``_app`` (the request log, faults, inspection),
``_server`` (uvicorn).
"""

from __future__ import annotations

from reconciler.sandbox._app import Credentials, SandboxApp
from reconciler.sandbox._epsilon import (
    EPSILON_API_KEY,
    EPSILON_BEARER_TOKEN,
    EPSILON_RETAILER_TEAM_ID,
)
from reconciler.sandbox._faults import (
    FAULT_KINDS,
    FaultRule,
    format_fault_spec,
    parse_fault_spec,
)
from reconciler.sandbox._server import (
    RATE_LIMIT_VAR,
    Endpoints,
    Sandbox,
    SandboxEndpoints,
    build_app,
    rate_limit_from_env,
    seed_state,
    serve,
)
from reconciler.sandbox._talonone import TALONONE_API_KEY, TALONONE_MANAGEMENT_KEY
from reconciler.sandbox._talonone_tables import TALONONE_ACCOUNT_ID

__all__ = [
    "EPSILON_API_KEY",
    "EPSILON_BEARER_TOKEN",
    "EPSILON_RETAILER_TEAM_ID",
    "FAULT_KINDS",
    "RATE_LIMIT_VAR",
    "TALONONE_ACCOUNT_ID",
    "TALONONE_API_KEY",
    "TALONONE_MANAGEMENT_KEY",
    "Credentials",
    "Endpoints",
    "FaultRule",
    "Sandbox",
    "SandboxApp",
    "SandboxEndpoints",
    "build_app",
    "format_fault_spec",
    "parse_fault_spec",
    "rate_limit_from_env",
    "seed_state",
    "serve",
]
