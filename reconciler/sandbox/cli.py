"""``reconcile sandbox``: serve, seed and reset the local platform simulations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from reconciler.exceptions import SandboxError
from reconciler.sandbox._app import Credentials
from reconciler.sandbox._epsilon import EPSILON_RETAILER_TEAM_ID
from reconciler.sandbox._faults import parse_fault_spec
from reconciler.sandbox._server import (
    HOST,
    _bind,
    build_app,
    rate_limit_from_env,
    seed_state,
    serve,
)
from reconciler.sandbox._store import Store

__all__ = ["DEMO_STATE", "app"]

app = typer.Typer(
    help="Local simulations of Epsilon Retail Media and Talon.One. The platforms' state lives "
    "in .reconcile/sandbox/remote.db in the folder of the audiences file (--config, default "
    "audiences.yaml in the current folder): the database `reconcile plan|apply --sandbox FILE` "
    "uses, from whatever folder either runs.",
    no_args_is_help=True,
    rich_markup_mode=None,  # as the reconcile command's help: plain text
)

DEMO_STATE: dict[str, Any] = {
    "epsilon": {
        "segments": [
            {
                "segmentId": "general-segment-1",
                "name": "High Spending Shoppers",
                "description": "Shoppers with an average weekly shop in the top 15%.",
                "retailerTeamId": EPSILON_RETAILER_TEAM_ID,
            },
            {
                "segmentId": "general-segment-3",
                "name": "Recurring Shoppers",
                "description": "Shoppers that shop every week on average.",
                "retailerTeamId": EPSILON_RETAILER_TEAM_ID,
            },
        ],
        "customers": [
            {"id": "cust_12345", "segmentIds": ["general-segment-3"]},
            {"id": "cust_67890", "segmentIds": ["general-segment-3", "general-segment-1"]},
        ],
    },
    "talonone": {
        "audiences": [
            {
                "integrationId": "vip",
                "name": "VIP customers",
                "integration": "sandbox",
                "members": ["cust_12345"],
            },
        ],
    },
}

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="SQLite file of the sandbox state (default: .reconcile/sandbox/remote.db in the "
        "folder of --config, the one --sandbox uses).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="The audiences file whose sandbox this is (only its folder matters; it need not "
        "exist).",
    ),
]

EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        envvar="RECONCILE_ENV",
        help="The environment of --config whose sandbox this is (the one --sandbox --env uses).",
    ),
]


def _db(db: Path | None, config: Path, env: str | None = None) -> Path:
    """``--db``, or the sandbox of ``config`` (in ``env``) by the rule every command shares."""
    from reconciler.runtime import sandbox_paths

    if env and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", env):
        raise SandboxError(f"--env {env!r} is not an environment name")
    path = db if db is not None else sandbox_paths(config, env)[0]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(f"cannot create {path.parent}: {exc.strerror}") from exc
    return path


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8765,
    db: DbOption = None,
    config: ConfigOption = Path("audiences.yaml"),
    faults: Annotated[
        str | None,
        typer.Option(
            help="Fault rules, e.g. 'seed=7,rate=0.2,kinds=429+500,route=POST /epsilon/*'."
        ),
    ] = None,
    talonone_rate_limit: Annotated[
        float | None,
        typer.Option(
            help="Management API requests per second per endpoint (0 = unlimited); default: "
            "RECONCILE_SANDBOX_TALONONE_RATE_LIMIT, else the platform's 3.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print nothing.")] = False,
    env: EnvOption = None,
) -> None:
    """Serve both platforms until Ctrl-C."""
    try:
        db = _db(db, config, env)
        rules = parse_fault_spec(faults) if faults else ()
        if talonone_rate_limit is None:
            talonone_rate_limit = rate_limit_from_env()
        sandbox_app = build_app(db, faults=rules, talonone_rate_limit=talonone_rate_limit)
        sock = _bind(port)
    except SandboxError as exc:
        raise _fail(exc) from exc
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    if not quiet:
        creds = Credentials()
        typer.echo(f"sandbox state: {db}")
        typer.echo(
            f"Epsilon Retail Media  {url}/epsilon   "
            f"(Bearer {creds.epsilon_bearer_token} / Basic {creds.epsilon_api_key})"
        )
        typer.echo(f"Talon.One CDP + Int.  {url}/talonone  (ApiKey-v1 {creds.talonone_api_key})")
        typer.echo(
            f"Talon.One Management  {url}/talonone-mgmt  "
            f"(ManagementKey-v1 {creds.talonone_management_key})"
        )
        typer.echo(f"inspection            {url}/_sandbox/state, /_sandbox/requests")
        typer.echo("Ctrl-C to stop")
    serve(sandbox_app, sock=sock)


@app.command("seed")
def seed_command(
    file: Annotated[
        Path | None, typer.Argument(help="YAML or JSON state; default: a demo.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = Path("audiences.yaml"),
    env: EnvOption = None,
) -> None:
    """Load a starting remote state (upsert) into the sandbox database."""
    try:
        db = _db(db, config, env)
        if file is None:
            data: Any = DEMO_STATE
        else:
            text = file.read_text(encoding="utf-8")
            data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise SandboxError(f"{file}: the state must be a mapping")
        seed_state(db, data)
    except (OSError, ValueError, yaml.YAMLError, SandboxError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"seeded {db}")


@app.command("reset")
def reset_command(
    db: DbOption = None, config: ConfigOption = Path("audiences.yaml"), env: EnvOption = None
) -> None:
    """Empty the sandbox database."""
    try:
        db = _db(db, config, env)
        store = Store(db)
        store.reset()
        store.close()
    except SandboxError as exc:
        raise _fail(exc) from exc
    typer.echo(f"reset {db}")
