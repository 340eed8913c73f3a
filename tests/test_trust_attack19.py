"""Issue 29, the nineteenth attack and the eighteenth's leftovers: each test fails before
its fix."""

from __future__ import annotations

import re

import pytest

from dist_logreg.cli.main import main as cli_main
from tests.helpers import BIN, run_mpi, train_cmd


def test_a_sweep_point_too_big_for_its_fabric_is_refused_before_any_runs(tmp_path, capsys):
    """T-L1 / V-M4: the second fabric holds 2 hosts and the grid asks for 4 ranks; the
    first point ran (and a partial file was made) before the second was found."""
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'fabric = ["flat:hosts=4,rate=10G", "flat:hosts=2,rate=10G"]\n'
        'ranks = [4]\nalgorithm = ["ring"]\nbytes = ["1M"]\n'
    )
    assert cli_main(["simulate", "--sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "point 1" in err and "2 slots, got 4 ranks" in err
    assert "1/2 points" not in err  # nothing ran
    assert not (tmp_path / "o").exists()


def _unlabeled(tmp_path, kind):
    """A file of predict's unlabeled rows (4 features) that is not what it should be."""
    import io
    import os
    import zipfile

    import numpy as np

    if kind == "huge-header":  # a 192 B member whose header claims 8 TB
        buf = io.BytesIO()
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
        np.lib.format.write_array_header_1_0(buf, header)
        with zipfile.ZipFile(tmp_path / "x.npz", "w") as z:
            z.writestr("X.npy", buf.getvalue() + b"\0" * 64)
        return tmp_path / "x.npz"
    if kind == "fifo-in-folder":
        (tmp_path / "d").mkdir()
        os.mkfifo(tmp_path / "d" / "X.npy")
        return tmp_path / "d"
    arrays = {
        "complex-npz": np.ones((2, 4)) * (1 + 5j),
        "complex-npy": np.ones((2, 4)) * (1 + 5j),
        "strings": np.array([["a", "b", "c", "d"]]),
        "one-dimension": np.ones(4),
        "three-dimensions": np.ones((2, 2, 4)),
    }
    if kind.endswith("npz") or kind == "strings":
        np.savez(tmp_path / "x.npz", X=arrays[kind])
        return tmp_path / "x.npz"
    np.save(tmp_path / "x.npy", arrays[kind])
    return tmp_path / "x.npy"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kind, words",
    [
        ("huge-header", "X: expected an array of plain numbers that its 192 B member holds"),
        ("fifo-in-folder", "X.npy: expected a regular file, got a FIFO"),
        ("complex-npz", "expected real numbers in X, got dtype complex128"),
        ("complex-npy", "expected real numbers in X, got dtype complex128"),
        ("strings", "expected numeric X, got dtype <U1"),
        ("one-dimension", "expected X with 2 dimensions (rows, features), got shape (4,)"),
        ("three-dimensions", "expected X with 2 dimensions (rows, features), got shape (2, 2, 4)"),
    ],
)
def test_predicts_unlabeled_rows_get_the_labeled_ones_checks(tmp_path, kind, words):
    """X-H2, X-H3, X-H4, X-H5, X-M1: an unlabeled ``.npz``/``.npy``/folder skipped the
    labeled forms' checks: an 8 TB ``MemoryError`` traceback, a hang on a FIFO, complex
    features cast to real with exit 0, string or 1-D features a traceback, a 3-D X "got 2"
    features."""
    from dist_logreg.errors import UsageError
    from dist_logreg.train.readers import rows_maybe_labeled

    with pytest.raises(UsageError, match=re.escape(words)):
        rows_maybe_labeled(str(_unlabeled(tmp_path, kind)), 4, None)


def test_predict_reads_every_row_of_a_headerless_csv_with_a_byte_order_mark(tmp_path):
    """X-H1: a spreadsheet's byte-order mark made the first row a "header": 2 predictions
    of 3 rows, each row i of the output row i+1 of the input, exit 0."""
    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    rows = "0.1,0.2,0.3,0.4\n0.5,0.6,0.7,0.8\n0.9,1.0,1.1,1.2\n"
    (tmp_path / "bom.csv").write_text(rows, encoding="utf-8-sig")
    (tmp_path / "plain.csv").write_text(rows)
    out = {}
    for name in ("bom", "plain"):
        r = run_mpi(
            1,
            [
                str(BIN / "dist-logreg"),
                "predict",
                "--model",
                str(run),
                "--data",
                str(tmp_path / f"{name}.csv"),
                "--out",
                str(tmp_path / f"{name}-p.csv"),
            ],
            timeout=120,
        )
        assert r.returncode == 0 and "3 rows" in r.stdout, r.stdout + r.stderr
        out[name] = (tmp_path / f"{name}-p.csv").read_text()
    assert out["bom"] == out["plain"]


def test_epochs_whose_steps_overflow_are_bounded_not_a_traceback():
    """X-H7: ``--epochs 1e308`` made inf steps, an ``OverflowError`` traceback even beside
    ``--steps 3``; the epochs' bound is now at most 2^62 steps (which the memory estimate
    refuses), and ``--steps`` bounds the run first when it is tighter."""
    from dist_logreg.train.config import TrainConfig, total_steps

    assert total_steps(TrainConfig(batch_size=16, steps=3, epochs=1e308), 200) == 3
    assert total_steps(TrainConfig(batch_size=16, steps=None, epochs=1e308), 200) == 2**62
    assert total_steps(TrainConfig(batch_size=16, steps=None, epochs=2.0), 200) == 24  # 2 x 12


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_resume_never_appends_to_a_link_or_fifo_planted_in_partial(tmp_path, kind):
    """X-H8: a link at the resumed run's next ``partial/steps-attempt2-...`` name got its 40
    step rows appended to the file it named, outside ``--out`` (then the link was removed);
    a FIFO there blocked the run forever. Refused before training."""
    import os

    out, outside = tmp_path / "run", tmp_path / "outside.txt"
    args = ["--samples", "4000", "--features", "8", "--batch-size", "64", "--steps", "60"]
    args += ["--checkpoint-every", "10", "--flush-every", "5", "--out", str(out)]
    run_mpi(1, train_cmd(*args, "--inject-fault", "kill:rank=0:step=25"), timeout=120)
    assert (out / "partial" / "steps-attempt1-from0-rank0.jsonl").is_file()
    outside.write_text("precious\n")
    planted = out / "partial" / "steps-attempt2-from20-rank0.jsonl"
    planted.symlink_to(outside) if kind == "link" else os.mkfifo(planted)
    r = run_mpi(1, train_cmd(*args, "--resume"), timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "partial/steps-attempt2-from20-rank0.jsonl: expected a regular file" in r.stderr
    assert outside.read_text() == "precious\n"


def test_a_record_planted_in_partial_while_the_run_goes_on_is_not_followed(tmp_path):
    """X-H8, the same link made after the run's checks: the rows are not written through
    it (a warning, as any failed save of partial records)."""
    import numpy as np

    from dist_logreg.record.outputs import PartialMetrics

    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (tmp_path / "partial").mkdir()
    warned = []
    pm = PartialMetrics(tmp_path, 0, 0, warned.append, attempt=1)
    pm.steps_path.symlink_to(outside)
    marks = np.zeros((2, 5), dtype=np.int64)
    pm.flush(_NoCalls(), 2, marks, np.zeros(2, dtype=np.int64), np.zeros(2))
    assert outside.read_text() == "precious\n" and warned, warned


class _NoCalls:
    """An allreduce that recorded no call."""

    @staticmethod
    def records():
        import numpy as np

        return {"ns": np.zeros(0)}


def test_rows_before_a_resume_name_an_attempts_ranks(tmp_path):
    """X-H6 (U-H18's rank part): a row before the resume could name any rank up to 10^7,
    and a 2-rank run's report listed rank 9,999,999 as a straggler. Each step's ranks there
    are now 0 to k - 1; a 3-rank run resumed at 2 ranks keeps its 3 ranks' rows."""
    import json
    import shutil

    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64"]
    args += ["--checkpoint-every", "10", "--out", str(run)]
    assert run_mpi(3, train_cmd(*args, "--steps", "20"), timeout=120).returncode == 0
    r = run_mpi(2, train_cmd(*args, "--steps", "30", "--resume"), timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]
    assert {r["rank"] for r in rows if r["step"] == 5} == {0, 1, 2}  # the earlier world
    here = [str(BIN / "dist-logreg"), "report"]
    assert run_mpi(1, [*here, str(run), "--out", str(tmp_path / "r0")], timeout=120).returncode == 0
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    for row in rows:
        if row["step"] == 5 and row["rank"] == 2:
            row["rank"] = 9_999_999
    (edited / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_mpi(1, [*here, str(edited), "--out", str(tmp_path / "r1")], timeout=120)
    words = "steps.jsonl: rank: expected step 5's ranks (before the resume at step 20) to be 0 to 2"
    assert r.returncode == 2 and words in r.stderr, r.stderr
