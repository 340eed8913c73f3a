"""Checks shared by the report tests: a PNG is real and not blank, the HTML embeds every
image and every table row of the report."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image

from dist_logreg.report.document import md as md_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path) -> None:
    """A valid PNG of sensible size whose pixels vary (not a blank canvas)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name}: not a PNG"
    assert 5_000 < len(data) < 1_000_000, f"{path.name}: {len(data)} bytes"
    with Image.open(path) as im:
        im.verify()  # checksums of every chunk
    with Image.open(path) as im:
        assert 300 <= im.width <= 3000 and 200 <= im.height <= 3000, (path.name, im.size)
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    # A blank canvas has variance 0; axes alone (thin black lines on white) stay under ~200.
    assert grey.var() > 50, f"{path.name}: pixel variance {grey.var():.1f}: blank?"
    assert np.unique(grey).size > 16, f"{path.name}: too few grey levels"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def check_report(out: Path, expected_images: set[str]) -> dict:
    """Every expected image written and valid; the HTML embeds them all (byte for byte) and
    holds every table row of report.json; report.md too. Returns report.json."""
    numbers = json.loads((out / "report.json").read_text())
    pngs = {p.name for p in out.glob("*.png")}
    assert expected_images <= pngs, f"missing: {expected_images - pngs}"
    assert set(numbers["images"]) == pngs
    for name in pngs:
        check_png(out / name)
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    embedded = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        embedded.append(base64.b64decode(src.split(",", 1)[1]))
    assert sorted(embedded) == sorted((out / n).read_bytes() for n in pngs)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert numbers["tables"], "no table in the report"
    for table in numbers["tables"]:
        assert table["header"] in page.rows, table["title"]
        for row in table["rows"]:
            assert row in page.rows, f"{table['title']}: row {row} not in report.html"
            assert "| " + " | ".join(md_text(c) for c in row) + " |" in md
    for name in pngs:
        assert f"]({name})" in md
    return numbers
