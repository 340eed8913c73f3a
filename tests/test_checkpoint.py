"""Checkpoint files: round trip, checksum, truncation, retention, compatibility, no pickle."""

import os
from pathlib import Path

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.train import checkpoint as ckpt
from dist_logreg.train.faults import Fault, parse_fault, planned

META = {"trajectory": {"lr": 0.5, "seed": 1}, "sampler": {"steps_per_epoch": 10}}


def write(tmp_path, step, keep=10):
    params = np.arange(5.0) * step
    return ckpt.save(tmp_path, step, params, -params, META, keep), params


def test_round_trip(tmp_path):
    path, params = write(tmp_path, 30)
    assert path.name == "ckpt-00000030.npz"
    c = ckpt.load(path)
    assert c.step == 30 and c.meta["trajectory"] == META["trajectory"]
    np.testing.assert_array_equal(c.params, params)
    np.testing.assert_array_equal(c.velocity, -params)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_keeps_only_the_newest(tmp_path):
    for step in (10, 20, 30, 40):
        write(tmp_path, step, keep=2)
    assert [p.name for p in ckpt.candidates(tmp_path)] == ["ckpt-00000030.npz", "ckpt-00000040.npz"]


def test_truncated_and_corrupted_are_detected_and_skipped(tmp_path):
    write(tmp_path, 10)
    newest, _ = write(tmp_path, 20)
    blob = newest.read_bytes()
    newest.write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(ckpt.CheckpointError, match="unreadable"):
        ckpt.load(newest)
    warnings = []
    c, _ = ckpt.newest_usable(tmp_path, META["trajectory"], 100, warnings.append)
    assert c.step == 10 and "ckpt-00000020.npz" in warnings[0]


def test_flipped_value_fails_the_checksum(tmp_path):
    path, params = write(tmp_path, 10)
    assert ckpt.load(path).step == 10  # intact: loads
    # Re-save the same arrays with one value changed but the old checksum kept.
    with np.load(path, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    parts["params"] = parts["params"].copy()
    parts["params"][2] += 1e-12
    np.savez(path, **parts)
    with pytest.raises(ckpt.CheckpointError, match="checksum mismatch"):
        ckpt.load(path)


def test_pickled_content_is_refused(tmp_path):
    path = tmp_path / "ckpt-00000010.npz"
    np.savez(
        path,
        params=np.array([{"evil": 1}], dtype=object),
        velocity=np.zeros(2),
        meta=np.array("{}"),
        checksum=np.array("x"),
    )
    with pytest.raises(ckpt.CheckpointError, match="unreadable"):
        ckpt.load(path)


def test_incompatible_setting_is_named(tmp_path):
    path, _ = write(tmp_path, 10)
    c = ckpt.load(path)
    ckpt.check_compatible(c, {"lr": 0.5, "seed": 1})
    with pytest.raises(ckpt.CheckpointError, match="written with lr = 0.5, this run has lr = 0.1"):
        ckpt.check_compatible(c, {"lr": 0.1, "seed": 1})


def test_checkpointer_reports_a_failed_write_and_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    warnings = []
    saver = ckpt.Checkpointer(0, blocker / "sub", 2, META, warnings.append)
    assert saver.save(10, np.zeros(3), np.zeros(3)) is None
    assert "could not be written" in warnings[0] and saver.last is None
    other_rank = ckpt.Checkpointer(1, tmp_path, 2, META, warnings.append)
    assert other_rank.save(10, np.zeros(3), np.zeros(3)) is None  # only rank 0 writes
    assert ckpt.candidates(tmp_path) == []


@pytest.mark.parametrize(
    "text, fault",
    [
        ("kill:rank=1:step=5", Fault("kill", 1, 5)),
        ("stall:rank=0:step=3:seconds=2.5", Fault("stall", 0, 3, 2.5)),
    ],
)
def test_parse_fault(text, fault):
    assert parse_fault(text) == fault


BAD_FAULTS = [
    "kill",
    "kill:rank=1",
    "stall:rank=1:step=2",
    "boom:rank=1:step=2",
    "kill:rank=x:step=2",
    "kill:rank=-1:step=2",
    "kill:rank=1:step=2:x=1",
]


@pytest.mark.parametrize("text", BAD_FAULTS)
def test_parse_fault_rejects(text):
    with pytest.raises(UsageError, match="--inject-fault"):
        parse_fault(text)


def test_faults_fire_on_the_first_attempt_only(monkeypatch):
    fault = Fault("kill", 1, 5)
    monkeypatch.delenv("DIST_LOGREG_ATTEMPT", raising=False)
    assert planned(fault, 1) == fault and planned(fault, 0) is None
    monkeypatch.setenv("DIST_LOGREG_ATTEMPT", "1")
    assert planned(fault, 1) is None


TRAJ = {"lr": 0.5, "seed": 1, "features": 4}


def write_run(tmp_path, step, traj=TRAJ, keep=10, protect=()):
    run = ckpt.run_id(traj)
    meta = {"trajectory": traj, "sampler": {"steps_per_epoch": 10}}
    params = np.arange(5.0) * step
    return ckpt.save(tmp_path, step, params, -params, meta, keep, run, protect)


def test_run_identity_is_in_the_name_and_pruning_spares_other_runs(tmp_path):
    other = {**TRAJ, "lr": 0.25}
    for step in (10, 20, 30):
        write_run(tmp_path, step, other)
    for step in (10, 20, 30):
        write_run(tmp_path, step, keep=1)
    mine, theirs = ckpt.run_id(TRAJ), ckpt.run_id(other)
    assert mine != theirs and len(mine) == 12
    names = sorted(p.name for p in ckpt.candidates(tmp_path))
    assert names == sorted(
        [f"ckpt-00000030-{mine}.npz"] + [f"ckpt-000000{s}-{theirs}.npz" for s in (10, 20, 30)]
    )


def test_resume_takes_the_newest_compatible_checkpoint_at_or_before_the_last_step(tmp_path):
    for step in (10, 20, 30):
        write_run(tmp_path, step)
    write_run(tmp_path, 50, {**TRAJ, "lr": 0.25})  # newer, another run's
    found, notes = ckpt.newest_usable(tmp_path, TRAJ, 100, print)
    assert found.step == 30 and "skipped 1 newer checkpoint(s) of other runs" in notes
    found, notes = ckpt.newest_usable(tmp_path, TRAJ, 25, print)
    assert found.step == 20 and "past the run's last step (25)" in notes[0]
    assert ckpt.newest_usable(tmp_path, TRAJ, 5, print)[0] is None
    # Only other runs' checkpoints: refused, naming the setting (the wrong directory?).
    with pytest.raises(ckpt.CheckpointError, match="written with lr = 0.25, this run has lr = 0.1"):
        ckpt.newest_usable(tmp_path, {**TRAJ, "lr": 0.1}, 100, print)  # names the newest


def test_a_checkpoint_with_a_valid_checksum_but_the_wrong_shape_is_skipped(tmp_path):
    good = write_run(tmp_path, 10)
    bad_traj = dict(TRAJ)
    meta = {"trajectory": bad_traj, "sampler": {"steps_per_epoch": 10}}
    ckpt.save(tmp_path, 20, np.zeros(3), np.zeros(3), meta, 10, ckpt.run_id(TRAJ))  # 3 != 4 + 1
    with pytest.raises(ckpt.CheckpointError, match=r"expected params of shape \(4 \+ 1,\)"):
        ckpt.load(next(tmp_path.glob("ckpt-00000020-*.npz")))
    warnings = []
    found, _ = ckpt.newest_usable(tmp_path, TRAJ, 100, warnings.append)
    assert found.path == good and "expected params of shape" in warnings[0]


def test_temporary_files_of_a_killed_write_are_cleaned(tmp_path):
    run = ckpt.run_id(TRAJ)
    mine = tmp_path / f".ckpt-{run}-x1.tmp"
    fresh_other = tmp_path / ".ckpt-0123456789ab-x2.tmp"  # another run, maybe writing now
    stale_other = tmp_path / ".ckpt-0123456789ab-x3.tmp"
    for p in (mine, fresh_other, stale_other):
        p.write_bytes(b"partial")
    old = os.path.getmtime(stale_other) - ckpt.STALE_TMP_S - 1
    os.utime(stale_other, (old, old))
    assert sorted(ckpt.clean_temporary(tmp_path, run)) == sorted([mine, stale_other])
    assert fresh_other.exists() and not mine.exists() and not stale_other.exists()


def test_the_good_state_is_kept_out_of_turn(tmp_path):
    meta = {"trajectory": TRAJ, "sampler": {"steps_per_epoch": 10}}
    saver = ckpt.Checkpointer(0, tmp_path, 1, meta, print)
    z = np.zeros(5)
    losses = [0.69, 0.6, 0.5, 0.45]
    saver.save(2, z, z, np.array(losses[:2]))
    saver.save(4, z, z, np.array(losses))
    assert saver.good[0] == 4
    losses += [0.8, 5.0, 1e6]  # rising sharply: 5.0 > 2 x 0.45
    saver.save(6, z, z, np.array(losses[:6]))
    saver.save(7, z, z, np.array(losses))
    assert saver.good[0] == 4 and saver.good[2] == 0.45
    kept = sorted(ckpt.step_of(p) for p in ckpt.candidates(tmp_path))
    assert kept == [4, 7]  # keep=1 keeps the newest, and the good one out of turn
    losses += [0.44]  # recovered: the newest good one replaces the old, which goes
    saver.save(8, z, z, np.array(losses))
    assert saver.good[0] == 8 and [ckpt.step_of(p) for p in ckpt.candidates(tmp_path)] == [8]


def test_another_label_column_is_another_run():
    from types import SimpleNamespace

    from dist_logreg.train.config import TrainConfig

    ds = SimpleNamespace(n_samples=10, n_total=10, n_features=3)
    a = ckpt.trajectory(TrainConfig(data="d.csv", label_column="y"), ds, "fp")
    b = ckpt.trajectory(TrainConfig(data="d.csv", label_column="z"), ds, "fp")
    assert ckpt.run_id(a) != ckpt.run_id(b)
    c = ckpt.Checkpoint(10, np.zeros(4), np.zeros(4), {"trajectory": a}, Path("ckpt"))
    with pytest.raises(ckpt.CheckpointError, match="written with label_column = 'y'"):
        ckpt.check_compatible(c, b)
    other_rows = ckpt.trajectory(TrainConfig(data="d.csv", label_column="y"), ds, "fp2")
    with pytest.raises(ckpt.CheckpointError, match="written with fingerprint = 'fp'"):
        ckpt.check_compatible(c, other_rows)  # same path, other rows
