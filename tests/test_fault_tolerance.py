"""Fault tolerance end to end: checkpoints and resume, supervise after a killed rank,
stalls and the watchdog, divergence, and output directories that cannot be written.

Every job runs under mpirun in its own process group with a hard timeout: nothing hangs and
nothing is left behind.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BIN, ROOT, mpi_env, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN = ["--samples", "3000", "--features", "7", "--batch-size", "100", "--steps", "40",
       "--momentum", "0.5", "--seed", "2", "--log-every", "1"]  # fmt: skip


def model(d: Path):
    m = np.load(d / "model.npz", allow_pickle=False)
    return np.append(m["coef"], m["intercept"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs at 2 and 3 ranks."""
    out = {}
    for n in (2, 3):
        d = tmp_path_factory.mktemp(f"ref{n}")
        r = run_mpi(n, train_cmd(*RUN, "--out", str(d)), timeout=60)
        assert r.returncode == 0, r.stderr
        out[n] = model(d)
    return out


def supervise(args, timeout=120):
    cmd = [str(BIN / "dist-logreg"), "supervise", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(),
                       cwd=ROOT, start_new_session=True)  # fmt: skip
    return r


def mpirun(n):
    return [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe"]


@pytest.mark.parametrize("n", [2, 3])
def test_killed_rank_then_resume_is_bitwise_identical(tmp_path, reference, n):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10"]
    first = run_mpi(n, train_cmd(*args, "--inject-fault", f"kill:rank={n - 1}:step=25"),
                    timeout=60)  # fmt: skip
    assert first.returncode != 0 and "kills itself at step 25" in first.stderr
    assert not (tmp_path / "model.npz").exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "ckpt-00000010.npz", "ckpt-00000020.npz"]  # fmt: skip
    again = run_mpi(n, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "ckpt-00000020.npz (after step 20)" in again.stdout
    assert np.array_equal(model(tmp_path), reference[n])  # bitwise
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["resumed_from_step"] == 20 and s["steps_run"] == 20


def test_resume_on_another_world_size_matches_up_to_summation_order(tmp_path, reference):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10"]
    run_mpi(3, train_cmd(*args, "--inject-fault", "kill:rank=0:step=15"), timeout=60)
    again = run_mpi(2, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    np.testing.assert_allclose(model(tmp_path), reference[3], rtol=1e-12, atol=1e-14)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, reference):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10"]
    run_mpi(2, train_cmd(*args, "--inject-fault", "kill:rank=1:step=35"), timeout=60)
    newest = tmp_path / "checkpoints" / "ckpt-00000030.npz"
    blob = bytearray(newest.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    newest.write_bytes(bytes(blob))
    again = run_mpi(2, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "ckpt-00000030.npz" in again.stderr and "trying the previous one" in again.stderr
    assert "after step 20" in again.stdout
    assert np.array_equal(model(tmp_path), reference[2])


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10", "--steps", "10"]
    assert run_mpi(2, train_cmd(*args), timeout=60).returncode == 0
    r = run_mpi(2, train_cmd(*args, "--resume", "--lr", "0.1"), timeout=60)
    assert r.returncode == 2
    assert "written with lr = 0.5, this run has lr = 0.1" in r.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_supervise_survives_a_killed_rank(tmp_path, reference, n):
    r = supervise(["--restarts", "2", "--", *mpirun(n), str(BIN / "dist-logreg"), "train",
                   *RUN, "--checkpoint-every", "10", "--out", str(tmp_path),
                   "--inject-fault", f"kill:rank={n - 1}:step=27"])  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "attempt 1 failed" in r.stdout and "newest checkpoint after step 20" in r.stdout
    assert "at least 7 step(s) of work lost" in r.stdout  # progress is reported every step
    assert "completed after 1 failure(s) and 1 restart(s)" in r.stdout
    assert np.array_equal(model(tmp_path), reference[n])


def test_supervise_restarts_on_fewer_ranks(tmp_path, reference):
    r = supervise(["--restarts", "2", "--min-ranks", "2", "--", *mpirun(3),
                   str(BIN / "dist-logreg"), "train", *RUN, "--checkpoint-every", "10",
                   "--out", str(tmp_path), "--inject-fault", "kill:rank=2:step=12"])  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "-n 2" in r.stdout.split("attempt 2 of")[1].splitlines()[0]
    np.testing.assert_allclose(model(tmp_path), reference[3], rtol=1e-12, atol=1e-14)


def test_supervise_gives_up_and_does_not_retry_bad_input(tmp_path):
    r = supervise(["--restarts", "2", "--", "sh", "-c", "exit 3", "train", "--out",
                   str(tmp_path)])  # fmt: skip
    assert r.returncode == 3 and r.stdout.count("failed (exit status 3)") == 3
    assert "giving up after 2 restart(s)" in r.stdout
    r = supervise(["--restarts", "2", "--", *mpirun(2), str(BIN / "dist-logreg"), "train",
                   "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path)])  # fmt: skip
    assert r.returncode == 2 and "not restarting" in r.stdout
    r = supervise(["--", *mpirun(2), str(BIN / "dist-logreg"), "train"])
    assert r.returncode == 2 and "needs --out DIR or --checkpoint-dir" in r.stderr


@pytest.mark.parametrize("status, restarted", [(1, True), (3, True), (4, False), (5, True)])
def test_supervise_restarts_by_exit_status(tmp_path, status, restarted):
    r = supervise(["--restarts", "1", "--", "sh", "-c", f"exit {status}", "train", "--out",
                   str(tmp_path)])  # fmt: skip
    assert r.returncode == status
    assert r.stdout.count(f"failed (exit status {status})") == (2 if restarted else 1)
    assert ("not restarting" in r.stdout) != restarted


def test_stalled_rank_is_caught_by_the_comm_timeout(tmp_path):
    r = run_mpi(3, train_cmd(*RUN, "--out", str(tmp_path), "--comm-timeout", "1.5",
                             "--inject-fault", "stall:rank=1:step=5:seconds=30"),
                timeout=25)  # fmt: skip
    assert r.returncode == 3, r.stderr  # communication timeout
    assert "stalls 30 s in step 5" in r.stderr
    assert "step 5: gradient allreduce did not complete within --comm-timeout 1.5 s" in r.stderr


def test_stall_within_the_timeout_only_costs_time(tmp_path):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(tmp_path), "--comm-timeout", "20",
                             "--inject-fault", "stall:rank=0:step=3:seconds=0.5"),
                timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["allreduce"]["skew_s"]["max"] >= 0.4  # rank 1 waited for the stalled rank


def test_divergence_writes_the_last_good_checkpoint(tmp_path):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(tmp_path), "--checkpoint-every", "100",
                             "--lr", "1e308"), timeout=60)  # fmt: skip
    assert r.returncode == 4  # divergence
    line = [x for x in r.stderr.splitlines() if x.startswith("dist-logreg: error")][0]
    assert "is not finite" in line and "smaller --lr" in line and "last good state" in line
    saved = list((tmp_path / "checkpoints").iterdir())
    assert len(saved) == 1
    from dist_logreg.train.checkpoint import load

    assert np.all(np.isfinite(load(saved[0]).params))


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a full file system: a 64 KiB tmpfs as root, else /dev/full links."""
    d = tmp_path / "full"
    d.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                                             str(d)]).returncode == 0:  # fmt: skip
        subprocess.run(["dd", "if=/dev/zero", f"of={d}/filler", "bs=4k", "count=64"],
                       capture_output=True)  # fmt: skip
        yield d
        subprocess.run(["umount", str(d)])
    else:
        for name in ("model.npz", "summary.json"):
            (d / name).symlink_to("/dev/full")
        yield d


def test_full_output_directory_loses_nothing(full_dir):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(full_dir)), timeout=60)
    assert r.returncode == 1  # a full disk is not bad input
    line = [x for x in r.stderr.splitlines() if x.startswith("dist-logreg: error")][0]
    assert "writing results failed" in line and "saved to" in line
    rescued = Path(line.split("saved to ")[1].split(" instead")[0])
    try:
        assert np.all(np.isfinite(model(rescued)))
        assert json.loads((rescued / "summary.json").read_text())["steps"] == 40
    finally:
        for f in rescued.iterdir():
            f.unlink()
        rescued.rmdir()


@pytest.fixture
def read_only_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() == 0:  # root ignores permissions: use a read-only mount
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], check=True)
        yield d
        subprocess.run(["umount", str(d)])
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


def test_read_only_output_directory_fails_before_training(read_only_dir):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(read_only_dir / "run")), timeout=30)
    assert r.returncode == 2
    assert "cannot write there" in r.stderr and "step " not in r.stdout


def test_supervise_help():
    r = subprocess.run([sys.executable, "-m", "dist_logreg", "supervise", "--help"],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    assert r.returncode == 0
    for flag in ("--restarts", "--min-ranks", "--attempt-timeout"):
        assert flag in r.stdout


def test_resume_after_completion_changes_nothing(tmp_path, reference):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "20"]
    assert run_mpi(2, train_cmd(*args), timeout=60).returncode == 0
    again = run_mpi(2, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "after step 40" in again.stdout
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps_run"] == 0 and s["allreduce"]["calls"] == 0
    assert np.array_equal(model(tmp_path), reference[2])


def test_a_dead_run_keeps_its_measurements(tmp_path):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10", "--flush-every", "5"]
    r = run_mpi(2, train_cmd(*args, "--inject-fault", "kill:rank=1:step=17"), timeout=60)
    assert r.returncode != 0
    partial = tmp_path / "partial"
    for rank in (0, 1):
        lines = (partial / f"metrics-from0-rank{rank}.jsonl").read_text().splitlines()
        recs = [json.loads(x) for x in lines]
        assert [x["step"] for x in recs] == list(range(15))  # flushed after steps 5, 10, 15
        assert all(x["rank"] == rank and x["bytes"] == (7 + 3) * 8 for x in recs)
    again = run_mpi(2, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in partial.iterdir()) == [
        "metrics-from0-rank0.jsonl",
        "metrics-from0-rank1.jsonl",
    ]  # the dead run's stay
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    steps = {json.loads(x)["step"] for x in lines}
    assert steps == set(range(10, 40))


def test_a_completed_run_leaves_no_partial_files(tmp_path):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(tmp_path), "--flush-every", "7"), timeout=60)
    assert r.returncode == 0 and not (tmp_path / "partial").exists()
