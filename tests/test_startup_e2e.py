"""Start-up and interruption end to end, at 2 and 3 ranks: nothing hangs, and what the user
sees is one line with the right exit status.

- a FIFO named as data or config (``open`` would block every rank forever);
- a rank stopped (SIGSTOP) inside ``MPI_Init`` or while loading data: ``--comm-timeout``
  must end the job from start-up on, also where the stopped rank's own watchdog cannot run;
- ranks launched with different settings or files (MPMD ``mpirun A : B``, or one path
  holding other files on another "node"): one line naming the setting and the ranks,
  where they used to hang (``--steps``) or die with ``MPI_ERR_TRUNCATE`` (``--features``);
  every other setting is checked in-process at 2-4 ranks in ``tests/mpi/test_startup.py``;
- Ctrl-C at one rank: one "interrupted" line, no traceback.

Every job runs under mpirun in its own process group with a hard timeout.
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import BIN, ROOT, mpi_env, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL = ["--samples", "300", "--features", "4", "--batch-size", "30", "--steps", "5"]
SCRIPT = ROOT / "tests" / "scripts" / "one_rank.py"


def error_lines(stderr: str) -> list[str]:
    """Our error lines (the launcher's banner may share the line, before or after ours: two
    processes write one standard error through mpirun)."""
    tag = "dist-logreg: error"
    lines = [x[x.index(tag) :] for x in stderr.splitlines() if tag in x]
    return [re.split(r"-{8,}|MPI_ABORT was invoked|prterun", x)[0].rstrip() for x in lines]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("flag", ["--data", "--config"])
def test_a_fifo_is_refused_instead_of_blocking(tmp_path, n, flag):
    fifo = tmp_path / ("d.npz" if flag == "--data" else "c.toml")
    os.mkfifo(fifo)
    r = run_mpi(n, train_cmd(*SMALL, flag, str(fifo), "--out", str(tmp_path / "o")), timeout=30)
    assert r.returncode == 2, r.stderr
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "expected a regular file, got a FIFO" in lines[0], r.stderr


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize(
    "where, phase",
    [
        ("init", "MPI start-up (MPI_Init) did not complete within --comm-timeout 10 s"),
        ("data", "start-up agreement on the configuration and data (allgather) did not complete"),
    ],
)
def test_a_rank_stopped_during_start_up_is_caught_by_the_comm_timeout(tmp_path, n, where, phase):
    # 10 s, not 1.5: a healthy rank's own start-up (MPI_Init, imports, data) must never
    # reach the timeout on a loaded machine; the stopped rank's always does
    start = time.monotonic()
    r = run_mpi(
        n,
        [
            sys.executable,
            str(SCRIPT),
            f"stop-{where}",
            "train",
            *SMALL,
            "--comm-timeout",
            "10",
            "--out",
            str(tmp_path),
        ],
        timeout=240,
    )
    assert r.returncode == 3, r.stdout + r.stderr  # a communication timeout
    assert phase in r.stderr
    assert time.monotonic() - start < 120  # ended by the watchdog, not by the test's timeout


def mpmd(parts: list[list[str]], timeout: float = 30):
    """``mpirun -n 1 A : -n 1 B ...``: ranks with different command lines."""
    cmd = [str(BIN / "mpirun"), "--oversubscribe"]
    for i, part in enumerate(parts):
        cmd += ([":"] if i else []) + part
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mpi_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    return r


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("flag, a, b", [("--steps", "5", "6"), ("--features", "4", "6")])
def test_ranks_with_other_settings_stop_with_one_line(tmp_path, n, flag, a, b):
    common = [*SMALL, "--out", str(tmp_path)]
    r = mpmd(
        [
            ["-n", str(n - 1), *train_cmd(*common, flag, a)],
            ["-n", "1", *train_cmd(*common, flag, b)],
        ]
    )
    assert r.returncode == 2, r.stderr
    lines = error_lines(r.stderr)
    others = ", ".join(map(str, range(n - 1)))
    assert len(lines) == 1, r.stderr
    assert (
        f"ranks disagree on {flag}: {a} on rank{'s' if n > 2 else ''} {others}; {b} on rank "
        f"{n - 1}" in lines[0]
    )
    assert "Traceback" not in r.stderr and "TRUNCATE" not in r.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_one_path_holding_other_rows_on_one_node_is_caught(tmp_path, n):
    for node, seed in (("a", 1), ("b", 2)):
        (tmp_path / node).mkdir()
        rng = np.random.default_rng(seed)
        np.savez(tmp_path / node / "d.npz", X=rng.standard_normal((60, 3)), y=np.zeros(60))
    common = ["--data", "d.npz", "--batch-size", "6", "--steps", "3", "--out", str(tmp_path / "o")]
    r = mpmd(
        [
            ["-n", str(n - 1), "--wdir", str(tmp_path / "a"), *train_cmd(*common)],
            ["-n", "1", "--wdir", str(tmp_path / "b"), *train_cmd(*common)],
        ]
    )
    assert r.returncode == 2, r.stderr
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "ranks disagree on the data" in lines[0], r.stderr
    assert f"on rank {n - 1}; the same --data path holds different files" in lines[0]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ctrl_c_at_one_rank_is_one_line(tmp_path, n):
    r = run_mpi(
        n,
        [sys.executable, str(SCRIPT), "interrupt", "train", *SMALL, "--out", str(tmp_path)],
        timeout=30,
    )
    assert r.returncode == 130 if n == 1 else r.returncode != 0  # 1 before (S-M6)
    lines = error_lines(r.stderr)
    expected = (
        f"dist-logreg: error on rank {n - 1} of {n}: interrupted (SIGINT); aborting all ranks"
    )
    assert lines == [expected], r.stderr
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr
