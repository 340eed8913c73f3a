"""Fault tolerance end to end: checkpoints and resume, supervise after a killed rank,
stalls and the watchdog, divergence, and output directories that cannot be written.

Every job runs under mpirun in its own process group with a hard timeout: nothing hangs and
nothing is left behind.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dist_logreg.train.checkpoint import load
from dist_logreg.train.data import GlobalBatches
from tests.helpers import FAULT_RUN, load_model, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN = FAULT_RUN
model = load_model


@pytest.mark.parametrize("n", [2, 3])
def test_killed_rank_then_resume_is_bitwise_identical(tmp_path, reference, n):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10"]
    first = run_mpi(n, train_cmd(*args, "--inject-fault", f"kill:rank={n - 1}:step=25"), timeout=60)
    assert first.returncode != 0 and "kills itself at step 25" in first.stderr
    assert not (tmp_path / "model.npz").exists()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    run = names[0][14:26]  # ckpt-<step>-<run>.npz: the run's identity, a hash of its settings
    assert names == [f"ckpt-00000010-{run}.npz", f"ckpt-00000020-{run}.npz"]
    again = run_mpi(n, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"ckpt-00000020-{run}.npz (after step 20)" in again.stdout
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
    (newest,) = (tmp_path / "checkpoints").glob("ckpt-00000030-*.npz")
    blob = bytearray(newest.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    newest.write_bytes(bytes(blob))
    again = run_mpi(2, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert newest.name in again.stderr and "trying the previous one" in again.stderr
    assert "after step 20" in again.stdout
    assert np.array_equal(model(tmp_path), reference[2])


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10", "--steps", "10"]
    assert run_mpi(2, train_cmd(*args), timeout=60).returncode == 0
    r = run_mpi(2, train_cmd(*args, "--resume", "--lr", "0.1"), timeout=60)
    assert r.returncode == 2
    assert "written with lr = 0.5, this run has lr = 0.1" in r.stderr


def test_stalled_rank_is_caught_by_the_comm_timeout(tmp_path):
    # 8 s, not 1.5: --comm-timeout covers MPI_Init too, which a loaded machine can hold up
    # for seconds; the 60 s stall always reaches it
    r = run_mpi(
        3,
        train_cmd(
            *RUN,
            "--out",
            str(tmp_path),
            "--comm-timeout",
            "8",
            "--inject-fault",
            "stall:rank=1:step=5:seconds=60",
        ),
        timeout=55,
    )
    assert r.returncode == 3, r.stderr  # communication timeout
    assert "stalls 60 s in step 5" in r.stderr
    assert "step 5: gradient allreduce did not complete within --comm-timeout 8 s" in r.stderr


def test_stall_within_the_timeout_only_costs_time(tmp_path):
    r = run_mpi(
        2,
        train_cmd(
            *RUN,
            "--out",
            str(tmp_path),
            "--comm-timeout",
            "20",
            "--inject-fault",
            "stall:rank=0:step=3:seconds=0.5",
        ),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["allreduce"]["skew_s"]["max"] >= 0.4  # rank 1 waited for the stalled rank


def outlier_data(folder: Path, batch: int):
    """300 rows whose row 123 has a feature of 1e200: finite, but once in a batch the step
    sends the weights to about 1e198, and the row's next visit overflows the loss. Returns
    the data path and the step of the row's first visit (from the batch order itself)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 4))
    X[123, 2] = 1e200
    y = (rng.random(300) < 0.5).astype(float)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    order = GlobalBatches(300, batch, seed=0)
    first = next(s for s in range(1000) if 123 in order.batch(s))
    return str(folder), first


@pytest.mark.parametrize("n", [2, 3])
def test_divergence_names_the_checkpoint_from_before_the_loss_rose(tmp_path, n):
    data, first = outlier_data(tmp_path, 30)
    out = tmp_path / "out"
    r = run_mpi(
        n,
        train_cmd(
            "--data",
            data,
            "--batch-size",
            "30",
            "--steps",
            "30",
            "--out",
            str(out),
            "--checkpoint-every",
            "2",
            "--keep-checkpoints",
            "1",
        ),
        timeout=60,
    )
    assert r.returncode == 4, r.stderr  # divergence
    lines = [x for x in r.stderr.splitlines() if x.startswith("dist-logreg")]
    assert len(lines) == 1 and "is not finite" in lines[0] and "smaller --lr" in lines[0], lines
    assert "Warning" not in r.stderr  # numpy's overflow warnings do not reach the console
    good = first // 2 * 2  # the newest checkpoint whose step's loss came before the outlier
    assert f"from before the loss started to rise, is the checkpoint after step {good}" in lines[0]
    path = Path(lines[0].rsplit(": ", 1)[1])
    saved = load(path)
    assert saved.step == good and np.abs(saved.params).max() < 10  # not the 1e198 ones
    # It was kept out of turn: --keep-checkpoints 1 alone would have pruned it.
    assert len(list(path.parent.glob("ckpt-*.npz"))) == 2


def test_divergence_without_a_good_checkpoint_says_so(tmp_path):
    r = run_mpi(
        2,
        train_cmd(*RUN, "--out", str(tmp_path), "--checkpoint-every", "100", "--lr", "1e308"),
        timeout=60,
    )
    assert r.returncode == 4
    line = [x for x in r.stderr.splitlines() if x.startswith("dist-logreg: error")][0]
    assert "is not finite" in line and "no checkpoint was written before the loss" in line
    assert not (tmp_path / "checkpoints").exists()  # the last finite state is not "good"


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a full file system: a 64 KiB tmpfs as root, else /dev/full links."""
    d = tmp_path / "full"
    d.mkdir()
    if (
        os.geteuid() == 0
        and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)]).returncode
        == 0
    ):
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={d}/filler", "bs=4k", "count=64"], capture_output=True
        )
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


def snapshot(folder: Path) -> dict:
    """Every file under ``folder``: its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def strict(text: str):
    """Parse JSON refusing NaN and Infinity (which json.loads accepts by default)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


@pytest.mark.parametrize("n", [2, 3])
def test_resume_after_completion_changes_nothing(tmp_path, reference, n):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "20"]
    assert run_mpi(n, train_cmd(*args), timeout=60).returncode == 0
    before = snapshot(tmp_path)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 40 * n
    again = run_mpi(n, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout and "outputs are unchanged" in again.stdout
    assert snapshot(tmp_path) == before  # nothing emptied, nothing rewritten
    for name in ("summary.json", "config.json", "traffic.json"):
        strict((tmp_path / name).read_text())
    for line in (tmp_path / "steps.jsonl").read_text().splitlines():
        strict(line)
    assert np.array_equal(model(tmp_path), reference[n])


def test_resume_with_fewer_steps_continues_from_a_checkpoint_before_them(tmp_path):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10"]
    # killed at step 35 of 40 (checkpoints at 10, 20, 30); a run that completed more steps
    # is not rewound without --force (tests/test_trust_attack8m.py)
    died = run_mpi(2, train_cmd(*args, "--inject-fault", "kill:rank=1:step=35"), timeout=60)
    assert died.returncode != 0
    again = run_mpi(2, train_cmd(*args, "--steps", "25", "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "(after step 20)" in again.stdout and "past the run's last step (25)" in again.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 25
    fresh = tmp_path / "fresh"
    assert (
        run_mpi(2, train_cmd(*RUN, "--steps", "25", "--out", str(fresh)), timeout=60).returncode
        == 0
    )
    assert np.array_equal(model(tmp_path), model(fresh))  # the model of 25 steps, bitwise


@pytest.mark.parametrize("n", [2, 3])
def test_other_runs_checkpoints_are_neither_pruned_nor_in_the_way(tmp_path, n):
    ckpts = tmp_path / "ckpts"
    other = [*RUN, "--lr", "0.25", "--checkpoint-dir", str(ckpts), "--checkpoint-every", "10"]
    assert run_mpi(n, train_cmd(*other, "--out", str(tmp_path / "a")), timeout=60).returncode == 0
    theirs = sorted(p.name for p in ckpts.glob("ckpt-*.npz"))  # after steps 20, 30, 40
    mine = [
        *RUN,
        "--steps",
        "20",
        "--checkpoint-dir",
        str(ckpts),
        "--checkpoint-every",
        "10",
        "--keep-checkpoints",
        "1",
        "--out",
        str(tmp_path / "b"),
    ]
    assert run_mpi(n, train_cmd(*mine), timeout=60).returncode == 0
    (own,) = [p for p in ckpts.glob("ckpt-*.npz") if p.name not in theirs]
    assert own.name.startswith("ckpt-00000020-")  # kept 1 of its own, none of theirs deleted
    assert set(theirs) < {p.name for p in ckpts.glob("ckpt-*.npz")}
    # A kill during a write left a temp file of this run, and one of another run long ago.
    left = [ckpts / f".ckpt-{own.name[14:26]}-abc.tmp", ckpts / ".ckpt-0123456789ab-old.tmp"]
    for p in left:
        p.write_bytes(b"half a checkpoint")
    os.utime(left[1], (time.time() - 3600, time.time() - 3600))
    again = run_mpi(n, train_cmd(*mine, "--steps", "30", "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"resuming from {own} (after step 20)" in again.stdout  # not theirs, newer as it is
    assert "skipped 3 newer checkpoint(s) of other runs" in again.stdout
    assert not any(p.exists() for p in left) and "removed .ckpt-" in again.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_dead_runs_keep_their_measurements_also_from_the_same_checkpoint(tmp_path, n):
    args = [*RUN, "--out", str(tmp_path), "--checkpoint-every", "10", "--flush-every", "5"]
    kill = ["--inject-fault", f"kill:rank={n - 1}:step=17"]  # unsupervised: fires every time
    assert run_mpi(n, train_cmd(*args, *kill), timeout=60).returncode != 0
    assert run_mpi(n, train_cmd(*args, *kill, "--resume"), timeout=60).returncode != 0
    partial = tmp_path / "partial"
    for rank in range(n):
        # attempt 1 ran from step 0 and flushed after steps 5, 10, 15; attempt 2 resumed
        # from the same checkpoint (after step 10) and flushed after step 15.
        for name, steps in (
            (f"metrics-attempt1-from0-rank{rank}", range(15)),
            (f"metrics-attempt2-from10-rank{rank}", range(10, 15)),
        ):
            recs = [strict(x) for x in (partial / f"{name}.jsonl").read_text().splitlines()]
            assert [x["step"] for x in recs] == list(steps), name
            assert all(x["rank"] == rank and x["bytes"] == (7 + 3) * 8 for x in recs)
            assert {x["attempt"] for x in recs} == {int(name[15])}
    again = run_mpi(n, train_cmd(*args, "--resume"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(list(partial.glob("metrics-*"))) == 2 * n  # both dead attempts' files stay
    assert len(list(partial.glob("steps-*"))) == 2 * n  # and their step rows
    lines = [strict(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {x["step"] for x in lines} == set(range(10, 40)) and {x["attempt"] for x in lines} == {3}


def test_a_completed_run_leaves_no_partial_files(tmp_path):
    r = run_mpi(2, train_cmd(*RUN, "--out", str(tmp_path), "--flush-every", "7"), timeout=60)
    assert r.returncode == 0 and not (tmp_path / "partial").exists()
