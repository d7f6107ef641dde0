"""Logging: one logger tree under ``reconciler``, configured only by the CLI.

Every module logs through a child of the ``reconciler`` logger (``reconciler.http``,
``reconciler.apply``, ``reconciler.statestore``, ``reconciler.engine``), one line per step:
a request (DEBUG), a retry with its status and wait, a rate-limit wait, a phase's start and
end, a plan's read and diff with counts and durations. The library itself installs no handler
but a :class:`logging.NullHandler` (an application embedding it decides where its records go);
:func:`configure` is what the CLI's ``-v/--verbose`` calls.

Messages never carry a secret: the HTTP client builds each of its lines and passes it through
its redaction first, and the other modules log names, counts and durations only.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

__all__ = ["ROOT", "configure", "logger"]

ROOT = "reconciler"

logging.getLogger(ROOT).addHandler(logging.NullHandler())

#: verbosity (the count of ``-v``) to level: WARNING by default, INFO, then DEBUG
_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


def logger(name: str) -> logging.Logger:
    """The child logger ``reconciler.<name>``."""
    return logging.getLogger(f"{ROOT}.{name}")


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (told apart so a second call replaces it)."""


def configure(verbosity: int, fmt: Literal["text", "json"] | str = "text") -> None:
    """Send the ``reconciler`` records to stderr: WARNING and above by default, INFO with
    ``verbosity`` 1 (``-v``), DEBUG with 2 or more (``-vv``). ``fmt``: ``text`` (one plain
    line each) or ``json`` (one JSON object each). Calling it again replaces the handler."""
    root = logging.getLogger(ROOT)
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = _LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))]
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
