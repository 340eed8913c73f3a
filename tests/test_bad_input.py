"""Every bad input ends the whole job within seconds: one line naming the problem, exit != 0.

Each case runs under mpirun with a hard timeout, so a rank left hanging fails the test.
"""

import sys

import numpy as np
import pytest

from tests.helpers import BIN, ROOT, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e]

SMALL = ["--samples", "300", "--features", "4", "--batch-size", "30", "--steps", "5"]


def npy_pair(tmp_path, X, y):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return str(tmp_path)


def clean(n=60, d=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)), (rng.random(n) < 0.5).astype(float)


def case_missing_file(t):
    return ["--data", str(t / "nope.npz")], "nope.npz: not found"


def case_unreadable_file(t):
    (t / "junk.npz").write_bytes(b"\x00garbage")
    return ["--data", str(t / "junk.npz")], "junk.npz: not a readable .npz archive"


def case_length_mismatch(t):
    X, y = clean()
    return ["--data", npy_pair(t, X, y[:-1])], "X and y differ in length: X has 60 rows, y has 59"


def case_nan(t):
    X, y = clean()
    X[41, 1] = np.nan
    return ["--data", npy_pair(t, X, y), "--batch-size", "6"], "X[41, 1] = nan"


def case_inf(t):
    X, y = clean()
    X[2, 0] = -np.inf
    return ["--data", npy_pair(t, X, y), "--batch-size", "6"], "X[2, 0] = -inf"


def case_bad_labels(t):
    X, y = clean()
    y[7] = 0.5
    return ["--data", npy_pair(t, X, y), "--batch-size", "6"], "class labels, got y[7] = 0.5"


def case_label_skips_a_class(t):
    X, y = clean()
    y[7] = 3  # 0, 1, 3: a class 2 with no row is more likely a wrong label than a class
    return ["--data", npy_pair(t, X, y), "--batch-size", "6"], "got no row of class 2"


def case_labels_beyond_classes(t):
    X, y = clean()
    y[7] = 3
    args = ["--data", npy_pair(t, X, y), "--batch-size", "6", "--classes", "3"]
    return args, "expected labels 0..2 (--classes 3), got y[7] = 3.0"


def libsvm_lines(t, bad_line_no, bad_line):
    lines = [f"{i % 2} 1:{i} 3:0.5" for i in range(60)]
    lines[bad_line_no - 1] = bad_line
    (t / "d.svm").write_text("\n".join(lines) + "\n")
    return str(t / "d.svm")


def case_libsvm_unsorted_indices(t):
    path = libsvm_lines(t, 58, "1 3:1 2:5")  # in the last rank's part of the file
    return ["--data", path, "--batch-size", "6"], (
        "rank 2: data file "
        + path
        + ": line 58: expected increasing feature indices, got 2 after 3"
    )


def case_libsvm_missing_label(t):
    path = libsvm_lines(t, 2, "1:0.5 3:2")
    return ["--data", path, "--batch-size", "6"], "line 2: missing label"


def case_val_data_features_differ(t):
    X, y = clean()
    np.savez(t / "val.npz", X=X[:, :2], y=y)
    args = ["--data", npy_pair(t, X, y), "--val-data", str(t / "val.npz"), "--batch-size", "6"]
    return args, "val.npz: expected 3 features (as the training data), got 2"


def case_one_class(t):
    return [*SMALL, "--classes", "1"], "--classes: expected 0 or an integer >= 2, got 1"


def case_batch_smaller_than_world(t):
    return [*SMALL, "--batch-size", "2"], "--batch-size: expected at least the world size (3"


def case_more_ranks_than_samples(t):
    return [
        "--samples",
        "2",
        "--batch-size",
        "3",
    ], "number of samples: expected at least the world size (3 ranks), got 2"


def case_zero_lr(t):
    return [*SMALL, "--lr", "0"], "--lr: expected a number > 0, got 0.0"


def case_negative_steps(t):
    return [*SMALL, "--steps", "-4"], "--steps: expected an integer >= 1, got -4"


def case_zero_batch(t):
    return [*SMALL, "--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"


def case_malformed_config(t):
    (t / "c.toml").write_text("lr = = 3\n")
    return ["--config", str(t / "c.toml")], "c.toml: malformed TOML"


def case_unknown_config_key(t):
    (t / "c.toml").write_text("learning_rate = 3\n")
    return ["--config", str(t / "c.toml")], "c.toml: unknown key 'learning_rate'"


def case_out_is_a_file(t):
    (t / "taken").write_text("")
    return [*SMALL, "--out", str(t / "taken")], "--out"


def case_config_not_utf8(t):
    (t / "c.toml").write_bytes(b"lr = 0.1 # caf\xe9\n")
    return ["--config", str(t / "c.toml")], "c.toml: expected UTF-8 text (TOML), got byte 0xe9"


def case_npy_named_npz(t):
    np.save(t / "d.npy", np.zeros((5, 2)))
    (t / "d.npy").rename(t / "d.npz")
    return ["--data", str(t / "d.npz")], "d.npz: expected a .npz archive"


def case_infinite_lr(t):
    return [*SMALL, "--lr", "inf"], "--lr: expected a finite number, got inf"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_input_fails_fast_with_one_line(tmp_path, case):
    args, message = case(tmp_path)
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    result = run_mpi(3, train_cmd(*args), timeout=30)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("dist-logreg: error")]
    assert len(errors) == 1, result.stderr  # one line, printed once (not once per rank)
    assert message in errors[0], errors[0]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_exception_on_one_rank_ends_all_ranks(tmp_path, n):
    script = ROOT / "tests" / "scripts" / "one_rank.py"
    result = run_mpi(
        n,
        [sys.executable, str(script), "raise", "train", *SMALL, "--out", str(tmp_path)],
        timeout=30,
    )
    assert result.returncode != 0
    assert f"error on rank {n - 1} of {n}: RuntimeError: simulated failure" in result.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_bench_out_is_checked_before_the_benchmark_runs(tmp_path, n):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "b.json"  # under a regular file: never writable
    result = run_mpi(
        n, [str(BIN / "dist-logreg"), "bench", "--max-bytes", "64", "--out", str(out)], timeout=30
    )
    assert result.returncode == 2, result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("dist-logreg: error")]
    assert len(errors) == 1 and f"--out {out}: cannot write there" in errors[0]
    assert "algbw" not in result.stdout  # refused before the sweep, not after it
