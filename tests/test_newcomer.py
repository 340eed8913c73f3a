"""A newcomer's path (issue 29, section 7): the README's test command needs nothing the test
extra does not install, ``| head`` ends any command quietly, progress lines stay whole in a
log, ``cluster run`` works as root, and the site renders escaped pipes in option tables."""

import importlib.util
import io
import os
import subprocess
import sys
import tomllib

import markdown

from dist_logreg.ops.cluster.jobs import root_env
from dist_logreg.record.progress import status_line
from tests.helpers import ROOT


def test_the_test_extra_installs_everything_the_docs_tests_run():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    # the docs tests run the `mkdocs build` block of docs/writing-docs.md
    assert set(extras["docs"]) <= set(extras["test"])


def _closed_pipe_run(args: list[str]) -> subprocess.CompletedProcess:
    """``dist-logreg ARGS | head -0``: stdout is a pipe whose reader is already gone."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "dist_logreg", *args],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(w)


def test_a_reader_that_went_away_ends_a_command_quietly():
    sim = ["simulate", "--fabric", "flat:hosts=4,rate=10G", "--ranks", "2,4", "--bytes", "1K"]
    for args in (sim, ["--help"], ["model", "predict", "--help"]):
        p = _closed_pipe_run(args)
        assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
        assert p.stderr == "" and p.returncode in (0, 141), (args, p.returncode, p.stderr)
    assert _closed_pipe_run(sim).returncode == 141  # as `yes | head` (128 + SIGPIPE)


def test_progress_lines_are_whole_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("DIST_LOGREG_PROGRESS", raising=False)
    log = io.StringIO()
    for done in (1, 2, 3):
        status_line(log, f"simulate: {done}/3 points", last=done == 3)
    assert log.getvalue() == "".join(f"simulate: {d}/3 points\n" for d in (1, 2, 3))
    monkeypatch.setenv("DIST_LOGREG_PROGRESS", "bar")  # a terminal: redrawn in place
    tty = io.StringIO()
    status_line(tty, "a")
    status_line(tty, "b", last=True)
    assert tty.getvalue() == "\ra\rb\n"


def test_cluster_run_as_root_sets_open_mpis_run_as_root_variables(monkeypatch):
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT", raising=False)
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", raising=False)
    assert root_env(0) == {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    assert root_env(1000) == {}


def _hook():
    spec = importlib.util.spec_from_file_location("h", ROOT / "docs" / "hooks" / "table_pipes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_option_tables_render_escaped_pipes_as_pipes():
    page = "| flag | what |\n|---|---|\n| `--tcp cubic\\|dctcp` | x |\n\n```\na \\| b\n```\n"
    html = markdown.markdown(
        _hook().unescape_table_pipes(page), extensions=["tables", "fenced_code"]
    )
    assert "<code>--tcp cubic|dctcp</code>" in html and "\\|dctcp" not in html
    assert "a \\| b" in html  # a code block is left as written
    assert "\\|" in (ROOT / "docs" / "packet.md").read_text()  # the source stays GitHub's


def test_the_site_runs_the_table_hook():
    assert "docs/hooks/table_pipes.py" in (ROOT / "mkdocs.yml").read_text()


def test_a_single_run_report_opens_with_its_headline(tmp_path):
    from dist_logreg.report.build import build
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "run", fabric=False)
    build([run], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    head = md[: md.index("## Runs")]  # before where the run came from
    for line in (
        "| final loss | 0.25 |",  # the summary's numbers, as fake_runs wrote them
        "| allreduce latency p50 | 300 µs |",
        "| allreduce busbw p50 | 0.005 GB/s |",
        "| comm fraction of step time | 40.0% |",
        "| final accuracy (training set) | n/a |",  # fake_runs records none
    ):
        assert line in head, md[:1500]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.index("Headline") < html.index("Where each run came from")
    # two runs: the comparison table is the headline, not one run's
    write_train_run(tmp_path / "other", fabric=False, tag="other")
    build([run, tmp_path / "other"], tmp_path / "rep2")
    assert "## Headline\n" not in (tmp_path / "rep2" / "report.md").read_text()
