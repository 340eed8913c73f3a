"""Every fenced shell block of every docs page is run or checked (``docs/writing-docs.md``).

- Statically, every block: each ``dist-logreg`` sub-command it starts exists and each flag
  given to it is in that sub-command's ``--help`` (the parsers, as the CLI reference renders
  them); each repository script it starts exists and defines each flag given to it.
- Run, every page: its unmarked blocks in page order, in one scratch directory that looks
  like the repository root, in the shell Getting started sets up. Only the pages of
  ``QUICK`` run in the quick loop; the others' commands take longer and run in the slow group.
- References: no page, docstring or comment names a repository file that does not exist
  (``DESIGN.md``-style), and no page or module mentions a ``--flag`` that no parser, script
  or other tool it names defines.
- Generated parts: every ``<!-- gen: NAME -->`` has its recipe in ``docs/scripts/gen_docs.py``
  and every recipe its marker; every image a page shows exists, is a valid PNG under 200 KB
  and is not blank; ``mkdocs.yml`` lists every page.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.docs_blocks import (
    DOCS,
    NEEDS,
    ROOT,
    blocks,
    flag_in,
    helps,
    invocations,
    is_setup,
    pages,
    shell_blocks,
)
from tests.helpers import BIN

PAGES = pages()
BLOCKS = shell_blocks()
#: Pages whose commands run in the quick loop (a few seconds each here); every other page's
#: commands run in the slow group, so a new page cannot slow the quick loop down.
QUICK = ("README.md", "docs/index.md", "docs/train.md", "docs/data.md", "docs/writing-docs.md")
#: Flags of the other tools the pages and modules name (not ours to define).
OTHER_TOOLS = {
    "--no-binary": "pip",
    "--no-cache-dir": "pip",
    "--scale": "docker-compose",
    "--uts": "unshare",
    "--mpi": "srun",
    "--with-mpi": "pytest-mpi",
    "--check": "ruff format",
    "--strict": "mkdocs",
    "--site-dir": "mkdocs",
    "--n": "mpirun",
    "--np": "mpirun",
    "--forceflush": "iperf3",
    "--bidir": "iperf3",
    "--wait": "sbatch",
    "--ntasks-per-node": "sbatch",
    "--cpus-per-task": "sbatch",
    "--output": "sbatch",
    "--job-name": "sbatch",
    "--nodes": "sbatch",
    "--time": "sbatch",
    "--export": "sbatch",
    "--force": "munged",
    "--socket": "munged",
    "--key-file": "munged",
    "--pid-file": "munged",
    "--log-file": "munged",
    "--seed-file": "munged",
    "--net": "nsenter",
}
SCRIPT_DIRS = ("benchmarks", "launch", "docker", "docs/scripts")
#: Folders whose ``name/x.py`` in a docstring means dist_logreg/name/x.py (old names too).
PACKAGE_DIRS = ("cli", "comm", "collective", "ops", "study", "train", "record", "report", "bench")
IMAGE_LIMIT = 200 * 1024  # bytes


def scripts_text() -> str:
    files = [p for d in SCRIPT_DIRS for p in (ROOT / d).rglob("*") if p.is_file()]
    return "\n".join(p.read_text(errors="replace") for p in files if p.suffix in (".py", ".sh", ""))


def gen_docs():
    if "gen_docs" not in sys.modules:  # dataclasses look their module up there
        spec = importlib.util.spec_from_file_location("gen_docs", DOCS / "scripts/gen_docs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gen_docs"] = module
        spec.loader.exec_module(module)
    return sys.modules["gen_docs"]


# --- statically: commands, flags --------------------------------------------------------
def test_the_pages_have_blocks_of_every_kind():
    assert len(BLOCKS) > 30
    runs = [b for b in BLOCKS if not b.needs]
    assert len(runs) > 10 and {n for b in BLOCKS for n in b.needs} <= set(NEEDS)
    assert {"root", "slow"} <= {n for b in BLOCKS for n in b.needs}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_every_flag_of_a_block_exists(block):
    known = helps()
    for cmd in block.commands():
        for prog, flags in invocations(cmd):
            if prog.startswith("dist-logreg"):
                assert prog in known, f"{block.id}: {prog!r} is not a sub-command ({cmd})"
                text = known[prog]
            else:
                path = ROOT / prog
                assert path.exists(), f"{block.id}: {prog} does not exist ({cmd})"
                text = path.read_text()
            missing = [f for f in flags if not flag_in(f, text)]
            assert not missing, f"{block.id}: {prog} has no {', '.join(missing)} ({cmd})"


def test_the_flag_check_can_fail():
    assert invocations("mpirun -n 2 dist-logreg train --nope 3") == [
        ("dist-logreg train", ["--nope"])
    ]
    assert not flag_in("--nope", helps()["dist-logreg train"])
    assert invocations("dist-logreg scale --ranks 1,2 -- train --steps 5")[1] == (
        "dist-logreg train",
        ["--steps"],
    )
    assert invocations("dist-logreg frobnicate --x")[0][0] not in helps()


def test_every_marker_is_one_we_support():
    for page, text in PAGES.items():
        for m in re.finditer(r"<!-- needs: ([^>]*?) -->", text):
            got = {x.strip() for x in m.group(1).split(",")}
            assert got <= set(NEEDS), f"{page}: {m.group(0)}: expected needs of {NEEDS}"


# --- run: every page's quick blocks ---------------------------------------------------------
def docs_shell() -> dict[str, str]:
    """The environment after Getting started's set-up lines (venv on PATH, its exports)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    for b in blocks("docs/index.md", PAGES["docs/index.md"]):
        for line in b.commands():
            if line.startswith("export "):
                for pair in line.split()[1:]:
                    key, _, value = pair.partition("=")
                    env[key] = value
    return env


#: The packet engine's commands run where its extra is installed (``.[packet]``, as CI does);
#: a ``[test]``-only install checks them as it checks every other block, without running them.
HAVE_NS3 = all(importlib.util.find_spec(m) is not None for m in ("ns", "cppyy"))


def page_commands(page: str) -> list[str]:
    return [
        c
        for b in blocks(page, PAGES[page])
        if b.lang in ("sh", "bash", "shell", "console") and not b.needs
        for c in b.commands()
        if not is_setup(c)
    ]


def page_files(page: str) -> dict[str, str]:
    """Files the page shows (a block whose first line is ``# NAME``), to write first."""
    out = {}
    for b in blocks(page, PAGES[page]):
        m = re.match(r"# ([\w.-]+\.\w+)\n", b.body)
        if m and b.lang not in ("sh", "bash", "shell", "console", "text", ""):
            out[m.group(1)] = b.body[m.end() :]
    return out


RUN_PAGES = [p for p in PAGES if p != "README.md" and page_commands(p)]


def test_the_readme_runs_what_getting_started_runs():
    assert set(page_commands("README.md")) <= set(page_commands("docs/index.md"))


@pytest.mark.e2e
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[] if p in QUICK else [pytest.mark.slow]) for p in RUN_PAGES],
)
def test_a_pages_commands_run_as_written(tmp_path, page):
    gen = gen_docs()
    gen.sandbox(tmp_path)
    for name, body in page_files(page).items():
        (tmp_path / name).write_text(body)
    env = docs_shell()
    for cmd in page_commands(page):
        if "--engine packet" in cmd and not HAVE_NS3:  # the packet extra: CI installs it
            continue
        r = subprocess.run(
            ["bash", "-c", cmd],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
        tail = f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert r.returncode == 0, f"{page}: {cmd}\n{tail}"
        if "supervise" in cmd and "--inject-fault" in cmd:  # recovered from its own fault
            assert "injected fault" in r.stderr and "completed after 1 failure(s)" in r.stdout


# --- references -------------------------------------------------------------------------------
FILE_REF = re.compile(
    r"(?<![\w/.$-])((?:\.ci/|[\w-]+/)*[\w.-]+\.(?:md|py|sh|sbatch|yml|toml))(?![\w/])"
)


def referring_files() -> list[Path]:
    out = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / ".ci/run"]
    for d in (
        "dist_logreg",
        "benchmarks",
        "launch",
        "docker",
        "tests",
        "docs/scripts",
        "docs/hooks",
    ):
        out += [
            p
            for p in (ROOT / d).rglob("*")
            if p.is_file() and p.suffix in (".py", ".sh", ".md", "")
        ]
    return [p for p in out if "__pycache__" not in p.parts and p.name != "test_docs.py"]


def checked(ref: str) -> bool:
    """Whether ``ref`` names a repository file (not an output such as runs/a/summary.json)."""
    if any(c in ref for c in "<*{"):
        return False
    first = ref.split("/")[0]
    if "/" not in ref:
        return ref.endswith(".md")  # DESIGN.md, design.md; bare module names are too vague
    return first in (*SCRIPT_DIRS, "dist_logreg", "tests", "docs", ".ci", *PACKAGE_DIRS)


def test_no_page_or_docstring_names_a_file_that_does_not_exist():
    dangling = []
    for src in referring_files():
        text = src.read_text(errors="replace")
        for ref in sorted(set(FILE_REF.findall(text))):
            here = (ROOT / ref, DOCS / ref, ROOT / "dist_logreg" / ref, src.parent / ref)
            if checked(ref) and not any(p.exists() for p in here):
                dangling.append(f"{src.relative_to(ROOT)}: {ref}")
    assert not dangling, "references to files that do not exist:\n" + "\n".join(dangling)


def test_no_page_or_module_mentions_an_option_no_parser_defines():
    defined = "\n".join(helps().values()) + scripts_text()
    texts = {**PAGES}
    texts |= {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "dist_logreg").rglob("*.py")}
    unknown = []
    for where, text in texts.items():
        for flag in sorted(set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))):
            if flag not in OTHER_TOOLS and not flag_in(flag, defined):
                unknown.append(f"{where}: {flag}")
    assert not unknown, "options that no parser or script defines:\n" + "\n".join(unknown)


def test_the_reference_checks_can_fail():
    assert checked("DESIGN.md") and not (ROOT / "DESIGN.md").exists()
    assert checked("comm/schedule.py") and not checked("runs/a/summary.json")
    assert not flag_in("--no-such-option", "\n".join(helps().values()))


# --- generated outputs and pictures --------------------------------------------------------
def test_every_generated_block_has_its_recipe_and_every_recipe_its_block():
    recipes = gen_docs().RECIPES
    marker = re.compile(r"^<!-- gen: ([\w-]+) -->$", re.M)
    markers = {(page, m) for page, text in PAGES.items() for m in marker.findall(text)}
    assert {m for _, m in markers} <= {r.name for r in recipes}, "markers without a recipe"
    assert {(r.page, r.name) for r in recipes if not r.image} <= markers, "recipes without a block"
    shown = {p.name for _, p in images()}
    assert {f"{r.name}.png" for r in recipes if r.image} <= shown, "images no page shows"


def test_gen_fills_a_block_and_keeps_the_rest():
    fill = gen_docs().fill
    page = "a\n<!-- gen: x -->\n```console\nold\n```\nb\n"
    assert fill(page, "x", "$ new\nout") == "a\n<!-- gen: x -->\n```console\n$ new\nout\n```\nb\n"
    with pytest.raises(ValueError):
        fill(page, "y", "z")


def images() -> list[tuple[str, Path]]:
    out = []
    for page, text in PAGES.items():
        base = ROOT if page == "README.md" else DOCS
        for ref in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
            out.append((page, base / ref))
    return out


def test_the_pages_show_the_reports_plots():
    shown = {p.name for _, p in images()}
    for name in (
        "lateness",
        "step-time",
        "latency-cdf",
        "traffic",
        "bench-busbw",
        "links",
        "flows",
    ):
        assert f"report-{name}.png" in shown


@pytest.mark.parametrize("image", [p for _, p in images()], ids=lambda p: p.name)
def test_every_image_is_a_small_valid_png_that_is_not_blank(image):
    assert image.exists(), f"{image.relative_to(ROOT)} does not exist"
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < IMAGE_LIMIT
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.size > 100 * 100 and pixels.var() > 0, f"{image.name} is blank"


def test_mkdocs_lists_every_page():
    nav = (ROOT / "mkdocs.yml").read_text()
    for p in DOCS.glob("*.md"):
        assert re.search(rf"\b{re.escape(p.name)}\b", nav), f"mkdocs.yml nav lacks {p.name}"


def test_the_cli_reference_renders_every_sub_command_without_mpi():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('r', 'docs/hooks/cli_reference.py')\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "page = m.render()\n"
        "assert 'mpi4py' not in sys.modules, 'rendering the CLI reference loaded mpi4py'\n"
        "print(page)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr
    for prog in helps():
        assert f"## `{prog}`" in r.stdout
    for sub in ("train", "bench", "report", "cluster up", "model fit"):
        assert f"## `dist-logreg {sub}`" in r.stdout
