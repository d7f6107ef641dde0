"""Located problems of a configuration (file, line, field), and its targets picked by name."""

from __future__ import annotations

from collections.abc import Iterable

from ..exceptions import ConfigError, Problem
from ._locations import format_path
from ._model import Config, SegmentConfig

__all__ = ["first_line", "problem", "select_targets", "target_segments"]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def problem(config: Config, path: tuple[str | int, ...], message: str) -> Problem:
    line, col = config.location(path)
    return Problem(str(config.path), line, col, format_path(path), message)


def target_segments(config: Config, target: str) -> list[SegmentConfig]:
    """The segments of target ``target`` (a located :class:`ConfigError` when it is unknown)."""
    (name,) = select_targets(config, [target])
    return [s for s in config.segments if name in s.targets]


def select_targets(config: Config, targets: Iterable[str] | None) -> list[str]:
    if targets is None:
        return list(config.targets)
    names = list(dict.fromkeys(targets))
    unknown = [t for t in names if t not in config.targets]
    if unknown:
        known = ", ".join(config.targets)
        raise ConfigError(
            [problem(config, ("targets",), f"unknown target {t} (known: {known})") for t in unknown]
        )
    return names
