"""End to end: real runs under mpirun, then ``dist-logreg report``; the run block of
summary.json; the progress bar on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from dist_logreg.report import analysis
from dist_logreg.report.runs import load
from tests.helpers import BIN, WORLD_SIZES, mpi_env, run_mpi, train_cmd
from tests.report_checks import check_report

pytestmark = [pytest.mark.e2e]

TRAIN_IMAGES = {"step-time.png", "loss.png", "latency-cdf.png", "lateness.png", "traffic.png"}
SMALL = ["--samples", "600", "--features", "9", "--batch-size", "60", "--steps", "12"]
STALL = ("1", "6", "0.5")  # rank, step, seconds: far above the noise of a loaded machine


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two 3-rank training runs (rank 1 of the first stalls at step 6) and a bench JSON."""
    d = tmp_path_factory.mktemp("runs")
    rank, step, secs = STALL
    fault = f"stall:rank={rank}:step={step}:seconds={secs}"
    ring = run_mpi(
        3,
        train_cmd(
            *SMALL,
            "--allreduce",
            "ring",
            "--tag",
            "ring",
            "--out",
            str(d / "ring"),
            "--inject-fault",
            fault,
        ),
        timeout=90,
    )
    rab = run_mpi(
        3,
        train_cmd(*SMALL, "--allreduce", "rabenseifner", "--tag", "rab", "--out", str(d / "rab")),
        timeout=90,
    )
    bench = run_mpi(
        2,
        [
            str(BIN / "dist-logreg"),
            "bench",
            "--allreduce",
            "mpi,ring",
            "--max-bytes",
            "32K",
            "--factor",
            "8",
            "--iters",
            "5",
            "--tag",
            "shm",
            "--out",
            str(d / "bench.json"),
        ],
        timeout=90,
    )
    for r in (ring, rab, bench):
        assert r.returncode == 0, r.stderr
    return d, ring


def report(*args: str, cwd) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(BIN / "dist-logreg"), "report", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r


def test_report_of_a_3_rank_run_shows_the_straggler(runs, tmp_path):
    d, ring = runs
    report(str(d / "ring"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    numbers = check_report(tmp_path / "o", TRAIN_IMAGES)
    rank, step, secs = int(STALL[0]), int(STALL[1]), float(STALL[2])
    lat = analysis.lateness(load(d / "ring"))  # the heatmap's data
    assert "clocks aligned" in lat.method
    assert lat.matrix.shape == (3, 12)
    assert int(np.argmax(lat.matrix[:, step])) == rank
    assert lat.matrix[rank, step] > 0.8 * secs
    top = numbers["lateness"]["ring"][0]
    assert (top["rank"], top["max_step"]) == (rank, step)
    straggler = next(t for t in numbers["tables"] if t["title"].startswith("Stragglers"))
    assert straggler["rows"][0][:2] == [str(rank), socket.gethostname()]
    # Not a terminal: the plain progress lines, no bar.
    assert "  step 12/12  batch loss" in ring.stdout and "\r" not in ring.stdout


def test_report_of_a_bench_json(runs, tmp_path):
    d, _ = runs
    report(str(d / "bench.json"), "--link-rate", "10gbit", "--out", "o", cwd=tmp_path)
    numbers = check_report(tmp_path / "o", {"bench-latency.png", "bench-busbw.png"})
    records = next(t for t in numbers["tables"] if t["title"] == "Bench records: shm")
    assert [r[:2] for r in records["rows"]] == [
        [a, str(b)] for a in ("mpi", "ring") for b in (8, 64, 512, 4096, 32768)
    ]


def test_two_runs_compared(runs, tmp_path):
    d, _ = runs
    report(str(d / "ring"), str(d / "rab"), "--out", "o", cwd=tmp_path)
    per_run = {f"{i}-{t}-{n}" for i, t in ((1, "ring"), (2, "rab")) for n in TRAIN_IMAGES}
    compared = {"compare-step-time.png", "compare-loss.png", "compare-latency-cdf.png"}
    numbers = check_report(tmp_path / "o", per_run | compared)
    head = next(t for t in numbers["tables"] if t["title"] == "Headline numbers")
    assert head["header"] == ["metric", "ring", "rab"]
    loss = next(r for r in head["rows"] if r[0] == "final loss")
    assert loss[1].endswith("(1.00x)") and loss[2].endswith("(1.00x)")  # same data, same math


@pytest.mark.parametrize("n", WORLD_SIZES)
def test_summary_says_where_the_run_came_from(tmp_path, monkeypatch, n):
    cluster = {"topology": "two-tier", "rate": "1gbit", "uplink_rate": "500mbit"}
    monkeypatch.setenv("DIST_LOGREG_CLUSTER_INFO", json.dumps(cluster))
    args = [*SMALL[:-1], "3", "--tag", f"t{n}", "--out", str(tmp_path / "r")]
    before = datetime.now(UTC).replace(microsecond=0)
    result = run_mpi(n, train_cmd(*args), timeout=60)
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    run = s["run"]
    assert run["tag"] == f"t{n}" and run["world_size"] == n
    assert before <= datetime.fromisoformat(run["started_utc"]) <= after
    assert run["command_line"][1:] == ["train", *args]
    assert run["hosts"] == [{"name": socket.gethostname(), "ranks": list(range(n))}]
    assert run["ranks_per_host"] == [n]
    assert run["mpi"]["library"].startswith("Open MPI")
    assert run["numpy"] == np.__version__
    # The command line sets one BLAS thread per rank (OPENBLAS_NUM_THREADS=1 before numpy).
    assert [b["num_threads"] for b in run["blas"]["libraries"]] == [1]
    assert run["cluster"] == cluster
    assert len(s["clock_sync"]["offset_ns"]) == n
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * n and all(x["start_aligned_s"] >= 0 for x in lines)
    assert min(x["start_aligned_s"] for x in lines if x["step"] == 0) < 1  # a common origin


def in_terminal(n: int, args: list[str], timeout: float = 60) -> str:
    """Run ``mpirun -n n ARGS`` with a pseudo-terminal as its output; return what it showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=mpi_env(),
        start_new_session=True,
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{args} did not finish in {timeout} s")
    finally:
        os.close(master)
        proc.wait(timeout=10)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal(tmp_path):
    shown = in_terminal(2, train_cmd(*SMALL[:-1], "400", "--out", str(tmp_path / "r")))
    assert "100%|" in shown and "400/400 [" in shown  # tqdm's bar, completed
    plain = [line for line in shown.splitlines() if line.startswith("  step ")]
    assert len(plain) == 10, plain  # the plain lines stay in the log, about ten per run
    shown = in_terminal(2, [str(BIN / "dist-logreg"), "bench", "--max-bytes", "1K"])
    assert "bench: 100%|" in shown and "8/8 [" in shown  # 8 B .. 1 KiB: 8 sizes
    assert shown.count("         mpi ") == 8  # every table row is still printed


def test_no_bar_when_mpirun_writes_to_a_pipe(tmp_path):
    # Open MPI gives every rank a pseudo-terminal even when mpirun's own output is a pipe:
    # the rank must look at the launcher's output, or logs fill with bar redraws.
    r = run_mpi(2, train_cmd(*SMALL[:-1], "100", "--out", str(tmp_path / "r")))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "%|" not in r.stdout and "\r" not in r.stdout
    assert len([x for x in r.stdout.splitlines() if x.startswith("  step ")]) == 10
