"""Defects of issue 29's twelfth attack (L-H16, L-H17, L-H21), each a test that failed before
its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.train.config import TrainConfig, to_dict
from tests.helpers import BIN, WORLD_SIZES, mpi_env, run_mpi

D = 4  # the features of the hand-made model and of its run's synthetic set


@pytest.fixture
def run_dir(tmp_path):
    """A train run's folder as predict reads it: model.npz, and the config.json of a small
    synthetic set of as many features (no training needed)."""
    d = tmp_path / "t1"
    d.mkdir()
    np.savez(d / "model.npz", coef=np.array([1.0, -2.0, 0.5, 0.25]), intercept=np.array(0.1))
    cfg = to_dict(TrainConfig(samples=200, features=D, batch_size=20, steps=5, out=str(d)))
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    return d


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "pd.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.random((10, D)), y=(np.arange(10) % 2).astype(float))
    return path


def predict(*args, n=1, cwd=None, timeout=60):
    """``dist-logreg predict ARGS``: a plain process (n = 1) or under mpirun; a hang fails
    the test after ``timeout``."""
    cmd = [str(BIN / "dist-logreg"), "predict", *map(str, args)]
    if n > 1:
        return run_mpi(n, cmd, timeout=timeout, cwd=cwd)
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, env=mpi_env(), timeout=timeout, cwd=cwd
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (a hang)")


def error_line(r, code=2) -> str:
    """The one error line of a refused command (no traceback)."""
    assert r.returncode == code, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dist-logreg: error")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# --- L-H16: predict --out through the one writer ---------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_predict_refuses_an_existing_out_and_force_replaces_it(run_dir, rows, tmp_path, n):
    out = tmp_path / "pred.csv"
    out.write_text("PRECIOUS\n")
    line = error_line(predict("--model", run_dir, "--data", rows, "--out", out, n=n))
    assert f"--out {out}: the file exists (9 B" in line
    assert "expected a new file name, or --force to replace it" in line
    assert out.read_text() == "PRECIOUS\n"  # before: replaced, exit 0
    r = predict("--model", run_dir, "--data", rows, "--out", out, "--force", n=n)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "label,p_0,p_1" and len(lines) == 11  # every rank's rows, whole
    assert sorted(os.listdir(tmp_path)) == ["pd.npz", "pred.csv", "t1"]  # no temporary left


@pytest.mark.e2e
def test_predict_never_writes_through_a_link_at_out(run_dir, rows, tmp_path):
    victim, link = tmp_path / "victim1", tmp_path / "predlink.csv"
    victim.write_text("ORIGINAL\n")
    link.symlink_to(victim.name)
    line = error_line(predict("--model", run_dir, "--data", rows, "--out", link))
    assert "got a symbolic link (it is not followed; --force replaces the link itself)" in line
    assert victim.read_text() == "ORIGINAL\n"  # before: the CSV written into it
    r = predict("--model", run_dir, "--data", rows, "--out", link, "--force")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "ORIGINAL\n" and not link.is_symlink()
    assert link.read_text().startswith("label,p_0,p_1\n")


@pytest.mark.e2e
def test_predict_refuses_a_fifo_and_a_device_at_out(run_dir, rows, tmp_path):
    fifo = tmp_path / "fifo_out"
    os.mkfifo(fifo)
    for force in ([], ["--force"]):
        # before: open() blocked on the FIFO until the timeout
        line = error_line(predict("--model", run_dir, "--data", rows, "--out", fifo, *force))
        assert f"--out {fifo}: expected a new file name, got a FIFO (named pipe)" in line
        # before: an OSError traceback (No space left on device)
        line = error_line(predict("--model", run_dir, "--data", rows, "--out", "/dev/full", *force))
        assert "--out /dev/full: expected a new file name, got a device" in line


@pytest.mark.e2e
def test_predict_sigterm_while_writing_leaves_nothing_under_the_final_name(run_dir, tmp_path):
    data = tmp_path / "big.npy"
    np.save(data, np.random.default_rng(1).random((600_000, D)))
    folder = tmp_path / "o"
    folder.mkdir()
    out = folder / "big.csv"
    cmd = [str(BIN / "dist-logreg"), "predict", "--model", str(run_dir), "--data", str(data)]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mpi_env(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size > 0 for p in folder.iterdir()):
                break  # rows are being written (to the temporary file, or before: to out)
            time.sleep(0.005)
        assert proc.poll() is None, "predict finished before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err
    assert list(folder.iterdir()) == []  # before: a partial big.csv under the final name


def test_output_parts_is_whole_or_absent(tmp_path):
    from dist_logreg.files import output_parts  # the writer predict's CSV goes through

    out = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt), output_parts(out, "--out") as fh:
        fh.write("label,p_0\n")
        raise KeyboardInterrupt("SIGTERM")
    assert list(tmp_path.iterdir()) == []
    with output_parts(out, "--out") as fh:
        fh.write("label,p_0\n")
    assert out.read_text() == "label,p_0\n"
    with pytest.raises(UsageError, match="the file exists"), output_parts(out, "--out") as fh:
        fh.write("x\n")  # appeared meanwhile: not replaced without force
    assert out.read_text() == "label,p_0\n" and len(list(tmp_path.iterdir())) == 1


def test_predict_help_offers_force():
    r = subprocess.run(
        [str(BIN / "dist-logreg"), "predict", "--help"],
        capture_output=True,
        text=True,
        env=mpi_env(),
        timeout=60,
    )
    assert r.returncode == 0 and "--force" in r.stdout and "replace an existing --out" in r.stdout


# --- L-H17: scale --out ----------------------------------------------------------------------

TRAIN = ["train", "--samples", "300", "--features", "4", "--batch-size", "30", "--steps", "4"]


def scale(*args, timeout=300):
    return subprocess.run(
        [str(BIN / "dist-logreg"), "scale", *map(str, args)],
        capture_output=True,
        text=True,
        env=mpi_env(),
        timeout=timeout,
    )


@pytest.mark.e2e
def test_scale_refuses_an_earlier_sweep_before_the_first_run(tmp_path):
    out = tmp_path / "sc1"
    out.mkdir()
    (out / "scale.json").write_text('{"points": "the measured table"}\n')
    (out / "scale.txt").write_text("the measured table\n")
    r = scale("--ranks", "1,2", "--oversubscribe", "--out", out, "--", *TRAIN)
    line = error_line(r)
    assert line == (
        f"dist-logreg: error: --out {out}: holds an earlier scale run (scale.json, scale.txt); "
        "expected a new directory or --force"
    )
    # before: both runs made, and the table replaced
    assert sorted(os.listdir(out)) == ["scale.json", "scale.txt"]
    assert (out / "scale.txt").read_text() == "the measured table\n"
    # a run's results in a pP/ of these world sizes count too (its train would refuse them)
    (out / "scale.json").unlink()
    (out / "scale.txt").unlink()
    (out / "p2").mkdir()
    (out / "p2" / "summary.json").write_text("{}\n")
    line = error_line(scale("--ranks", "1,2", "--oversubscribe", "--out", out, "--", *TRAIN))
    assert "holds an earlier scale run (p2); expected a new directory or --force" in line
    assert not (out / "p1").exists()


@pytest.mark.e2e
def test_scale_never_writes_through_links_and_force_replaces_them(tmp_path):
    out, victim = tmp_path / "sc2", tmp_path / "victim4"
    out.mkdir()
    victim.write_text("ORIG\n")
    for name in ("scale.json", "scale.txt"):
        (out / name).symlink_to("../victim4")
    ranks = ",".join(map(str, WORLD_SIZES))
    r = scale("--ranks", ranks, "--oversubscribe", "--out", out, "--", *TRAIN)
    line = error_line(r)
    assert f"--out {out / 'scale.json'}: expected a new file name, got a symbolic link" in line
    assert victim.read_text() == "ORIG\n" and not (out / "p1").exists()  # before: overwritten
    (out / "p1").mkdir()
    (out / "p1" / "summary.json").write_text("{}\n")  # an earlier sweep's run
    r = scale("--ranks", ranks, "--oversubscribe", "--out", out, "--force", "--", *TRAIN)
    assert r.returncode == 0, r.stdout + r.stderr
    assert victim.read_text() == "ORIG\n"
    for name in ("scale.json", "scale.txt"):
        assert not (out / name).is_symlink()
    doc = json.loads((out / "scale.json").read_text())
    assert [p["world_size"] for p in doc["points"]] == list(WORLD_SIZES)
    assert all("speedup" in p for p in doc["points"])  # p1 replaced through train --force
    assert (out / "scale.txt").read_text().startswith("dist-logreg scale: strong scaling")


# --- L-H21: predict --model DIR reads config.json as train reads --config --------------------


def _edit(run_dir, change):
    path = run_dir / "config.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(change if isinstance(change, list) else {**doc, **change}))
    return path


@pytest.mark.e2e
@pytest.mark.parametrize(
    "change, words",
    [
        ([1], "expected a JSON object of a run's settings, got list"),  # AttributeError
        ({"samples": 10**12}, "the synthetic data set (1000000000000 x 4 float64) needs"),
        ({"features": "x"}, "key 'features': expected int, got 'x'"),  # TypeError
        ({"seed": -1}, "--seed: expected an integer >= 0"),  # ValueError
        ({"samples": None}, "key 'samples': expected int, got None"),
        ({"classes": 10**9}, "the synthetic data set (200 x 4 float64, 1000000000 classes)"),
        ({"samples": 200.5}, "key 'samples': expected int, got 200.5"),
    ],
)
def test_predict_reads_config_json_with_trains_checks(run_dir, change, words):
    config = _edit(run_dir, change)
    line = error_line(predict("--model", run_dir))
    assert line.startswith(f"dist-logreg: error: config file {config}: ") and words in line


@pytest.mark.e2e
@pytest.mark.parametrize("n", WORLD_SIZES[1:])
def test_every_rank_refuses_a_damaged_config_json_together(run_dir, n):
    config = _edit(run_dir, {"samples": 10**12})
    line = error_line(predict("--model", run_dir, n=n))
    assert f"config file {config}: the synthetic data set (1000000000000 x 4" in line
    config = _edit(run_dir, {"samples": 200, "seed": -1})
    line = error_line(predict("--model", run_dir, n=n))
    assert f"config file {config}: --seed: expected an integer >= 0" in line


@pytest.mark.e2e
def test_predict_reads_a_genuine_config_and_not_one_it_does_not_need(run_dir, rows):
    r = predict("--model", run_dir)  # the run's own synthetic rows
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("label,p_0,p_1\n") and len(r.stdout.splitlines()) == 201
    _edit(run_dir, [1])
    r = predict("--model", run_dir, "--data", rows)  # --data: the settings are not read
    assert r.returncode == 0, r.stderr


def test_read_saved_is_trains_reader(run_dir):
    from dist_logreg.train.options import read_saved  # what predict reads config.json with

    cfg = read_saved(run_dir / "config.json")
    assert cfg.samples == 200 and cfg.features == D and cfg.epochs is None  # null: unset
    _edit(run_dir, {"model": "auto"})  # an old run's name for cost_model
    assert read_saved(run_dir / "config.json").cost_model == "auto"
    _edit(run_dir, {"lr": float("inf")})
    with pytest.raises(UsageError, match=r"config file .*config.json: --lr: expected a finite"):
        read_saved(run_dir / "config.json")


@pytest.mark.e2e
def test_train_estimates_a_k_class_synthetic_set_before_building_it(tmp_path):
    """The estimate predict shares (startup.check_synthetic_memory) counts a K-class set's
    true weights and scores: before, ``train --classes 1000000000`` (or such a config.json)
    ended in a MemoryError traceback."""
    r = subprocess.run(
        [str(BIN / "dist-logreg"), "train", "--samples", "100", "--features", "8"]
        + ["--batch-size", "10", "--steps", "2", "--classes", "1000000000"]
        + ["--out", str(tmp_path / "t")],
        capture_output=True,
        text=True,
        env=mpi_env(),
        timeout=120,
    )
    line = error_line(r)
    assert "the synthetic data set (100 x 8 float64, 1000000000 classes) needs" in line
    assert "expected a smaller --samples or --features (or --classes)" in line


# --- left by the thirteenth attack: predict --data F --out F --force (the data replaced) ---


@pytest.mark.e2e
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_predict_refuses_to_write_over_its_own_data(run_dir, tmp_path, n):
    """Before: ``--data d.csv --out d.csv --force`` predicted, then replaced the data with
    the predictions, exit 0. Every rank refuses together (a pair's file too, a link to it)."""
    data = tmp_path / "d.csv"
    data.write_text("".join(f"{i % 2},{i},{-i},{2 * i},1\n" for i in range(10)))
    before = data.read_bytes()
    line = error_line(predict("--model", run_dir, "--data", data, "--out", data, "--force", n=n))
    assert f"--out {data}: the data file it predicts ({data})" in line
    assert data.read_bytes() == before
    X, y = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(X, np.ones((4, D))), np.save(y, np.zeros(4))
    link = tmp_path / "ylink"
    link.symlink_to(y)
    r = predict("--model", run_dir, "--data", f"{X},{y}", "--out", link, "--force", n=n)
    assert "the data file it predicts" in error_line(r)
    assert np.load(y).tolist() == [0.0] * 4


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["model.npz", "config.json", "summary.json"])
@pytest.mark.parametrize("as_file", [False, True])
def test_predict_never_writes_over_its_model(run_dir, rows, name, as_file):
    """Fifteenth attack Q-M7: ``predict --out RUN/model.npz --force`` replaced the model it
    read with its CSV; seventeenth, S-M3: ``--model RUN/model.npz --out RUN/config.json``
    (or ``summary.json``) replaced the run's config (summary)."""
    if name == "summary.json":  # the fixture's run has none: a run that completed has one
        (run_dir / name).write_text("{}")
    before = (run_dir / name).read_bytes()
    model = run_dir / "model.npz" if as_file else run_dir
    r = predict("--model", model, "--data", rows, "--out", run_dir / name, "--force")
    noun = "the model it predicts with" if name == "model.npz" else "a file of the run it"
    assert f"{noun}" in error_line(r) and f"({run_dir / name})" in error_line(r)
    assert (run_dir / name).read_bytes() == before


@pytest.mark.e2e
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_predict_of_a_run_that_read_a_file_per_rank_says_so(tmp_path, n):
    """Fourteenth attack P-M8: ``predict --model RUN`` of a run trained on ``part-{rank}.npz``
    opened that name unexpanded ("data file part-{rank}.npz: not a readable .npz archive")
    instead of saying why it cannot predict without --data."""
    d = tmp_path / "t1"
    d.mkdir()
    np.savez(d / "model.npz", coef=np.array([1.0, -2.0, 0.5, 0.25]), intercept=np.array(0.1))
    cfg = TrainConfig(
        batch_size=20, steps=5, out=str(d), data="part-{rank}.npz", sampling="sharded"
    )
    (d / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    line = error_line(predict("--model", d, "--out", tmp_path / "p.csv", n=n, cwd=tmp_path))
    assert "--data: expected the rows to predict: the run read a file per rank" in line
    assert "(--data part-{rank}.npz), which its config cannot join again" in line
