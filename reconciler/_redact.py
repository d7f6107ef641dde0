"""Redaction: every credential of a client replaced with ``***`` in what can reach a message.

The HTTP client passes every text or parsed body of an answer through its :class:`Redactor`
before a message is built, and quotes an answer only as a short excerpt (:func:`clip`).
"""

from __future__ import annotations

import json as jsonlib
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

__all__ = ["EXCERPT", "MIN_SECRET", "Redactor", "clip"]

#: the most characters of an answer a message quotes
EXCERPT = 200
#: secrets at least this long are redacted wherever they occur; shorter ones (which could be
#: part of any word) only where they stand as a whole token
MIN_SECRET = 8


def clip(text: str, limit: int = EXCERPT) -> str:
    """``text`` on one line, at most ``limit`` characters (an excerpt for a message)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Redactor:
    """Replaces every credential in a text with ``***``.

    The rule: a secret of at least :data:`MIN_SECRET` characters is replaced wherever it
    occurs (a long random string never occurs by accident, and it may be glued to other text,
    as in ``Basic<key>``); a shorter one only where it stands as a whole token, between
    characters that are not letters or digits (replacing it inside words would mangle every
    message: a one-letter key would star out that letter everywhere, and a short string inside
    a word tells nothing about the secret). Each secret is matched as sent and in its URL-encoded
    and JSON-escaped forms. Messages quote at most :data:`EXCERPT` characters of an answer.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret, urllib.parse.quote(secret, safe=""), jsonlib.dumps(secret)[1:-1]}
        parts = [
            re.escape(f) if len(f) >= MIN_SECRET else rf"(?<![^\W_]){re.escape(f)}(?![^\W_])"
            for f in sorted(forms, key=len, reverse=True)
        ]
        self._pattern = re.compile("|".join(parts)) if parts else None

    def text(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern else text

    def value(self, value: Any) -> Any:
        """A parsed JSON value with every string in it (keys too) redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value
