"""Checkpoint files: round trip, checksum, truncation, retention, compatibility, no pickle."""

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
    assert [p.name for p in ckpt.candidates(tmp_path)] == ["ckpt-00000030.npz",
                                                           "ckpt-00000040.npz"]  # fmt: skip


def test_truncated_and_corrupted_are_detected_and_skipped(tmp_path):
    write(tmp_path, 10)
    newest, _ = write(tmp_path, 20)
    blob = newest.read_bytes()
    newest.write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(ckpt.CheckpointError, match="unreadable"):
        ckpt.load(newest)
    warnings = []
    c = ckpt.newest_valid(tmp_path, warnings.append)
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
    np.savez(path, params=np.array([{"evil": 1}], dtype=object), velocity=np.zeros(2),
             meta=np.array("{}"), checksum=np.array("x"))  # fmt: skip
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


@pytest.mark.parametrize("text, fault", [
    ("kill:rank=1:step=5", Fault("kill", 1, 5)),
    ("stall:rank=0:step=3:seconds=2.5", Fault("stall", 0, 3, 2.5)),
])  # fmt: skip
def test_parse_fault(text, fault):
    assert parse_fault(text) == fault


BAD_FAULTS = ["kill", "kill:rank=1", "stall:rank=1:step=2", "boom:rank=1:step=2",
              "kill:rank=x:step=2", "kill:rank=-1:step=2", "kill:rank=1:step=2:x=1"]  # fmt: skip


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
