"""The report as documents: one self-contained ``report.html`` (every image embedded as a
``data:image/png;base64`` URI, so it can be mailed or attached to a ticket) and
``report.md`` with the same tables, linking the PNG files beside it.

A report is a list of :class:`Section`; each holds notes, tables and images in order.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Image:
    file: str  # PNG file name in the report directory
    title: str
    caption: str = ""


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    items: list[Table | Image] = field(default_factory=list)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; } code { font-size: 0.9em; }
"""


def _is_number(text: str) -> bool:
    head = text.split(" ", 1)[0].replace(",", "").rstrip("x%")
    try:
        float(head)
    except ValueError:
        return False
    return True


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{html.escape(c)}</td>'
            if _is_number(c)
            else f"<td>{html.escape(c)}</td>"
            for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (
        f"<h3>{html.escape(t.title)}</h3>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + f"\n</tbody>\n</table>\n{note}"
    )


def _html_image(img: Image, directory: Path) -> str:
    data = base64.b64encode((directory / img.file).read_bytes()).decode("ascii")
    caption = html.escape(img.title) + (f": {html.escape(img.caption)}" if img.caption else "")
    return (
        f'<figure id="{html.escape(img.file)}">'
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(img.title)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def write_html(path: Path, title: str, intro: list[str], sections: list[Section]) -> Path:
    """``report.html``: self-contained, images read from ``path``'s directory and embedded."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{html.escape(line)}</p>" for line in intro),
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in sec.notes]
        for item in sec.items:
            parts.append(
                _html_table(item) if isinstance(item, Table) else _html_image(item, path.parent)
            )
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


#: Characters that Markdown (or the HTML it lets through) would read as markup.
_MD_SPECIAL = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]#|~"}
    | {"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " "}
)


def md(text: str) -> str:
    """``text`` as literal Markdown: no tag, heading, emphasis, link or table cell break in a
    tag, a path or a note can change the document (every string of a report is escaped,
    user-supplied or not)."""
    return str(text).translate(_MD_SPECIAL)


def _md_cell(text: str) -> str:
    return md(text)


def write_markdown(path: Path, title: str, intro: list[str], sections: list[Section]) -> Path:
    """``report.md``: the same tables; images linked by file name (they sit beside it)."""
    out = [f"# {md(title)}", "", *[md(line) + "\n" for line in intro]]
    for sec in sections:
        out += [f"## {md(sec.title)}", ""]
        out += [md(n) + "\n" for n in sec.notes]
        for item in sec.items:
            if isinstance(item, Table):
                out += [f"### {md(item.title)}", ""]
                out.append("| " + " | ".join(_md_cell(h) for h in item.header) + " |")
                out.append("|" + "---|" * len(item.header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in item.rows]
                out.append("")
                if item.note:
                    out += [md(item.note), ""]
            else:
                caption = f" {md(item.caption)}" if item.caption else ""
                out += [
                    f"![{md(item.title)}]({item.file})",
                    "",
                    f"*{md(item.title)}.*{caption}",
                    "",
                ]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
