"""Logging: one logger tree under ``reconciler``, configured only by the CLI.

Every module logs through a child of the ``reconciler`` logger (``reconciler.http``,
``reconciler.apply``, ``reconciler.statestore``, ``reconciler.engine``), one line per step:
a request (DEBUG), a retry with its status and wait, a rate-limit wait, a phase's start and
end, a plan's read and diff with counts and durations. The library itself installs no handler
but a :class:`logging.NullHandler` (an application embedding it decides where its records go);
:func:`configure` is what the CLI's ``-v/--verbose`` calls.

Each event also carries structured fields (``extra=fields(event=..., target=..., ...)``): the
text format shows the message alone, the JSON format one object a line with the message and
every field (``event``: ``request``, ``retry``, ``gave_up``, ``rate_limit``, ``batch``,
``phase_start``, ``phase_end``, ``run_start``, ``run_end``, ``read``, ``diff``...).

Messages never carry a secret: the HTTP client builds each of its lines and passes it through
its redaction first (its fields too), and the other modules log names, counts and durations
only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal, TextIO

__all__ = ["LEVELS", "ROOT", "configure", "fields", "logger"]

ROOT = "reconciler"

logging.getLogger(ROOT).addHandler(logging.NullHandler())

#: verbosity (the count of ``-v``) to level: WARNING by default, INFO, then DEBUG
_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
#: the names a level may be given by (``RECONCILE_LOG_LEVEL``)
LEVELS = {
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

#: the attributes every LogRecord has; the others are an event's fields
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def logger(name: str) -> logging.Logger:
    """The child logger ``reconciler.<name>``."""
    return logging.getLogger(f"{ROOT}.{name}")


def fields(event: str, **values: object) -> dict[str, object]:
    """The ``extra`` of a log call: the event's name and its fields (JSON values)."""
    return {"event": event, **values}


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, milliseconds), level, logger, message, then the
    event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        body: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in body:
                body[key] = value
        return json.dumps(body, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (told apart so a second call replaces it).
    It writes to the ``sys.stderr`` of the moment, so a progress display that redirects
    stderr prints the lines above its bars."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(
    verbosity: int, fmt: Literal["text", "json"] | str = "text", level: int | None = None
) -> None:
    """Send the ``reconciler`` records to stderr: WARNING and above by default, INFO with
    ``verbosity`` 1 (``-v``), DEBUG with 2 or more (``-vv``); ``level`` (a level by name,
    :data:`LEVELS`) when no ``-v`` is given. ``fmt``: ``text`` (one plain line each) or
    ``json`` (one JSON object each). Calling it again replaces the handler."""
    root = logging.getLogger(ROOT)
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if verbosity > 0 or level is None:
        level = _LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))]
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
