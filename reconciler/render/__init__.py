"""Renderers of a plan: terminal text, Markdown for a pull-request comment, JSON for tools."""

from __future__ import annotations

from ._json import render_json
from ._markdown import GITHUB_COMMENT_LIMIT, render_markdown
from ._text import render_text, summary_line

__all__ = ["GITHUB_COMMENT_LIMIT", "render_json", "render_markdown", "render_text", "summary_line"]
