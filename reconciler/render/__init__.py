"""Renderers of a plan and of a drift report: terminal text, Markdown for a pull-request comment,
JSON for tools."""

from __future__ import annotations

from .._printable import literal
from ._drift import render_drift_markdown, render_drift_text
from ._json import render_json
from ._lines import printable
from ._markdown import GITHUB_COMMENT_LIMIT, md_code, md_text, render_markdown
from ._text import render_text, summary_line

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "literal",
    "md_code",
    "md_text",
    "printable",
    "render_drift_markdown",
    "render_drift_text",
    "render_json",
    "render_markdown",
    "render_text",
    "summary_line",
]
