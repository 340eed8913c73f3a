"""A long ``simulate`` says so and can be stopped (issue 29, 5 and 6): progress counts
seeds, not only points; a sweep estimated over a minute announces it after its first seed;
Ctrl-C stops it within seconds with one line, exit 130, nothing written."""

import io
import os
import select
import signal
import subprocess
import sys
import time

from dist_logreg.record.progress import ANNOUNCE_S, progress_printer
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep


def test_progress_counts_every_seed():
    calls = []
    fab = parse_fabric("flat:hosts=4")
    sweep(
        fab,
        "flat:hosts=4",
        [2, 4],
        ["ring"],
        [1024],
        seeds=5,
        progress=lambda d, t, e: calls.append((d, t)),
    )
    assert [d for d, _ in calls] == list(range(1, 11)) and {t for _, t in calls} == {10}


def test_a_sweep_estimated_over_a_minute_says_so_first():
    out = io.StringIO()
    progress = progress_printer(points=1, seeds=10000, stream=out)
    progress(1, 10000, ANNOUNCE_S / 5000)  # the first seed: 2 x the limit in all
    assert "about 120 s for 10000 runs (1 point(s) x 10000 seed(s))" in out.getvalue()
    quiet = io.StringIO()
    progress_printer(points=1, seeds=10, stream=quiet)(1, 10, 0.01)
    assert quiet.getvalue() == ""


def test_ctrl_c_stops_a_large_sweep_with_one_line_and_nothing_written(tmp_path):
    out = tmp_path / "sim"
    cmd = [
        sys.executable,
        "-m",
        "dist_logreg",
        "simulate",
        "--fabric",
        "fat-tree:k=16",
        "--ranks",
        "1024",
        "--algorithm",
        "rabenseifner",
        "--bytes",
        "1M",
        "--seeds",
        "5000",
        "--placement",
        "random",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(  # Ctrl-C as a terminal's: SIGINT not ignored in the child
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline, seen = time.monotonic() + 120, ""
        while "about" not in seen and time.monotonic() < deadline:  # the estimate: mid-sweep
            if select.select([proc.stderr], [], [], 1.0)[0]:
                seen += os.read(proc.stderr.fileno(), 4096).decode()
            assert proc.poll() is None, seen
        assert "about" in seen, seen
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-800:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("interrupted (SIGINT); nothing written")
    assert stopped < 10  # within a second on a quiet machine; generous under load
    assert not (out / "simulate.json").exists()
    assert not list(out.glob("*.tmp")) if out.exists() else True


def test_with_json_only_the_estimate_is_printed():
    out = io.StringIO()
    progress = progress_printer(points=1, seeds=10000, stream=out, lines=False)
    progress(1, 10000, 0.05)
    progress(9000, 10000, 30.0)
    assert out.getvalue().count("\n") == 1 and "about 500 s" in out.getvalue()
