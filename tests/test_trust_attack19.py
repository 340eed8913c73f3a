"""Issue 29, the nineteenth attack and the eighteenth's leftovers: each test fails before
its fix."""

from __future__ import annotations

import os
import re

import pytest

from dist_logreg.cli.main import main as cli_main
from tests.helpers import BIN, run_mpi, tiny_run, train_cmd
from tests.test_model_cli import bench_file, model_file  # noqa: F401 (fixtures)


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
    from dist_logreg.train.data import rows_maybe_labeled

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


def test_integers_beyond_a_float_are_refused_naming_the_key(tmp_path, capsys):
    """W-H2: JSON's integers have no bound; one of 400 digits passed the number checks'
    type test and was an ``OverflowError`` traceback in ``report``, ``simulate --flows``,
    ``--cost-model`` and ``model predict``. Read as a float (inf), it is refused by key."""
    import json

    from dist_logreg.files import loads

    assert loads("[4611686018427387904, " + "9" * 400 + "]") == [2**62, float("inf")]
    sim = tmp_path / "s"
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "64K", "--algorithm", "ring"]
    assert cli_main(["simulate", *args, "--out", str(sim)]) == 0
    doc = json.loads((sim / "simulate.json").read_text())
    text = json.dumps(doc).replace(
        f'"time_s": {json.dumps(doc["results"][0]["time_s"])}', '"time_s": 1' + "0" * 400, 1
    )
    (sim / "simulate.json").write_text(text)
    capsys.readouterr()
    assert cli_main(["report", str(sim), "--out", str(tmp_path / "r")]) == 2
    assert "results[0].time_s: expected a finite number of seconds" in capsys.readouterr().err
    flows = tmp_path / "flows.json"
    flows.write_text(
        '{"schema": "dist-logreg/flows/1", "maps": [{"flows": [{"src": "h0", "dst": "h2", '
        '"spine": "s1", "bytes": 1' + "0" * 400 + "}]}]}"
    )
    fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"
    line = ["simulate", "--fabric", fabric, "--ranks", "4", "--bytes", "1K", "--flows", str(flows)]
    assert cli_main(line) == 2
    assert "maps[0].flows[0].bytes: expected a finite number" in capsys.readouterr().err


def test_a_cost_models_integer_beyond_a_float_is_refused(tmp_path, model_file):  # noqa: F811
    """W-H2 in ``model.json``: ``alpha_s`` of 10^400 was an ``OverflowError`` traceback in
    ``simulate --cost-model`` and ``model predict``."""
    from dist_logreg.collective import costfile
    from dist_logreg.errors import UsageError

    text = model_file.read_text()
    alpha = re.search(r'"alpha_s": ([0-9.eE+-]+)', text)
    edited = tmp_path / "m.json"
    edited.write_text(text[: alpha.start(1)] + "1" + "0" * 400 + text[alpha.end(1) :])
    with pytest.raises(UsageError, match=r"alpha_s: expected a finite number >= 0, got inf"):
        costfile.load(edited)


def test_a_placement_seed_report_refuses_is_refused_by_simulate(tmp_path, capsys):
    """W-H3: ``--placement-seed`` above 2^62 was written with exit 0 and refused by
    ``report``; W-M2: a scenario's seed past its bound was "expected a whole number >= 0"."""
    args = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1K"]
    with pytest.raises(SystemExit) as exc:
        cli_main([*args, "--placement-seed", str(2**62 + 1), "--out", str(tmp_path / "s")])
    assert exc.value.code == 2 and not (tmp_path / "s").exists()
    assert f"expected a whole number from 0 to {2**62}" in capsys.readouterr().err
    assert cli_main([*args, "--placement-seed", str(2**62), "--out", str(tmp_path / "s")]) == 0
    assert cli_main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "r")]) == 0
    bad = "background:permutation=0.5,seed=99999999999999999999999"
    args = ["simulate", "--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"]
    assert cli_main([*args, "--ranks", "4", "--bytes", "64K", "--scenario", bad]) == 2
    assert "seed: expected a whole number from 0 to 2147483647" in capsys.readouterr().err


def test_simulate_never_writes_more_rows_than_report_draws(tmp_path, capsys):
    """W-H4: 3,000 rank counts x 8 algorithms were 24,000 rows written with exit 0, which
    ``report`` refuses (20,000); a sweep of 20,800 one-row points the same."""
    from dist_logreg.report.simcheck import MAX_ROWS

    ranks = ",".join(str(i) for i in range(2, 2 + MAX_ROWS // 8 + 1))  # 2,501 counts x 8
    algs = "ring,recursive-doubling,rabenseifner,rabenseifner-far,hierarchical"
    algs += ",hierarchical-2d,reduce-scatter/ring,allgather/ring"
    args = ["simulate", "--fabric", "flat:hosts=2600", "--bytes", "1", "--algorithm", algs]
    assert cli_main([*args, "--ranks", ranks, "--out", str(tmp_path / "s")]) == 2
    assert f"expected at most {MAX_ROWS:,} rows (what report draws), got 20,008" in (
        capsys.readouterr().err
    )
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'fabric = "flat:hosts=2600"\nbytes = "1"\nalgorithm = {algs.split(",")!r}\n'
        f"ranks = [{ranks}]\n".replace("'", '"')
    )
    assert cli_main(["simulate", "--sweep", str(grid), "--out", str(tmp_path / "w")]) == 2
    assert "rows in all (what report draws), got 20,008 over 20,008 points" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "s").exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    "tag, words", [("x" * 201, "of at most 200 characters"), ("x\x1b[2Jy", "without control")]
)
def test_a_tag_is_a_short_label_without_control_characters(tag, words):
    """X-H14: a 1 MB tag was taken and its run's report ran past 110 s at 1.1 GB; X-M3: an
    ESC in a tag was copied raw into report.md and report.html."""
    from dist_logreg.errors import UsageError
    from dist_logreg.train.config import TrainConfig
    from dist_logreg.train.validation import validate

    with pytest.raises(UsageError, match=f"--tag: expected a label {words}"):
        validate(TrainConfig(tag=tag))
    validate(TrainConfig(tag="ring 1 Gbit/s, 4 ranks"))


@pytest.mark.parametrize(
    "tag, words", [("x" * 1_000_000, "1,000,000 characters"), ("x\x1by", "without control")]
)
def test_report_refuses_a_runs_huge_or_escaping_tag(tmp_path, tag, words):
    """X-H14, X-M3 in ``report``: a summary's ``run.tag`` of 1 MB, or with an ESC."""
    run = tiny_run(tmp_path / "run", run__tag=tag)
    r = run_mpi(
        1, [str(BIN / "dist-logreg"), "report", str(run), "--out", str(tmp_path / "r")], timeout=120
    )
    assert r.returncode == 2 and "run.tag: expected" in r.stderr and words in r.stderr, r.stderr


def _bad_sparse(tmp_path, kind):
    import numpy as np
    import scipy.sparse as sp

    X = sp.random(50, 6, density=0.5, format="csr", random_state=0)
    arrays = {"data": X.data, "indices": X.indices, "indptr": X.indptr.copy()}
    if kind == "indices":
        arrays["indices"] = X.indices + 100
    elif kind == "negative":
        arrays["indices"] = X.indices - 10
    elif kind == "indptr":
        arrays["indptr"][5] = 10**6
    else:
        arrays["data"] = X.data * 1j
    path = tmp_path / f"{kind}.npz"
    np.savez(path, format=np.array("csr"), shape=np.array([50, 6]), **arrays)
    np.save(tmp_path / "y.npy", (np.arange(50) % 2).astype(float))
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("indices", "expected a well-formed sparse matrix"),
        ("negative", "expected a well-formed sparse matrix"),
        ("indptr", "expected a well-formed sparse matrix"),
        ("complex", "expected real numbers in X, got dtype complex128"),
    ],
)
def test_a_sparse_matrixs_structure_and_dtype_are_checked(tmp_path, kind, words):
    """X-H15: indices out of range or a broken indptr were heap corruption (SIGABRT), a
    segmentation fault, a loss of 6e222 with exit 0, and predictions from memory outside
    the arrays; X-H16: complex values were cast to real with scipy's raw warning."""
    from dist_logreg.errors import UsageError
    from dist_logreg.train import sparse
    from dist_logreg.train.data import rows_maybe_labeled

    path = _bad_sparse(tmp_path, kind)
    with pytest.raises(UsageError, match=re.escape(words)):
        sparse.load_npz(path, tmp_path / "y.npy", "float64", None)
    with pytest.raises(UsageError, match=re.escape(words)):
        rows_maybe_labeled(str(path), 6, None)


def test_a_long_tag_or_name_makes_no_file_name_too_long(tmp_path):
    """X-H18: a multi-run report of a run tagged with 250 characters (or named so: the tag
    defaults to the folder's name) was refused for a plot name of its own making; X-L4: a
    legal 250-byte ``--out`` name was refused for its temporary file's name."""
    from dist_logreg.files import write_atomically
    from dist_logreg.report.runs import slug

    assert len(slug("t" * 250)) == 60 and slug("t" * 250) != slug("t" * 249)
    assert slug("ring 1 Gbit/s") == "ring-1-Gbit-s"
    runs = []
    for name in ("d" * 240, "short"):
        runs.append(tmp_path / name)
        args = ["--samples", "300", "--features", "4", "--batch-size", "16", "--steps", "3"]
        assert run_mpi(1, train_cmd(*args, "--out", str(runs[-1])), timeout=120).returncode == 0
    cmd = [str(BIN / "dist-logreg"), "report", *map(str, runs), "--out", str(tmp_path / "r")]
    r = run_mpi(1, cmd, timeout=120)
    assert r.returncode == 0, r.stderr
    write_atomically(tmp_path / ("p" * 250), "x")
    assert (tmp_path / ("p" * 250)).read_text() == "x"


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("steps_run", 0, "steps_run: expected a whole number of steps >= 1"),
        ("allreduce.bytes_per_step", 1e9, "allreduce.bytes_per_step: expected allreduce.bytes"),
        ("allreduce.calls_per_step", 1000, "allreduce.calls_per_step: expected allreduce.calls"),
        ("allreduce.latency_s.p50", 0.5, "allreduce.latency_s.p50: expected at most time_s.total"),
        ("time_s.data", 1000, "time_s.data: expected at most time_s.total"),
    ],
)
def test_model_predict_reads_a_run_whose_numbers_agree(tmp_path, key, value, words):
    """X-H11, X-H12: ``model predict --run`` predicted from a summary whose ``steps_run`` was
    0 (its whole time one step's), whose calls and bytes a step were not the run's over its
    steps, whose p50 or a phase was longer than the run."""
    import json

    from dist_logreg.cli.simulate_train import read_summary
    from dist_logreg.errors import UsageError

    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "30"]
    cmd = train_cmd(*args, "--allreduce", "ring", "--out", str(run))
    assert run_mpi(2, cmd, timeout=120).returncode == 0
    read_summary(str(run))  # the genuine run
    doc = json.loads((run / "summary.json").read_text())
    *parents, last = key.split(".")
    node = doc
    for k in parents:
        node = node[k]
    node[last] = value
    (run / "summary.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=re.escape(words)):
        read_summary(str(run))


def test_a_sweep_resumed_with_other_options_is_refused(tmp_path, monkeypatch, capsys):
    """W-H7: a sweep interrupted under ``--exact --eager-limit 1K`` and resumed with
    ``--eager-limit 1M`` kept the old points beside the new ones in one file (one point
    111.89 us in it, 139.84 us under the new setting), exit 0. The options are in the
    grid's key; the same options resume it."""
    from tests.helpers import interrupt_sweep

    grid, out = tmp_path / "g.toml", tmp_path / "s"
    grid.write_text(
        'fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"\nranks = [2, 3, 4]\n'
        'algorithm = ["ring"]\nbytes = ["64K"]\nexact = true\n'
    )
    args = ["--sweep", str(grid), "--out", str(out)]
    interrupt_sweep(monkeypatch, [*args, "--eager-limit", "1K"], 2)
    capsys.readouterr()
    assert cli_main(["simulate", *args, "--eager-limit", "1M", "--resume"]) == 2
    assert "grid: expected" in capsys.readouterr().err
    assert cli_main(["simulate", *args, "--eager-limit", "1K", "--resume"]) == 0


def test_a_packet_fabric_too_big_to_route_is_refused(monkeypatch):
    """W-H1: 2 ranks on a 20,000-host fabric built hosts x links routing arrays: 4.5 GB in
    75 s, then a ``MemoryError`` traceback (and up to 1,048,576 hosts were accepted)."""
    from types import SimpleNamespace

    import numpy as np

    from dist_logreg.errors import UsageError
    from dist_logreg.sim import exact, packet_floor

    monkeypatch.setattr(exact, "memory_limit", lambda: 22 << 30)
    big = SimpleNamespace(hosts=20_000, nodes=20_001, link_src=np.zeros(40_000))
    with pytest.raises(UsageError, match=r"routing this fabric's 20,000 hosts .* needs about"):
        packet_floor.check_routing_memory(big)
    packet_floor.check_routing_memory(SimpleNamespace(hosts=64, nodes=70, link_src=np.zeros(140)))


def test_queue_samples_report_could_not_read_are_refused():
    """W-H6: 56 packet rows of 100,000 queue samples wrote 310 MB (3.4 GB of memory) with
    exit 0, which ``report`` refuses (256 MiB); one row of them is about 40 MiB."""
    from dist_logreg.cli.simulate_run import check_samples_bytes, samples_bytes
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.fabric import resolve
    from dist_logreg.sim.packet_options import PacketOptions

    fab, _ = resolve("leaf-spine:leaves=2,spines=2,hosts-per-leaf=2")
    opts = PacketOptions(queue_samples=100_000)
    with pytest.raises(UsageError, match="--queue-samples: 56 row"):
        check_samples_bytes(samples_bytes(fab, 56, opts), "56 row(s) of samples")
    check_samples_bytes(samples_bytes(fab, 1, opts), "1 row(s) of samples")
    assert samples_bytes(fab, 56, PacketOptions(queue_samples=0)) == 0.0


@pytest.mark.parametrize("value, words", [(0, "expected 1"), (0.5, "a whole number of bytes")])
def test_a_traffic_matrix_is_held_to_the_bytes_counted_on_the_wire(tmp_path, value, words):
    """X-H10: a 2-rank ring run's ``traffic.json`` edited to rank 0 sending 0 (or 0.5) B was
    drawn beside a summary that counted 1760 B from every rank."""
    import json

    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "20"]
    cmd = train_cmd(*args, "--allreduce", "ring", "--out", str(run))
    assert run_mpi(2, cmd, timeout=120).returncode == 0
    here = [str(BIN / "dist-logreg"), "report", str(run)]
    assert run_mpi(1, [*here, "--out", str(tmp_path / "r0")], timeout=120).returncode == 0
    doc = json.loads((run / "traffic.json").read_text())
    doc["bytes"][0][1] = value
    (run / "traffic.json").write_text(json.dumps(doc))
    r = run_mpi(1, [*here, "--out", str(tmp_path / "r1")], timeout=120)
    assert r.returncode == 2 and "traffic.json: bytes[0]" in r.stderr and words in r.stderr, (
        r.stderr
    )


def test_a_resume_with_nothing_to_run_and_no_results_is_refused(tmp_path):
    """X-H13: a completed run whose ``summary.json`` is gone (a kill between its final
    writes), resumed at the same ``--steps``, ran zero steps and wrote a summary of zeros
    ("0 samples/s") that report refused. Refused, and a larger --steps goes on from it."""
    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64"]
    args += ["--checkpoint-every", "10", "--out", str(run)]
    assert run_mpi(1, train_cmd(*args, "--steps", "30"), timeout=120).returncode == 0
    (run / "summary.json").unlink()
    r = run_mpi(1, train_cmd(*args, "--steps", "30", "--resume"), timeout=120)
    assert r.returncode == 2 and "summary.json is missing or unreadable" in r.stderr, r.stderr
    assert not (run / "summary.json").exists()
    r = run_mpi(1, train_cmd(*args, "--steps", "40", "--resume"), timeout=120)
    assert r.returncode == 0 and "after step 30" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("key", ["run", "workload", "scenario", "cost-model", "sweep"])
def test_an_empty_path_or_spec_is_refused_not_taken_as_absent(tmp_path, capsys, key):
    """W-M1: ``--run ""`` (an unset ``$RUN``) silently gave a collective table instead of the
    step prediction, ``--cost-model ""`` the default alpha, ``--sweep ""`` one simulate; so
    did ``run = ""`` in a sweep file."""
    args = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4"]
    assert cli_main([*args, f"--{key}", ""]) == 2
    assert f"--{key}: expected" in capsys.readouterr().err
    if key != "sweep":
        grid = tmp_path / "g.toml"
        grid.write_text(f'fabric = "flat:hosts=4"\nranks = 4\n{key} = ""\n')
        assert cli_main(["simulate", "--sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
        assert f"--{key}: expected a path or a spec, got ''" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--dcqcn-timer", "--cnp-interval"])
def test_dcqcn_options_with_its_congestion_control_off_are_refused(flag):
    """W-M4: ``--cc none --dcqcn-timer 1us`` ran as without it, exit 0 (every other option
    an unset switch leaves unread is refused)."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.packet_options import parse_options

    key = flag[2:].replace("-", "_")
    with pytest.raises(UsageError, match=f"{flag}: only read with --cc dcqcn"):
        parse_options({"transport": "roce", "cc": "none", key: "1us"})
    parse_options({"transport": "roce", "cc": "dcqcn", key: "1us"})


@pytest.mark.parametrize("key", ["params=1M", "dtype=bf16"])
def test_a_workload_of_bucket_sizes_takes_no_params_or_dtype(key):
    """W-M5: ``params=1M,bucket-sizes=1K+1K`` simulated a 2 KB gradient for a 1M-parameter
    model, ``params`` silently dropped."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.workload import parse_workload

    with pytest.raises(UsageError, match="give bucket-sizes or"):
        parse_workload(f"{key},bucket-sizes=1K+1K,forward=1ms,backward=1ms")
    parse_workload("bucket-sizes=1K+1K,buckets=1,forward=1ms,backward=1ms")


def test_a_steps_arrivals_are_held_to_its_calls(tmp_path):
    """X-H9: one ``start_aligned_s`` edited to -1 drew rank 1 a second late in an 11.7 ms run;
    the first rank's call cannot end before the last rank's starts, so a step's arrivals lie
    within its longest call (plus the clocks' error and 1 ms)."""
    import json
    import shutil

    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "30"]
    assert run_mpi(2, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    here = [str(BIN / "dist-logreg"), "report"]
    assert run_mpi(1, [*here, str(run), "--out", str(tmp_path / "r0")], timeout=120).returncode == 0
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    lines = (edited / "metrics.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["start_aligned_s"] = -1.0
    lines[0] = json.dumps(row)
    (edited / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    r = run_mpi(1, [*here, str(edited), "--out", str(tmp_path / "r1")], timeout=120)
    words = f"start_aligned_s: expected step {row['step']}'s ranks to arrive within"
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_a_folder_a_live_run_writes_is_refused_to_a_second_run(tmp_path):
    """X-H17: two runs started into one new ``--out`` both ended 0; the last to finish had
    silently replaced the other's results (a run writes nothing there until it ends, so the
    second saw an empty folder). A live run's marker refuses the second, ``--force`` too; a
    marker whose process is gone is replaced."""
    import socket
    import subprocess
    import sys

    from dist_logreg.protocol import RUNNING, _started, claim, release

    out = tmp_path / "run"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / RUNNING).write_text(f"{other.pid} {socket.gethostname()} {_started(other.pid)}\n")
        assert claim(out) == f"pid {other.pid} on {socket.gethostname()}"
        args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
        for extra in ([], ["--force"]):
            r = run_mpi(1, train_cmd(*args, "--out", str(out), *extra), timeout=120)
            assert r.returncode == 2 and f"another run (pid {other.pid}" in r.stderr, r.stderr
    finally:
        other.kill()
        other.wait()
    assert claim(out) is None and (out / RUNNING).read_text().split()[0] == str(os.getpid())
    release(out)
    assert not (out / RUNNING).exists()
    assert run_mpi(1, train_cmd(*args, "--out", str(out)), timeout=120).returncode == 0
    assert (out / "summary.json").is_file() and not (out / RUNNING).exists()


@pytest.mark.parametrize("host_rate, neck", [("10GB/s", "host-internal"), ("100GB/s", "host-up")])
def test_the_bottleneck_is_the_slower_of_a_hosts_inside_and_its_link(host_rate, neck):
    """W-H5: 2 ranks a host on 2 hosts, a ring whose intra-host flows (10 GB/s) are slower
    than the 400G host link (50 GB/s) was bound by host-rate (busbw 9.97 GB/s) and named
    ``host-up`` (20 % busy); with host-rate 100 GB/s the link bounds it."""
    from dist_logreg.sim.fabric import resolve
    from dist_logreg.sim.runner import sweep

    fab, spec = resolve(f"flat:hosts=2,host-rate={host_rate}")
    doc = sweep(fab, spec, [4], ["ring"], [64 << 20], per_host=2)
    assert doc["results"][0]["bottleneck"] == neck


@pytest.mark.parametrize("name", ["", "../x", "a/b"])
def test_a_cluster_fabrics_bad_name_names_the_fabric(capsys, name):
    """W-M7: ``--fabric cluster:../x`` was refused naming ``--name``, an option simulate
    does not have."""
    args = ["simulate", "--fabric", f"cluster:{name}", "--ranks", "4", "--bytes", "1K"]
    assert cli_main(args) == 2
    assert f"--fabric cluster:{name}: NAME: expected 1-8 lower-case" in capsys.readouterr().err
