"""MkDocs hook: the CLI reference page (``cli.md``), rendered from the argparse parsers.

The page holds a placeholder line; at build time it becomes every sub-command's ``--help``
(``dist-logreg``, ``dist-logreg train``, ..., ``dist-logreg cluster up``), as the parsers
print it, so the reference cannot drift from the code. The parsers import without MPI
(``dist_logreg.cli.main`` starts MPI only inside ``main``). The docs tests use
:func:`commands` to check every flag a page mentions.
"""

from __future__ import annotations

import argparse
import importlib
import os

PLACEHOLDER = "<!-- cli-reference -->"
WIDTH = "100"  # columns argparse wraps at: the same page on every machine


def commands() -> dict[str, str]:
    """``{"dist-logreg train": "usage: ...", ...}``: every (sub-)command and its ``--help``."""
    os.environ["COLUMNS"] = WIDTH  # argparse reads the terminal width from here
    parser = importlib.import_module("dist_logreg.cli.main").build_parser()
    out: dict[str, str] = {}
    _walk(parser, "dist-logreg", out)
    return out


def _walk(parser: argparse.ArgumentParser, prog: str, out: dict[str, str]) -> None:
    out[prog] = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.split()[-1] == name:  # aliases share the parser: list it once
                    _walk(sub, f"{prog} {name}", out)


def render() -> str:
    parts = []
    for prog, text in commands().items():
        parts.append(f"## `{prog}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "cli.md":
        return markdown
    if PLACEHOLDER not in markdown:
        raise ValueError(f"cli.md: expected the line {PLACEHOLDER}, got none")
    return markdown.replace(PLACEHOLDER, render())
