"""MkDocs hook: ``\\|`` inside a code span in a table row renders as ``|``.

GitHub needs a pipe inside a table cell escaped, even in a code span (``--tcp cubic\\|dctcp``),
and the source pages are written for it; Python-Markdown's tables extension already keeps a
pipe inside backticks in its cell, but prints the backslash. So on the site, and only in the
code spans of table rows, ``\\|`` becomes ``|``.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"`[^`\n]*`")


def unescape_table_pipes(markdown: str) -> str:
    """``markdown`` with ``\\|`` turned into ``|`` in the code spans of table rows."""
    lines = []
    fenced = False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            line = _CODE.sub(lambda m: m.group(0).replace("\\|", "|"), line)
        lines.append(line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return unescape_table_pipes(markdown)
