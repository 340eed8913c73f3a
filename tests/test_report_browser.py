"""``report.html`` in a real browser (headless Chromium): the page loads without errors and
shows every image. Skips, saying why, where no Chromium is installed (Debian: chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from dist_logreg.report.build import build
from tests.fake_runs import write_bench, write_train_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

#: Put first in <head>: records every error (scripts, and resources such as images, which
#: report theirs in the capture phase), then, once loaded, what each image shows.
PROBE = """<script>
window.__errors = [];
addEventListener("error", e => __errors.push(String(e.message || (e.target && e.target.src)
  || e.type).slice(0, 200)), true);
addEventListener("load", () => {
  const images = Array.from(document.images).map(i => ({
    alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
    shown: i.getBoundingClientRect().width}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: __errors, images: images,
    tables: document.querySelectorAll("table").length});
  document.body.appendChild(out);
});
</script>"""


def browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@pytest.mark.skipif(browser() is None, reason="no headless Chromium (apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path):
    run = write_train_run(tmp_path / "run", tag="fabric")
    bench = write_bench(tmp_path / "b.json", tag="b")
    out = tmp_path / "rep"
    files = build([run, bench], out)
    pngs = sorted(f.name for f in files if f.suffix == ".png")
    page = (out / "report.html").read_text()
    probe = out / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    result = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the page did not finish loading: {result.stderr[-2000:]}"
    seen = json.loads(
        found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert seen["errors"] == []
    assert len(seen["images"]) == len(pngs) == 10
    for img in seen["images"]:
        assert img["complete"] and img["width"] >= 300 and img["height"] >= 200, img
        assert img["shown"] > 100, img  # laid out on the page, not collapsed
    assert seen["tables"] >= 4
