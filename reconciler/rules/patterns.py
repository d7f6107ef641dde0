"""The portable subset of regular expressions for ``matches``, and its spelling per engine.

``matches`` means "the pattern is found anywhere in the value" on every engine. The engines do
not agree on what a pattern means: DuckDB and BigQuery use RE2, Spark uses ``java.util.regex``,
Snowflake a POSIX ERE with Perl extensions. So a pattern is first checked against a subset whose
meaning is the same everywhere, then re-spelled for each flavour:

accepted
    literal characters; ``\\`` + a metacharacter (``. ^ $ * + ? ( ) [ ] { } | \\ / -``);
    ``\\t \\n \\r \\f``; ``.`` (any character but a newline); ``^`` and ``$`` (start and end of
    the value); groups ``( )`` and ``(?: )``; ``|``; ``* + ? {n} {n,} {n,m}`` (m ≤ 1000), lazy
    forms too (``*?``: whether a match exists does not depend on laziness); classes ``[...]`` and
    ``[^...]`` with characters, ranges and ``\\d \\w \\s``; ``\\d \\D \\w \\W \\s \\S`` (ASCII).
refused, with the position
    lookaround and lookbehind, backreferences, named groups, inline flags (``(?i)``), atomic
    groups, possessive quantifiers (``a*+``), ``\\A \\z \\Z \\b \\B \\G \\Q..\\E \\p{..}``, hex,
    octal and unicode escapes, POSIX classes (``[[:alpha:]]``), class unions and intersections,
    a ``{`` that is not a quantifier, and a quantifier with nothing to repeat.

Re-spelling: Java's ``.`` also stops at ``\\r`` and ``\\u2028`` and its ``$`` matches before a
final line break, so Spark gets ``[^\\n]`` and ``\\z``; ``\\s`` differs on vertical tab between
RE2 and Java, so every shorthand becomes an explicit ASCII class; ``(?:`` is not POSIX, so it
becomes a plain group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..exceptions import PatternError

__all__ = ["FLAVORS", "Flavor", "check_pattern", "render_pattern"]

Flavor = Literal["re2", "java", "posix"]
FLAVORS: tuple[Flavor, ...] = ("re2", "java", "posix")

_META = frozenset(".^$*+?()[]{}|\\")
_ESCAPED = _META | {"/", "-"}
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_DIGIT = (("0", "9"),)
_WORD = (("0", "9"), ("A", "Z"), ("a", "z"), ("_", "_"))
_SPACE = (("\t", "\t"), ("\n", "\n"), ("\f", "\f"), ("\r", "\r"), (" ", " "))
_SHORTHANDS = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
_MAX_REPEAT = 1000

_REFUSED_ESCAPES = {
    "A": "\\A (use ^)",
    "z": "\\z (use $)",
    "Z": "\\Z (its meaning differs between engines; use $)",
    "b": "word boundaries (\\b)",
    "B": "word boundaries (\\B)",
    "G": "\\G",
    "Q": "quoting with \\Q...\\E (escape each character)",
    "E": "\\E",
    "p": "unicode classes (\\p{...})",
    "P": "unicode classes (\\P{...})",
    "k": "named backreferences",
    "x": "hex escapes (write the character)",
    "u": "unicode escapes (write the character)",
    "0": "octal escapes",
    "c": "control escapes",
    "h": "\\h",
    "H": "\\H",
    "v": "\\v",
    "V": "\\V",
    "R": "\\R",
    "X": "\\X",
    "C": "\\C",
}


Range = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["lit", "any", "bol", "eol", "class", "open", "close", "alt", "quant"]
    text: str = ""
    negated: bool = False
    ranges: tuple[Range, ...] = ()


def _class_body(pattern: str, i: int) -> tuple[_Tok, int]:
    """Parse ``[...]`` starting after ``[``; return the token and the index after ``]``."""
    start = i - 1
    negated = pattern.startswith("^", i)
    if negated:
        i += 1
    ranges: list[Range] = []
    n = len(pattern)

    def item(j: int) -> tuple[tuple[Range, ...] | str, int]:
        ch = pattern[j]
        if ch == "\\":
            if j + 1 >= n:
                raise PatternError(j, "a pattern cannot end with \\")
            nxt = pattern[j + 1]
            if nxt in _SHORTHANDS:
                return _SHORTHANDS[nxt], j + 2
            if nxt in ("D", "W", "S"):
                raise PatternError(j, f"\\{nxt} inside [...] is not portable")
            if nxt in _CONTROL:
                return _CONTROL[nxt], j + 2
            if nxt in _ESCAPED:
                return nxt, j + 2
            raise PatternError(j, f"the escape \\{nxt} is not portable")
        if ch == "[":
            what = "POSIX classes ([:alpha:])" if pattern.startswith("[:", j) else "a nested ["
            raise PatternError(j, f"{what} inside [...] is not portable; escape [ as \\[")
        if ch == "&" and pattern.startswith("&&", j):
            raise PatternError(j, "class intersection (&&) is not portable")
        return ch, j + 1

    if i < n and pattern[i] == "]":
        raise PatternError(i, "a ] first in a class is not portable; escape it as \\]")
    while True:
        if i >= n:
            raise PatternError(start, "unterminated character class [")
        if pattern[i] == "]":
            break
        got, i = item(i)
        if isinstance(got, tuple):
            ranges.extend(got)
            continue
        lo = got
        if i + 1 < n and pattern[i] == "-" and pattern[i + 1] != "]":
            hi_got, j = item(i + 1)
            if isinstance(hi_got, tuple):
                raise PatternError(i, "a range cannot end with a shorthand class")
            if hi_got < lo:
                raise PatternError(i, f"range {lo}-{hi_got} is out of order")
            ranges.append((lo, hi_got))
            i = j
        else:
            ranges.append((lo, lo))
    if not ranges:
        raise PatternError(start, "an empty class [] is not portable")
    return _Tok("class", negated=negated, ranges=tuple(ranges)), i + 1


def _quantifier(pattern: str, i: int) -> tuple[str, int] | None:
    """``{n}``, ``{n,}`` or ``{n,m}`` at ``i``: its text and the index after it."""
    end = pattern.find("}", i)
    if end < 0:
        return None
    body = pattern[i + 1 : end]
    lo, sep, hi = body.partition(",")
    if not lo.isdigit() or (hi and not hi.isdigit()) or (not sep and hi):
        return None
    if int(lo) > _MAX_REPEAT or (hi and int(hi) > _MAX_REPEAT):
        raise PatternError(i, f"a repeat count above {_MAX_REPEAT} is not portable")
    if hi and int(hi) < int(lo):
        raise PatternError(i, f"repeat {{{body}}} is out of order")
    return "{" + body + "}", end + 1


def _tokens(pattern: str) -> list[_Tok]:
    out: list[_Tok] = []
    depth = 0
    opens: list[int] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch in "*+?{":
            if ch == "{":
                found = _quantifier(pattern, i)
                if found is None:
                    raise PatternError(i, "a { that is not a repeat count; escape it as \\{")
                text, j = found
            else:
                text, j = ch, i + 1
            if not out or out[-1].kind in ("open", "alt", "bol", "quant"):
                what = "another quantifier" if out and out[-1].kind == "quant" else "nothing"
                raise PatternError(i, f"quantifier {text} follows {what}")
            if j < n and pattern[j] == "+":
                raise PatternError(j, "possessive quantifiers (*+, ++, ?+) are not portable")
            if j < n and pattern[j] == "?":
                j += 1  # lazy: whether a match exists does not depend on it
            out.append(_Tok("quant", text))
            i = j
            continue
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError(i, "a pattern cannot end with \\")
            nxt = pattern[i + 1]
            if nxt in _ESCAPED:
                out.append(_Tok("lit", nxt))
            elif nxt in _CONTROL:
                out.append(_Tok("lit", _CONTROL[nxt]))
            elif nxt in _SHORTHANDS:
                out.append(_Tok("class", ranges=_SHORTHANDS[nxt]))
            elif nxt in ("D", "W", "S"):
                out.append(_Tok("class", negated=True, ranges=_SHORTHANDS[nxt.lower()]))
            elif nxt.isdigit():
                raise PatternError(i, f"backreferences (\\{nxt}) are not portable")
            elif nxt in _REFUSED_ESCAPES:
                raise PatternError(i, f"{_REFUSED_ESCAPES[nxt]} is not portable")
            else:
                raise PatternError(i, f"the escape \\{nxt} is not portable")
            i += 2
            continue
        if ch == "[":
            tok, i = _class_body(pattern, i + 1)
            out.append(tok)
            continue
        if ch == "(":
            if pattern.startswith("(?", i):
                if not pattern.startswith("(?:", i):
                    rest = pattern[i + 2 : i + 4]
                    if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
                        what = "lookaround and lookbehind"
                    elif rest[:1] in ("<", "P", "'"):
                        what = "named groups"
                    elif rest[:1] == ">":
                        what = "atomic groups"
                    else:
                        what = "inline flags such as (?i)"
                    raise PatternError(i, f"{what} are not portable")
                i += 3
            else:
                i += 1
            depth += 1
            opens.append(i)
            out.append(_Tok("open"))
            continue
        if ch == ")":
            if depth == 0:
                raise PatternError(i, "unbalanced )")
            depth -= 1
            opens.pop()
            out.append(_Tok("close"))
        elif ch == "|":
            out.append(_Tok("alt"))
        elif ch == ".":
            out.append(_Tok("any"))
        elif ch == "^":
            out.append(_Tok("bol"))
        elif ch == "$":
            out.append(_Tok("eol"))
        elif ch == "]" or ch == "}":
            raise PatternError(i, f"escape a literal {ch} as \\{ch}")
        else:
            out.append(_Tok("lit", ch))
        i += 1
    if depth:
        raise PatternError(opens[-1] - 1, "unbalanced (")
    return out


def check_pattern(pattern: str) -> None:
    """Raise :class:`PatternError` unless ``pattern`` is in the portable subset."""
    _tokens(pattern)


def _class_char(ch: str, flavor: Flavor) -> str:
    if flavor != "posix" and ch in "\\]^-[":
        return "\\" + ch
    return ch


def _render_class(tok: _Tok, flavor: Flavor) -> str:
    if flavor == "posix":
        # POSIX brackets have no escapes: ] first, - last, ^ anywhere but first
        singles = {lo for lo, hi in tok.ranges if lo == hi}
        spans = [f"{lo}-{hi}" for lo, hi in tok.ranges if lo != hi]
        body = "]" if "]" in singles else ""
        body += "".join(spans)
        body += "".join(sorted(singles - {"]", "-", "^"}))
        body += "^" if "^" in singles else ""
        body += "-" if "-" in singles else ""
        if body.startswith("^") and not tok.negated:  # only ^ and maybe -
            return "[-^]" if body == "^-" else "\\^"
        return "[" + ("^" if tok.negated else "") + body + "]"
    parts = [
        _class_char(lo, flavor)
        if lo == hi
        else _class_char(lo, flavor) + "-" + _class_char(hi, flavor)
        for lo, hi in tok.ranges
    ]
    return "[" + ("^" if tok.negated else "") + "".join(parts) + "]"


def render_pattern(pattern: str, flavor: Flavor) -> str:
    """``pattern`` (portable) spelled so ``flavor`` finds exactly what RE2 finds.

    Raises :class:`PatternError` for a pattern outside the portable subset.
    """
    out: list[str] = []
    for tok in _tokens(pattern):
        if tok.kind == "lit":
            out.append("\\" + tok.text if tok.text in _META else tok.text)
        elif tok.kind == "any":
            out.append("[^\n]" if flavor == "java" else ".")
        elif tok.kind == "bol":
            out.append("^")
        elif tok.kind == "eol":
            out.append("\\z" if flavor == "java" else "$")
        elif tok.kind == "class":
            out.append(_render_class(tok, flavor))
        elif tok.kind == "open":
            out.append("(")
        elif tok.kind == "close":
            out.append(")")
        elif tok.kind == "alt":
            out.append("|")
        else:
            out.append(tok.text)
    return "".join(out)
