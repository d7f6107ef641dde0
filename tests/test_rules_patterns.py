"""The portable regex subset of ``matches``: refused patterns are located, accepted ones are
re-spelled per flavour so RE2 (DuckDB, BigQuery), Java (Spark) and POSIX (Snowflake) agree."""

from __future__ import annotations

import re

import duckdb
import pytest

from reconciler.exceptions import PatternError
from reconciler.rules import check_pattern, render_pattern


@pytest.mark.parametrize(
    ("pattern", "position", "fragment"),
    [
        ("(?<=a)b", 0, "lookbehind"),
        ("a(?=b)", 1, "lookaround"),
        (r"(a)\1", 3, "backreferences"),
        (r"a\Z", 1, r"\Z"),
        ("a*+", 2, "possessive"),
        ("(?i)abc", 0, "inline flags"),
        ("(?P<x>a)", 0, "named groups"),
        ("[[:alpha:]]", 1, "POSIX classes"),
        ("a{", 1, "repeat count"),
        ("*a", 0, "follows nothing"),
        ("[a&&b]", 2, "intersection"),
        (r"\bfoo", 0, "word boundaries"),
        (r"\p{L}", 0, "unicode classes"),
        ("(a", 0, "unbalanced ("),
        ("a)", 1, "unbalanced )"),
        ("a{5,2}", 1, "out of order"),
        ("a{1001}", 1, "above 1000"),
    ],
)
def test_refused_patterns_are_located(pattern: str, position: int, fragment: str) -> None:
    with pytest.raises(PatternError) as info:
        check_pattern(pattern)
    assert info.value.position == position
    assert fragment in str(info.value)


_VALUES = ["abc", "xabcx", "ABC", "a\nb", "a\rb", "ab\n", "a1", "a\x0bb", "a b", "]-^", "x.y", ""]


@pytest.mark.parametrize(
    "pattern",
    [
        "^a",
        "c$",
        "b$",
        "a.b",
        r"a\sb",
        r"\d",
        r"\w+$",
        "[^a-z]",
        r"[\]\-^]",
        r"x\.y",
        "(?:ab|z)+?c",
    ],
)
def test_re2_and_java_spellings_find_the_same(pattern: str) -> None:
    con = duckdb.connect()
    re2 = render_pattern(pattern, "re2")
    java = render_pattern(pattern, "java")
    for value in _VALUES:
        expected = con.execute("SELECT regexp_matches(?, ?)", [value, re2]).fetchone()
        # Python's re stands in for Java here for the constructs the Java spelling uses
        found = re.search(java.replace("\\z", "\\Z"), value) is not None
        assert expected is not None
        assert found == expected[0], (pattern, value)


def test_java_gets_explicit_dot_and_end() -> None:
    assert render_pattern("a.b$", "java") == "a[^\n]b\\z"
    assert render_pattern("a.b$", "re2") == "a.b$"
    assert render_pattern(r"\d+", "posix") == "[0-9]+"
    assert render_pattern("(?:a)", "posix") == "(a)"
    assert render_pattern(r"[\]a\-]", "posix") == "[]a-]"
