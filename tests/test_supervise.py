"""``dist-logreg supervise`` end to end: restarts after a lost rank (also on fewer ranks), the
exit statuses it restarts on, launch failures told from lost ranks, every attempt's
measurements kept and listed in the final summary, and SIGTERM/SIGINT forwarded to the
job with nothing left running.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BIN, FAULT_RUN, ROOT, load_model, mpi_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN = FAULT_RUN
model = load_model
SUPERVISE = [str(BIN / "dist-logreg"), "supervise"]


def supervise(args, timeout=120):
    return subprocess.run(
        [*SUPERVISE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mpi_env(),
        cwd=ROOT,
        start_new_session=True,
    )


def mpirun(n):
    return [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe"]


def fake_job(status: int) -> list[str]:
    """A job that starts (reports so, as rank 0 does) and exits with ``status``."""
    script = f'echo \'{{"started": true}}\' > "$DIST_LOGREG_STATUS"; exit {status}'
    return ["sh", "-c", script]


@pytest.mark.parametrize("n", [2, 3])
def test_supervise_survives_a_killed_rank_and_keeps_every_attempt(tmp_path, reference, n):
    r = supervise(
        [
            "--restarts",
            "2",
            "--",
            *mpirun(n),
            str(BIN / "dist-logreg"),
            "train",
            *RUN,
            "--checkpoint-every",
            "10",
            "--out",
            str(tmp_path),
            "--inject-fault",
            f"kill:rank={n - 1}:step=27",
        ]
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "attempt 1 failed" in r.stdout and "newest checkpoint after step 20" in r.stdout
    assert "at least 7 step(s) of work lost" in r.stdout  # progress is reported every step
    assert "completed after 1 failure(s) and 1 restart(s)" in r.stdout
    assert np.array_equal(model(tmp_path), reference[n])
    # The dead attempt's measurements stay, marked with its number: flushed at each
    # checkpoint (after steps 10 and 20), though --flush-every is 1000.
    for rank in range(n):
        lines = (tmp_path / "partial" / f"metrics-attempt1-from0-rank{rank}.jsonl").read_text()
        recs = [json.loads(x) for x in lines.splitlines()]
        assert [x["step"] for x in recs] == list(range(20)) and {x["attempt"] for x in recs} == {1}
    attempts = json.loads((tmp_path / "summary.json").read_text())["attempts"]
    assert attempts["count"] == 2
    (failed,) = attempts["failed"]
    assert failed["attempt"] == 1 and failed["steps_lost"] == 7 and failed["launched"]
    assert failed["checkpoint_step"] == 20 and failed["last_progress_step"] == 27
    assert failed["partial_files"] == [f"metrics-attempt1-from0-rank{k}.jsonl" for k in range(n)]
    assert not list(tmp_path.glob(".supervise-status-*"))  # the supervisor cleans up


def test_supervise_restarts_on_fewer_ranks(tmp_path, reference):
    r = supervise(
        [
            "--restarts",
            "2",
            "--min-ranks",
            "2",
            "--",
            *mpirun(3),
            str(BIN / "dist-logreg"),
            "train",
            *RUN,
            "--checkpoint-every",
            "10",
            "--out",
            str(tmp_path),
            "--inject-fault",
            "kill:rank=2:step=12",
        ]
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "-n 2" in r.stdout.split("attempt 2 of")[1].splitlines()[0]
    np.testing.assert_allclose(model(tmp_path), reference[3], rtol=1e-12, atol=1e-14)
    # the dead 3-rank attempt's rows name rank 2 of a run now at 2 ranks: reported (it was
    # refused, "rank: expected a rank from 0 to 1": fourteenth attack, P-H1)
    assert list((tmp_path / "partial").glob("steps-attempt1-*-rank2.jsonl"))
    rep = subprocess.run(
        [str(BIN / "dist-logreg"), "report", str(tmp_path), "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
        timeout=300,
        env=mpi_env(),
    )
    assert rep.returncode == 0, rep.stderr[-2000:]


@pytest.mark.parametrize("n", [2, 3])
def test_a_launch_failure_is_not_a_lost_rank(tmp_path, n):
    # One slot on this host for n ranks: the launcher refuses before any rank starts.
    r = supervise(
        [
            "--restarts",
            "2",
            "--min-ranks",
            "1",
            "--",
            str(BIN / "mpirun"),
            "-n",
            str(n),
            "--host",
            "localhost:1",
            str(BIN / "dist-logreg"),
            "train",
            *RUN,
            "--out",
            str(tmp_path),
            "--inject-fault",
            "kill:rank=1:step=5",
        ]
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "attempt 1 failed to launch" in r.stdout and "no rank started" in r.stdout
    assert "not restarting" in r.stdout and "attempt 2" not in r.stdout


def test_supervise_gives_up_and_does_not_retry_bad_input(tmp_path):
    r = supervise(["--restarts", "2", "--", *fake_job(3), "train", "--out", str(tmp_path)])
    assert r.returncode == 3 and r.stdout.count("failed (exit status 3)") == 3
    assert "giving up after 2 restart(s)" in r.stdout
    r = supervise(
        [
            "--restarts",
            "2",
            "--",
            *mpirun(2),
            str(BIN / "dist-logreg"),
            "train",
            "--data",
            str(tmp_path / "missing.npz"),
            "--out",
            str(tmp_path),
        ]
    )
    assert r.returncode == 2 and "not restarting" in r.stdout
    r = supervise(["--", *mpirun(2), str(BIN / "dist-logreg"), "train"])
    assert r.returncode == 2 and "needs --out DIR or --checkpoint-dir" in r.stderr


@pytest.mark.parametrize("status, restarted", [(1, True), (3, True), (4, False), (5, True)])
def test_supervise_restarts_by_exit_status(tmp_path, status, restarted):
    r = supervise(["--restarts", "1", "--", *fake_job(status), "train", "--out", str(tmp_path)])
    assert r.returncode == status
    assert r.stdout.count(f"failed (exit status {status})") == (2 if restarted else 1)
    assert ("not restarting" in r.stdout) != restarted


def job_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions ``marker`` (this test's own output folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmdline and state != "Z":
                found.append(int(entry))
    return found


@pytest.mark.parametrize("n, sig", [(2, signal.SIGTERM), (3, signal.SIGINT)])
def test_a_signal_to_the_supervisor_stops_the_whole_job(tmp_path, n, sig):
    out = tmp_path / "job"
    cmd = [
        *SUPERVISE,
        "--grace",
        "3",
        "--",
        *mpirun(n),
        str(BIN / "dist-logreg"),
        "train",
        *RUN,
        "--steps",
        "1000000",
        "--log-every",
        "200",
        "--out",
        str(out),
    ]
    sup = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=mpi_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        seen = ""
        for line in sup.stdout:  # wait until the job trains
            seen += line
            if "step " in line and "batch loss" in line:
                break
        assert len(job_processes(str(out))) >= n, seen
        sup.send_signal(sig)
        rest, _ = sup.communicate(timeout=30)
        assert sup.returncode == 128 + sig, seen + rest
        assert f"{signal.Signals(sig).name} received: forwarding it to the job" in rest
        assert "not restarting" in rest and "attempt 2" not in rest
        left = job_processes(str(out))
        assert not left, f"left running: {left}"
    finally:
        for pid in job_processes(str(out)):  # only if the test failed: no orphans either way
            os.kill(pid, signal.SIGKILL)
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)


def test_supervise_help():
    r = subprocess.run(
        [sys.executable, "-m", "dist_logreg", "supervise", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0
    for flag in ("--restarts", "--min-ranks", "--attempt-timeout", "--grace"):
        assert flag in r.stdout


def test_bad_grace_is_usage():
    r = subprocess.run(
        [*SUPERVISE, "--grace", "nan", "--", "true", "train", "--out", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "--grace: expected a number of seconds from 0.001 to" in r.stderr


def test_status_file_protocol(tmp_path, monkeypatch):
    from dist_logreg.protocol import STATUS_VAR, read_status, report

    path = tmp_path / "status.json"
    monkeypatch.delenv(STATUS_VAR, raising=False)
    report(step=3)  # unsupervised: nothing written
    assert not path.exists()
    monkeypatch.setenv(STATUS_VAR, str(path))
    report(started=True)
    report(step=3, steps=10)
    report(checkpoint=2)
    assert read_status(path) == {"started": True, "step": 3, "steps": 10, "checkpoint": 2}
    path.write_text("[1, 2")  # half a file (never happens: written by rename) reads as {}
    assert read_status(path) == {}
