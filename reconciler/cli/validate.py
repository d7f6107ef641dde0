"""``reconcile validate`` and ``reconcile schema``: the config language, checked and described."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .._printable import literal
from ..exceptions import ConfigError
from ._common import EXIT_ERROR, ValidateFormat, err, write_json


def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Audiences files.", show_default="audiences.yaml")
    ] = None,
    format: Annotated[
        ValidateFormat, typer.Option("--format", "-f", help="Report format.")
    ] = ValidateFormat.text,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            envvar="RECONCILE_ENV",
            help="Check this environment of each file (default: every one it declares).",
        ),
    ] = None,
) -> None:
    """Check config files: schema, then meaning. Every problem is reported, located."""
    report: list[dict[str, Any]] = []
    failed = False
    for file in files or [Path("audiences.yaml")]:
        for name in [env] if env else _environments(file):
            failed |= not _check(file, name, format, report)
    if format is ValidateFormat.json:
        problems = [p for r in report for p in r["problems"]]
        write_json({"valid": not failed, "problems": problems, "files": report})
    if failed:
        raise typer.Exit(EXIT_ERROR)


def _environments(file: Path) -> list[str | None]:
    """Every environment ``file`` declares (``[None]``: none, or it cannot be read: then the
    load reports why)."""
    from ..config import environments

    try:
        return list(environments(file)) or [None]
    except ConfigError:
        return [None]


def _check(file: Path, env: str | None, format: ValidateFormat, report: list[Any]) -> bool:
    """Validate ``file`` in ``env``, print and add to ``report`` what was found; valid?"""
    from ..config import check_resolvable, load

    label = f"{file} (environment {env})" if env else str(file)
    entry: dict[str, Any] = {"file": str(file)} | ({"environment": env} if env else {})
    try:
        config = load(file, env=env)
        check_resolvable(config)  # the member files, the sources and the ids they give
    except ConfigError as exc:
        report.append(entry | {"valid": False, "problems": [p.as_dict() for p in exc.problems]})
        if format is ValidateFormat.text:
            for problem in exc.problems:
                err.print(literal(problem))
            err.print(f"[red]{literal(label)}: {len(exc.problems)} problem(s) found.[/red]")
        return False
    report.append(entry | {"valid": True, "problems": [], "digest": config.digest})
    if format is ValidateFormat.text:
        err.print(
            f"[green]{literal(label)} is valid:[/green] {len(config.segments)} segment(s), "
            f"{len(config.targets)} target(s)."
        )
    return True


def schema(
    plan: Annotated[bool, typer.Option("--plan", help="Print the plan JSON Schema.")] = False,
) -> None:
    """Print the JSON Schema of the config language (or, with --plan, of JSON plans)."""
    from ..config import schema_text

    if plan:
        text = (Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text()
    else:
        text = schema_text()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
