"""Start-up of a train run under pytest-mpi (1-4 ranks): every rank agrees on the resolved
configuration and its data, and every bad input is ONE error raised on all ranks together.

Each case runs the real ``train`` entry (:func:`dist_logreg.train.run.run`) in-process on
the test's communicator, so dozens of cases cost one ``mpirun`` per world size. The
command-line side (one line on stderr, exit status 2) is checked end to end in
``tests/test_bad_input.py`` and ``tests/test_startup_e2e.py``.
"""

import json
import os
import zipfile

import numpy as np
import pytest

from dist_logreg.cli.main import build_parser
from dist_logreg.errors import Diverged, UsageError
from dist_logreg.train.run import run
from tests.helpers import collective_assert

pytestmark = pytest.mark.mpi

SMALL = ["--samples", "120", "--features", "4", "--batch-size", "12", "--steps", "5"]


def parse(*argv):
    return build_parser().parse_args(["train", *argv])


def shared_dir(comm, factory, name):
    """One folder for every rank of ``comm`` (rank 0 makes it)."""
    folder = comm.bcast(str(factory.mktemp(name)) if comm.Get_rank() == 0 else None)
    return folder


def fails_together(comm, argv, message, kind=UsageError):
    with pytest.raises(kind) as info:
        run(comm, parse(*argv))
    collective_assert(comm, message in str(info.value), str(info.value))


# Flags alone: each rank decides the same from the same flags.
FLAG_CASES = {
    "negative seed": (["--seed", "-1"], "--seed: expected an integer >= 0"),
    "infinite epochs": (["--epochs", "inf"], "--epochs: expected a finite number, got inf"),
    "infinite timeout": (["--comm-timeout", "inf"], "--comm-timeout: expected a finite number"),
    "infinite lr": (["--lr", "inf"], "--lr: expected a finite number, got inf"),
    "nan l2": (["--l2", "nan"], "--l2: expected a finite number, got nan"),
    "empty data": (["--data", ""], "--data: expected a non-empty value, got ''"),
    "empty out": (["--out", " "], "--out: expected a non-empty value"),
    "bucket below one element": (
        ["--bucket-bytes", "3"],
        "--bucket-bytes: expected 0 (no buckets) or at least one element (8 bytes at float64)",
    ),
    "fault at the last step": (
        ["--inject-fault", "kill:rank=0:step=5"],
        "--inject-fault step: expected a step <= 4 (the last), got 5",
    ),
    "stall of nan seconds": (
        ["--inject-fault", "stall:rank=0:step=1:seconds=nan"],
        "--inject-fault: expected a finite number of seconds",
    ),
    "records beyond memory": (["--steps", "100000000000"], "recording 100000000000 steps"),
    "data beyond memory": (
        ["--features", "1000000000000"],
        "the synthetic data set (120 x 1000000000000 float64) needs",
    ),
}


@pytest.mark.parametrize("case", FLAG_CASES, ids=list(FLAG_CASES))
def test_bad_flags_fail_every_rank_together(comm, tmp_path_factory, case):
    argv, message = FLAG_CASES[case]
    out = shared_dir(comm, tmp_path_factory, "out")
    fails_together(comm, [*SMALL, "--out", out, *argv], message)


def _fifo(folder):
    os.mkfifo(f"{folder}/d.npz")
    return ["--data", f"{folder}/d.npz"], "expected a regular file, got a FIFO"


def _fifo_config(folder):
    os.mkfifo(f"{folder}/c.toml")
    return ["--config", f"{folder}/c.toml"], "config file"


def _latin1_config(folder):
    with open(f"{folder}/c.toml", "wb") as fh:
        fh.write(b"lr = 0.1\n# caf\xe9\n")
    return ["--config", f"{folder}/c.toml"], "expected UTF-8 text (TOML), got byte 0xe9"


def _npy_named_npz(folder):
    np.save(f"{folder}/d.npy", np.zeros((4, 2)))
    os.rename(f"{folder}/d.npy", f"{folder}/d.npz")
    return ["--data", f"{folder}/d.npz"], "expected a .npz archive (a zip of X.npy and y.npy)"


def _zip_of_text(folder):
    with zipfile.ZipFile(f"{folder}/d.npz", "w") as z:
        z.writestr("X.npy", "not an array")
        z.writestr("y.npy", "nor this")
    return ["--data", f"{folder}/d.npz"], "expected member X to be a .npy array"


def _complex_x(folder):
    np.savez(f"{folder}/d.npz", X=np.ones((40, 2)) * 1j, y=np.zeros(40))
    return ["--data", f"{folder}/d.npz"], "expected real numbers in X, got dtype complex128"


def _csv_typo_in_row_one(folder):
    with open(f"{folder}/d.csv", "w") as fh:
        fh.write("1.0,2x,0\n" + "1.0,2.0,1\n" * 39)
    return ["--data", f"{folder}/d.csv"], "got a mix: column 1 is '2x'"


FILE_CASES = [
    _fifo,
    _fifo_config,
    _latin1_config,
    _npy_named_npz,
    _zip_of_text,
    _complex_x,
    _csv_typo_in_row_one,
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.__name__[1:] for c in FILE_CASES])
def test_bad_files_fail_every_rank_together_without_blocking(comm, tmp_path_factory, case):
    folder = shared_dir(comm, tmp_path_factory, "files")
    argv = comm.bcast(case(folder) if comm.Get_rank() == 0 else None)
    comm.Barrier()
    args, message = argv
    fails_together(comm, [*SMALL, "--batch-size", "4", *args, "--out", f"{folder}/o"], message)


def test_csv_with_a_byte_order_mark_has_no_header(comm, tmp_path_factory):
    folder = shared_dir(comm, tmp_path_factory, "bom")
    if comm.Get_rank() == 0:
        rows = "".join(f"{i % 7}.5,{i % 3}.0,{i % 2}\n" for i in range(40))
        with open(f"{folder}/d.csv", "w", encoding="utf-8-sig") as fh:
            fh.write(rows)  # starts with a BOM: no header, 40 data rows
    comm.Barrier()
    out = f"{folder}/out"
    assert (
        run(comm, parse(*SMALL, "--batch-size", "4", "--data", f"{folder}/d.csv", "--out", out))
        == 0
    )
    summary = comm.bcast(json.load(open(f"{out}/summary.json")) if comm.Get_rank() == 0 else None)
    collective_assert(comm, summary["data"]["samples"] == 40, str(summary["data"]))


FLAGS_THAT_DIFFER = [
    ("--steps", "5", "6"),
    ("--check-every", "2", "3"),
    ("--seed", "1", "2"),
    ("--features", "4", "5"),
    ("--dtype", "float64", "float32"),
    ("--batch-size", "12", "13"),
    ("--lr", "0.5", "0.25"),
]


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("flag, mine, other", FLAGS_THAT_DIFFER)
def test_ranks_that_disagree_stop_with_the_setting_and_the_ranks(
    world_comm, tmp_path_factory, flag, mine, other
):
    comm = world_comm
    size, rank = comm.Get_size(), comm.Get_rank()
    out = shared_dir(comm, tmp_path_factory, "out")
    value = other if rank == size - 1 else mine
    expected = (
        f"ranks disagree on {flag}: "
        f"{_shown(flag, mine)} on rank{'s' if size > 2 else ''} "
        f"{', '.join(map(str, range(size - 1)))}; {_shown(flag, other)} on rank {size - 1}"
    )
    fails_together(comm, [*SMALL, "--out", out, flag, value], expected)


def _shown(flag, text):
    return repr(text) if flag == "--dtype" else text


@pytest.mark.mpi(min_size=2)
def test_same_path_with_other_rows_on_one_rank_is_caught(world_comm, tmp_path_factory, monkeypatch):
    comm = world_comm
    size, rank = comm.Get_size(), comm.Get_rank()
    here = tmp_path_factory.mktemp(f"node{rank}")  # each rank's own "node"
    rng = np.random.default_rng(7 if rank == size - 1 else 3)  # the last node holds other rows
    np.savez(here / "d.npz", X=rng.standard_normal((40, 3)), y=np.zeros(40))
    monkeypatch.chdir(here)  # the same relative path everywhere
    out = shared_dir(comm, tmp_path_factory, "out")
    with pytest.raises(UsageError) as info:
        run(comm, parse("--data", "d.npz", "--batch-size", "4", "--steps", "2", "--out", out))
    text = str(info.value)
    collective_assert(
        comm,
        text.startswith("ranks disagree on the data")
        and f"on rank {size - 1}" in text
        and "the same --data path holds different files" in text,
        text,
    )


def test_config_json_records_the_resolved_steps(comm, tmp_path_factory):
    out = shared_dir(comm, tmp_path_factory, "out")
    # --epochs 2 of floor(120 / 12) = 10 steps each: 20 steps, stated nowhere on the line.
    args = ["--samples", "120", "--features", "4", "--batch-size", "12", "--epochs", "2"]
    assert run(comm, parse(*args, "--out", out)) == 0
    cfg = comm.bcast(json.load(open(f"{out}/config.json")) if comm.Get_rank() == 0 else None)
    collective_assert(comm, cfg["steps"] == 20 and cfg["epochs"] == 2, str(cfg))


def test_a_non_finite_final_model_is_a_divergence(comm, tmp_path_factory):
    out = shared_dir(comm, tmp_path_factory, "out")
    # One step from zero: the loss is log 2, finite; the update makes |w| ~ 1e307, whose
    # objective (l2/2 ||w||^2) overflows. That must not end with exit 0.
    fails_together(
        comm,
        [*SMALL, "--steps", "1", "--lr", "1e308", "--out", out],
        "after the last step (1): the final",
        kind=Diverged,
    )
