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
) -> None:
    """Check config files: schema, then meaning. Every problem is reported, located."""
    from ..config import load, resolve

    report: list[dict[str, Any]] = []
    failed = False
    for file in files or [Path("audiences.yaml")]:
        try:
            config = load(file)
            resolve(config)  # the data files' ids are checked as the members are resolved
        except ConfigError as exc:
            failed = True
            report.append(
                {"file": str(file), "valid": False, "problems": [p.as_dict() for p in exc.problems]}
            )
            if format is ValidateFormat.text:
                for problem in exc.problems:
                    err.print(literal(problem))
                err.print(f"[red]{literal(file)}: {len(exc.problems)} problem(s) found.[/red]")
            continue
        report.append({"file": str(file), "valid": True, "problems": [], "digest": config.digest})
        if format is ValidateFormat.text:
            err.print(
                f"[green]{literal(file)} is valid:[/green] {len(config.segments)} segment(s), "
                f"{len(config.targets)} target(s)."
            )
    if format is ValidateFormat.json:
        problems = [p for r in report for p in r["problems"]]
        write_json({"valid": not failed, "problems": problems, "files": report})
    if failed:
        raise typer.Exit(EXIT_ERROR)


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
