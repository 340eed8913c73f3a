"""Bad values in data, labels, model files and the estimator (issue 18, parts 3 and 4)."""

import sys
import textwrap

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.train import labels as labels_mod
from dist_logreg.train.predict import load_model
from tests.conftest import BIN, WORLD_SIZES, run_mpi, train_cmd

SMALL = ["--steps", "3", "--batch-size", "4"]


def one_line(r, code=2):
    assert r.returncode == code, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


# --- labels --------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [5e9, 1e20])
def test_huge_labels_are_refused_before_allocating(label):
    y = np.array([0, 1, 0, 1, 0, label])
    with pytest.raises(UsageError, match=r"y\[5\] = .* would need .* classes in 6 rows"):
        labels_mod.resolve(y, 0, "data d")


@pytest.mark.parametrize("label", ["5e9", "1e20"])
def test_huge_labels_from_the_command_line(tmp_path, label):
    X = np.ones((6, 2))
    y = np.array([0, 1, 0, 1, 0, float(label)])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    r = run_mpi(
        1,
        train_cmd("--data", str(tmp_path / "d.npz"), *SMALL, "--out", str(tmp_path / "r")),
        timeout=60,
    )
    assert "would need" in one_line(r)


def test_every_label_zero_warns(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((20, 2)), y=np.zeros(20))
    r = run_mpi(
        1,
        train_cmd("--data", str(tmp_path / "d.npz"), *SMALL, "--out", str(tmp_path / "r")),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "warning: every training label is 0" in r.stdout + r.stderr


def test_sharded_sorted_multiclass_advises_global_sampling_not_classes(tmp_path):
    X = np.random.default_rng(0).random((30, 2))
    y = np.repeat([0.0, 1.0, 2.0], 10)  # sorted: each rank's shard sees only some classes
    np.savez(tmp_path / "d.npz", X=X, y=y)
    r = run_mpi(
        3,
        train_cmd(
            "--data",
            str(tmp_path / "d.npz"),
            "--sampling",
            "sharded",
            *SMALL,
            "--batch-size",
            "6",
            "--out",
            str(tmp_path / "r"),
        ),
        timeout=90,
    )
    assert r.returncode == 2, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("dist-logreg: error")]
    assert "--sampling global" in line and "--classes 3" not in line


# --- LIBSVM ------------------------------------------------------------------------------


def test_a_huge_libsvm_index_names_the_model_width(tmp_path):
    (tmp_path / "d.svm").write_text("1 1:0.5 2000000000:1\n0 2:1\n1 3:1\n0 1:1\n")
    r = run_mpi(
        1,
        train_cmd(
            "--data",
            str(tmp_path / "d.svm"),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "r"),
        ),
        timeout=60,
    )
    line = one_line(r)
    assert "2000000000 features" in line and "largest feature index" in line


def test_user_data_is_echoed_printable_only(tmp_path):
    (tmp_path / "d.svm").write_text("1 1:0.5\n\x1b[2J\x1b[31m1:3 2:1\n")
    r = run_mpi(
        1,
        train_cmd("--data", str(tmp_path / "d.svm"), *SMALL, "--out", str(tmp_path / "r")),
        timeout=60,
    )
    line = one_line(r)
    assert "\x1b" not in r.stderr and "line 2" in line and "\\x1b[2J" in line


# --- predict: model.npz ------------------------------------------------------------------


def npz(tmp_path, **arrays):
    path = tmp_path / "model.npz"
    np.savez(path, **arrays)
    return path


BAD_MODELS = [
    (
        dict(coef=np.array([np.nan, 1.0]), intercept=np.array(0.0)),
        "coef: expected finite numbers, got coef[0] = nan",
    ),  # noqa: E501
    (
        dict(coef=np.array([1.0, 2.0]), intercept=np.array(np.inf)),
        "intercept: expected finite numbers",
    ),  # noqa: E501
    (
        dict(coef=np.ones(4), intercept=np.zeros(1), classes=np.array([0, 1, 2])),
        "classes: expected 2 classes for a binary model (coef of shape (4,)), got 3",
    ),
    (
        dict(coef=np.ones((3, 4)), intercept=np.zeros(2)),
        "intercept: expected shape (3,) (one per class), got (2,)",
    ),  # noqa: E501
    (
        dict(coef=np.ones((3, 4)), intercept=np.zeros(3), classes=np.array([0, 1])),
        "classes: expected 3 classes (coef has 3 rows), got 2",
    ),
    (
        dict(coef=np.ones(3) + 1j, intercept=np.zeros(1)),
        "coef: expected real numbers, got complex128",
    ),  # noqa: E501
    (dict(coef=np.ones((2, 2, 2)), intercept=np.zeros(2)), "coef: expected 1 or 2 dimensions"),
    (
        dict(coef=np.ones(2), intercept=np.zeros(2)),
        "intercept: expected one number for a binary model",
    ),  # noqa: E501
    (
        dict(coef=np.ones((3, 2)), intercept=np.zeros(3), classes=np.array([2, 1, 0])),
        "classes: expected distinct classes in increasing order",
    ),
]


@pytest.mark.parametrize("arrays, want", BAD_MODELS)
def test_predict_validates_model_npz_fully(tmp_path, arrays, want):
    path = npz(tmp_path, **arrays)
    with pytest.raises(
        UsageError,
        match=rf"--model {path}: {want}".replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        load_model(path)


def test_predict_cli_refuses_a_nan_model_with_exit_2(tmp_path):
    path = npz(tmp_path, coef=np.array([np.nan, 1.0]), intercept=np.array(0.0))
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)))
    r = run_mpi(
        1,
        [
            str(BIN / "dist-logreg"),
            "predict",
            "--model",
            str(path),
            "--data",
            str(tmp_path / "d.npz"),
            "--out",
            str(tmp_path / "p.csv"),
        ],
        timeout=60,
    )
    assert "expected finite numbers" in one_line(r)
    assert not (tmp_path / "p.csv").exists()


# --- the estimator -----------------------------------------------------------------------


def test_estimator_refuses_both_C_and_l2():
    from dist_logreg.estimator import DistLogisticRegression

    X = np.random.default_rng(0).random((20, 2))
    y = (X[:, 0] > 0.5).astype(int)
    with pytest.raises(ValueError, match="give C or l2, not both"):
        DistLogisticRegression(C=1.0, l2=0.1).fit(X, y)
    assert DistLogisticRegression(l2=0.1).fit(X, y).l2_ == 0.1
    assert DistLogisticRegression(C=2.0).fit(X, y).l2_ == pytest.approx(1 / (2.0 * 20))


ESTIMATOR_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from mpi4py import MPI
    from dist_logreg.estimator import DistLogisticRegression

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(rank)
    X = rng.random((10, 3))
    y = (X[:, 0] > 0.5).astype(int)
    y[:2] = [0, 1]
    bad = size - 1
    if rank == bad:
        if sys.argv[1] == "nan":
            X[3, 1] = np.nan
        else:
            X, y = X[:0], y[:0]
    try:
        DistLogisticRegression(comm=comm, max_iter=5).fit(X, y)
        print(f"rank {rank}: fitted", flush=True)
    except ValueError as exc:
        print(f"rank {rank}: ValueError: {exc}", flush=True)
    """
)


@pytest.mark.slow  # 5-9 s per case on a loaded 2-core machine
@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", WORLD_SIZES)
@pytest.mark.parametrize("fault", ["nan", "empty"])
def test_estimator_validation_is_collective(tmp_path, n, fault):
    script = tmp_path / "fit.py"
    script.write_text(ESTIMATOR_SCRIPT)
    r = run_mpi(n, [sys.executable, str(script), fault], timeout=90)
    assert r.returncode == 0, r.stderr
    lines = sorted(ln for ln in r.stdout.splitlines() if ln.startswith("rank "))
    assert len(lines) == n, r.stdout + r.stderr
    for rank, line in enumerate(lines):
        assert line.startswith(f"rank {rank}: ValueError"), line
        if rank != n - 1:
            assert f"rank {n - 1} of {n}" in line


# --- bench --out -------------------------------------------------------------------------


def test_bench_out_refuses_to_replace_another_runs_file_unless_force(tmp_path):
    out = tmp_path / "bench.json"
    out.write_text('{"run": {"tag": "yesterday"}, "records": []}')
    bench = [
        str(BIN / "dist-logreg"),
        "bench",
        "--allreduce",
        "ring",
        "--max-bytes",
        "64",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--out",
        str(out),
    ]
    r = run_mpi(2, bench, timeout=90)
    assert r.returncode == 2, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("dist-logreg: error")]
    assert "--out " in line and "exists" in line and "--force" in line
    assert "yesterday" in out.read_text()
    r = run_mpi(2, [*bench, "--force"], timeout=90)
    assert r.returncode == 0, r.stderr
    assert "yesterday" not in out.read_text()


# --- memory: every rank of one machine together ----------------------------------------


class FakeComm:
    """What allgather returns on a machine holding ranks 0 and 2 of 3 (rank 1 elsewhere)."""

    def __init__(self, rank, ids):
        self.rank, self.ids = rank, ids

    def Get_rank(self):
        return self.rank

    def allgather(self, value):
        return list(self.ids)


def test_ranks_on_one_machine_are_counted_together_whatever_the_launcher_says(monkeypatch):
    from dist_logreg.train import startup

    for var in startup.LOCAL_SIZE_VARS:  # the launcher says 1 per node (a namespace each)
        monkeypatch.setenv(var, "1")
    ids = ["boot-a", "boot-b", "boot-a"]
    assert startup.ranks_sharing_memory(FakeComm(0, ids)) == 2
    assert startup.ranks_sharing_memory(FakeComm(1, ids)) == 1
    monkeypatch.setattr(startup, "available_memory", lambda: 10 << 30)
    startup.check_memory(4 << 30, "the data", "less", 2)  # 8 GiB of 10: fits
    with pytest.raises(UsageError, match=r"needs 6.00 GiB per rank x 2 rank\(s\) on this machine"):
        startup.check_memory(6 << 30, "the data", "less", 2)


def test_emulated_hosts_of_one_machine_share_its_memory(tmp_path):
    """Two ranks, each told by its environment that it is alone on its node (as in
    `cluster run`, one namespace per host): the check still counts both."""
    from dist_logreg.train.startup import available_memory

    avail = available_memory()
    features = int(avail * 0.6 / (8 * 1001))  # 0.6 of the memory per rank: 1.2 for two
    wrap = ["sh", "-c", 'OMPI_COMM_WORLD_LOCAL_SIZE=1 MPI_LOCALNRANKS=1 exec "$@"', "rank"]
    cmd = train_cmd(
        "--samples", "1000", "--features", str(features), *SMALL, "--out", str(tmp_path / "r")
    )
    r = run_mpi(2, [*wrap, *cmd], timeout=60)
    assert r.returncode == 2, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("dist-logreg: error")]
    assert "x 2 rank(s) on this machine" in line


# --- one BLAS thread per rank, measured ----------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_one_blas_thread_per_rank_is_enforced_and_measured(tmp_path, n, monkeypatch):
    pytest.importorskip("threadpoolctl")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)  # as a user's shell: nothing set
    out = tmp_path / "r"
    r = run_mpi(
        n, train_cmd("--samples", "64", "--features", "4", *SMALL, "--out", str(out)), timeout=60
    )
    assert r.returncode == 0, r.stderr
    import json

    blas = json.loads((out / "summary.json").read_text())["run"]["blas"]
    assert blas["source"] == "threadpoolctl"
    assert [lib["num_threads"] for lib in blas["libraries"]] == [1] * len(blas["libraries"])
