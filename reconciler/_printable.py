"""Strings from elsewhere (a platform, a config, an error) made safe to print on a terminal."""

from __future__ import annotations

import re

from rich.markup import escape

__all__ = ["literal", "printable"]

#: C0 and C1 controls, DEL, and the bidirectional overrides and isolates that reorder what a
#: terminal or a browser shows ("Trojan Source")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as its escape (``\\x1b``, ``\\n``): a
    name from a platform or a config cannot recolour the terminal, move the cursor, end a line
    or reorder what follows. Everything else is kept as it is."""
    return _CONTROL.sub(lambda m: _escaped(m.group()), text)


def literal(text: object) -> str:
    """``text`` shown as it is inside Rich markup: control characters escaped, and markup
    (``[bold]``) taken literally (a console prints emoji codes literally when built with
    ``emoji=False``, as the CLI's are)."""
    return escape(printable(str(text)))
