"""``dist-logreg report`` on runs written by hand (no MPI): plots, documents, the lateness
analysis, old and new bench files, fabric files, predictions, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.report import analysis
from dist_logreg.report.build import build
from dist_logreg.report.runs import BenchRun, load, unique_tags
from tests.fake_runs import write_bench, write_train_run
from tests.helpers import BIN, ROOT
from tests.report_checks import check_png, check_report

TRAIN_IMAGES = {"step-time.png", "loss.png", "latency-cdf.png", "lateness.png", "traffic.png"}


@pytest.mark.parametrize("aligned", [True, False])
def test_lateness_finds_the_constructed_straggler(tmp_path, aligned):
    run = load(
        write_train_run(tmp_path / "r", p=3, late_rank=2, late_step=7, late_s=0.05, aligned=aligned)
    )
    lat = analysis.lateness(run)
    assert lat.matrix.shape == (3, 20)
    assert ("clocks aligned" in lat.method) == aligned
    assert int(np.argmax(lat.matrix[:, 7])) == 2
    assert lat.matrix[2, 7] == pytest.approx(0.05 + 2e-4, abs=5e-5)  # 2 x 1e-4 rank offset
    assert np.nanmin(lat.matrix, axis=0) == pytest.approx(np.zeros(20))  # the first is 0 late
    top = lat.table()[0]
    assert (top["rank"], top["max_step"]) == (2, 7)


def test_step_phases_are_the_slowest_ranks(tmp_path):
    run = load(write_train_run(tmp_path / "r"))
    steps, phases = analysis.step_phases(run)
    s = run.steps
    totals = s["data_s"] + s["compute_s"] + s["comm_s"] + s["update_s"]
    for k in (0, 7, 19):
        assert phases[k].sum() == pytest.approx(totals[s["step"] == k].max())


def test_report_of_one_run_with_fabric_and_prediction(tmp_path):
    run = write_train_run(tmp_path / "r", tag="two-tier")
    out = tmp_path / "rep"
    build([str(run)], out)
    numbers = check_report(out, TRAIN_IMAGES | {"predicted.png", "links.png", "flows.png"})
    assert numbers["lateness"]["two-tier"][0]["rank"] == 2
    prov = next(t for t in numbers["tables"] if t["title"] == "Where each run came from")
    cells = {row[0]: row[1] for row in prov["rows"]}
    assert cells["hosts: ranks"] == "h0: 0; h1: 1; h2: 2"
    assert cells["MPI library"] == "Open MPI v5.0.11"
    assert json.loads(cells["emulated cluster"]) == {"rate": "1gbit", "topology": "two-tier"}


def test_report_without_optional_files_says_what_is_missing(tmp_path):
    run = write_train_run(tmp_path / "r", tag=None, predicted=False, fabric=False)
    (run / "steps.jsonl").unlink()
    (run / "traffic.json").unlink()
    out = tmp_path / "rep"
    build([str(run)], out)
    check_report(out, {"latency-cdf.png", "lateness.png"})
    html = (out / "report.html").read_text()
    assert "no steps.jsonl: step-time and loss plots not drawn" in html
    assert "traffic matrix not drawn" in html
    assert "n/a for r: made before runs recorded where they came from" in html
    assert not (out / "predicted.png").exists() and not (out / "links.png").exists()


def test_bench_report_reads_the_old_list_form_too(tmp_path):
    new = write_bench(tmp_path / "new.json", tag="new")
    old = write_bench(tmp_path / "old.json", old_list=True, algorithms=("mpi",))
    assert load(old).records == json.loads(old.read_text())
    out = tmp_path / "rep"
    build([str(new), str(old)], out)
    numbers = check_report(out, {"bench-latency.png", "bench-busbw.png"})
    head = next(t for t in numbers["tables"] if t["title"] == "Bench headline numbers")
    assert [r[:2] for r in head["rows"]] == [["new", "mpi"], ["new", "ring"], ["old", "mpi"]]
    assert head["rows"][2][2].endswith("(1.00x)")  # the same numbers, so ratio 1


def test_link_ceilings():
    bench = BenchRun
    run = bench(
        "b.json",
        "b",
        {"run": {"cluster": {"rate": "1gbit", "uplink_rate": "500mbit"}}, "records": []},
    )
    assert analysis.link_ceilings(run) == [
        ("cluster rate 1 Gbit/s", 0.125),
        ("cluster uplink rate 0.5 Gbit/s", 0.0625),
    ]
    assert analysis.link_ceilings(run, "100mbit") == [("--link-rate 0.1 Gbit/s", 0.0125)]
    assert analysis.link_ceilings(bench("b", "b", {"records": []})) == []


def test_two_runs_compared_with_ratios(tmp_path):
    a = write_train_run(tmp_path / "a", tag="fast")
    b = write_train_run(tmp_path / "b", tag="slow")
    summary = json.loads((b / "summary.json").read_text())
    summary["step_time_s"]["p50"] *= 2
    (b / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "rep"
    build([str(a), str(b)], out)
    compared = {"compare-step-time.png", "compare-loss.png", "compare-latency-cdf.png"}
    per_run = {f"{i}-{t}-{n}" for i, t in ((1, "fast"), (2, "slow")) for n in TRAIN_IMAGES}
    numbers = check_report(out, compared | per_run | {"compare-predicted.png"})
    head = next(t for t in numbers["tables"] if t["title"] == "Headline numbers")
    assert head["header"] == ["metric", "fast", "slow"]
    step = next(r for r in head["rows"] if r[0] == "step time p50")
    assert step == ["step time p50", "600 µs (1.00x)", "1.2 ms (2.00x)"]


def test_the_same_tag_twice_stays_apart():
    runs = [BenchRun("a", tag, {"records": []}) for tag in ("x", "y", "x", "x")]
    unique_tags(runs)
    assert [r.tag for r in runs] == ["x", "y", "x #2", "x #3"]


def test_check_png_rejects_a_blank_image(tmp_path):
    from PIL import Image

    Image.new("RGB", (800, 450), "white").save(tmp_path / "blank.png")
    with pytest.raises(AssertionError):
        check_png(tmp_path / "blank.png")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d.mkdir(), "expected a training output directory (with summary.json)"),
        (lambda d: d.write_text("{"), "expected JSON"),
        (lambda d: d.write_text('{"a": 1}'), "expected a bench JSON"),
        (lambda d: d.write_text('[{"algorithm": "mpi"}]'), "record 0: expected keys bytes"),
        (lambda d: None, "not found"),
    ],
)
def test_bad_runs_are_named(tmp_path, make, message):
    make(tmp_path / "x")
    with pytest.raises(UsageError, match=re.escape(message)):
        load(tmp_path / "x")


def test_bad_metrics_line_names_file_and_line(tmp_path):
    run = write_train_run(tmp_path / "r")
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write("not json\n")
    with pytest.raises(UsageError, match=r"metrics.jsonl line 61: expected a JSON object"):
        load(run)


def test_cli_report_exit_statuses_and_no_mpi(tmp_path):
    run = write_bench(tmp_path / "b.json")
    code = (
        "import sys; from dist_logreg.cli.main import main; rc = main(sys.argv[1:]); "
        "assert 'mpi4py' not in sys.modules, 'report loaded mpi4py'; sys.exit(rc)"
    )
    args = [sys.executable, "-c", code, "report", str(run), "--out", str(tmp_path / "o")]
    ok = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "report.html" in ok.stdout and (tmp_path / "o" / "report.html").is_file()
    bad = subprocess.run(
        [str(BIN / "dist-logreg"), "report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"dist-logreg: error: RUN {tmp_path / 'nope'}: not found"
    rate = subprocess.run(
        [str(BIN / "dist-logreg"), "report", str(run), "--link-rate", "fast"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert rate.returncode == 2 and "--link-rate: expected a rate" in rate.stderr
