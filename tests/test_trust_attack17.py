"""Issue 29, the seventeenth attack: each test fails before its fix (the IDs are the
attack's, S- on training and its readers, T- on the simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BIN, run_mpi, train_cmd
from tests.test_model_cli import bench_file, model_file  # noqa: F401 (fixtures)


def dl(*args: str, cwd=None):
    """``dist-logreg ARGS`` at one rank (train and predict start MPI: not in this process)."""
    return run_mpi(1, [str(BIN / "dist-logreg"), *args], timeout=120, cwd=cwd)


def _npz(path, rows: int, seed: int) -> None:
    r = np.random.default_rng(seed)
    X = r.normal(size=(rows, 5))
    np.savez(path, X=X, y=(X[:, 0] > 0).astype(float))


def test_predict_of_a_run_reads_its_own_data_or_says_why_not(tmp_path):
    """S-M1: ``predict --model RUN`` from another folder predicted whatever ``d.npz`` was
    there (50 rows of another set, against the 480 training rows the summary records), and
    without one said "not a readable .npz archive"."""
    _npz(tmp_path / "d.npz", 600, 1)
    args = ["--data", "d.npz", "--batch-size", "32", "--steps", "3", "--val-fraction", "0.2"]
    assert run_mpi(1, train_cmd(*args, "--out", "run"), timeout=120, cwd=tmp_path).returncode == 0
    r = dl("predict", "--model", "run", "--out", "p.csv", cwd=tmp_path)
    assert r.returncode == 0 and "600 rows" in r.stdout, r.stderr  # the run's own data
    (tmp_path / "other").mkdir()
    r = dl("predict", "--model", "../run", "--out", "p.csv", cwd=tmp_path / "other")
    assert r.returncode == 2 and "data d.npz (its config.json's data): not found from" in r.stderr
    _npz(tmp_path / "other" / "d.npz", 50, 5)
    r = dl("predict", "--model", "../run", "--out", "p.csv", cwd=tmp_path / "other")
    words = "expected the 480 training rows its summary.json records, got 40 of 50"
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert not (tmp_path / "other" / "p.csv").exists()


def test_a_calls_start_may_follow_the_runs_evaluations():
    """S-H1: a genuine run with ``--eval-every`` (40 evaluations of 500,000 held-out rows,
    2 s, beside a loop of 20 ms) was refused: its calls start after the evaluations, which
    the loop's total leaves out. Its rows, as train wrote them, by hand."""
    from types import SimpleNamespace

    from dist_logreg.errors import UsageError
    from dist_logreg.report.trainfile import within_summary

    nan = np.full(2, np.nan)
    calls = {"step": np.array([0, 39]), "bytes": np.array([72.0, 72.0]), "seconds": nan}
    calls |= {"start_s": np.array([0.0, 1.885]), "start_aligned_s": nan}
    run = SimpleNamespace(steps=None, calls=calls)
    summary = {"steps": 40, "time_s_per_rank": {"total": {"max": 0.0196}}}
    summary |= {"allreduce": {"bytes": 2880.0}, "validation": {"eval_time_s": 2.02}}
    within_summary(Path("ev"), run, summary, 0)  # 1.885 s: within 0.0196 + 2.02 s
    calls["start_s"][1] = 9.0  # past twice the loop and its evaluations, and 1 s
    with pytest.raises(UsageError, match="start_s: expected within the run"):
        within_summary(Path("ev"), run, summary, 0)


@pytest.mark.parametrize("flag", ["--csv", "--out", "--fit"])
def test_bench_never_writes_over_the_cost_model_it_reads(model_file, tmp_path, flag):  # noqa: F811
    """S-M4: ``bench --cost-model m.json --csv m.json --force`` (or ``--out``, ``--fit``)
    replaced the cost model it read with its CSV."""
    m = tmp_path / "m.json"
    m.write_bytes(model_file.read_bytes())
    args = ["bench", "--allreduce", "ring", "--min-bytes", "1K", "--max-bytes", "4K"]
    args += ["--iters", "2", "--cost-model", str(m), flag, str(m), "--force"]
    r = dl(*args, cwd=tmp_path)
    words = f"{flag} {m}: the cost model it reads ({m}); expected another file name"
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert m.read_bytes() == model_file.read_bytes()


def test_a_run_that_died_twice_lists_every_attempt(tmp_path):
    """S-M2: a run killed at step 25, resumed from step 20 and killed at 25 again, then
    resumed to the end, was reported as "2 attempts" (the second, whose steps the third ran
    again, left out) beside a summary.json of 3."""
    args = ["--samples", "4000", "--features", "16", "--batch-size", "64", "--steps", "60"]
    args += ["--checkpoint-every", "10", "--flush-every", "5", "--out", str(tmp_path / "k")]
    kill = ["--inject-fault", "kill:rank=1:step=25"]
    for extra in (kill, [*kill, "--resume"], ["--resume"]):
        run_mpi(2, train_cmd(*args, *extra), timeout=120)
    summary = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert summary["attempts"]["count"] == 3
    r = dl("report", str(tmp_path / "k"), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert "3 attempts (resumed from checkpoints): attempt 1: steps 0..24 (died" in text
    assert "attempt 2: steps 20..24 (died; a later attempt ran its steps again)" in text
    assert "attempt 3: steps 20..59" in text


@pytest.mark.parametrize("key, value", [("max", 0), ("min", 99.0), ("median", -1.0)])
def test_a_ranks_times_are_in_order(tmp_path, key, value):
    """S-H2: ``time_s_per_rank.total.max`` edited to 0 was a ZeroDivisionError traceback."""
    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "3"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    doc = json.loads((run / "summary.json").read_text())
    doc["time_s_per_rank"]["total"][key] = value
    (run / "summary.json").write_text(json.dumps(doc))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    words = "summary.json: time_s_per_rank.total: expected min <= median <= max, got"
    if value < 0:  # refused by the summary's schema first (the eighteenth attack's U-H5)
        words = "summary.json: time_s_per_rank.total.median: expected a finite number of"
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def completed_then_resumed(run: Path, first: int, total: int) -> Path:
    """A serial run of ``first`` steps (checkpoints every 10), resumed to ``total``."""
    args = ["--samples", "2000", "--features", "16", "--batch-size", "64"]
    args += ["--checkpoint-every", "10", "--out", str(run)]
    assert run_mpi(1, train_cmd(*args, "--steps", str(first)), timeout=120).returncode == 0
    resumed = train_cmd(*args, "--steps", str(total), "--resume")
    assert run_mpi(1, resumed, timeout=120).returncode == 0
    return run


def _last_row(path: Path, **edit) -> None:
    lines = path.read_text().splitlines()
    lines[-1] = json.dumps({**json.loads(lines[-1]), **edit})
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "name, edit, words",
    [
        ("metrics.jsonl", {"seconds": 1e5}, "seconds: expected at most"),
        ("metrics.jsonl", {"bytes": 1e18}, "bytes: expected at most"),
        ("steps.jsonl", {"comm_s": 1e5}, "comm_s: expected at most"),
    ],
)
def test_a_resumed_runs_own_rows_are_held_to_its_summary(tmp_path, name, edit, words):
    """S-H3: in a run resumed from step 20, a call of 1e5 s (1 EB, a 28-hour step) in the
    resumed steps was drawn: every bound was skipped once the run had resumed."""
    run = completed_then_resumed(tmp_path / "a", 20, 40)
    assert dl("report", str(run), "--out", str(tmp_path / "g")).returncode == 0
    _last_row(run / name, **edit)
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and f"{name}: {words}" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def flat_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "s"
    args = ["--fabric", "flat:hosts=8,rate=100G", "--ranks", "2,5", "--bytes", "1K"]
    assert (
        run_mpi(1, [str(BIN / "dist-logreg"), "simulate", *args, "--out", str(out)]).returncode == 0
    )
    return out


def _set(*path, value):
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, words",
    [  # T-H2: a KeyError, an AttributeError
        (_set("fabric", "params", "alpha", value=5e-6), "fabric.params.alpha: expected {value"),
        (_set("fabric", "shape", value=5), "fabric.shape: expected the fabric's shape, got 5"),
        # T-H3: an OverflowError
        (
            _set("placement", "ranks_per_host", value=1e20),
            "whole number of ranks from 1 to 1000000",
        ),
        (_set("placement", "ranks_per_host", value=2**63), "ranks from 1 to 1000000, got 9.2"),
    ],
)
def test_a_simulate_json_edited_is_one_line(flat_sim, tmp_path, edit, words):
    from tests.test_trust_leftovers import _edited

    r = _edited(flat_sim, tmp_path, edit)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_params_entry_without_its_source_is_read(flat_sim, tmp_path):
    """T-H2: an entry without ``source`` was a KeyError; it is a value of no stated source."""
    from tests.test_trust_leftovers import _edited

    r = _edited(flat_sim, tmp_path, lambda d: d["fabric"]["params"]["alpha"].pop("source"))
    assert r.returncode == 0, r.stderr


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n", [2, 3])
def test_a_signal_to_one_rank_of_a_sweep_ends_the_job(tmp_path, n):
    """T-H1: SIGTERM to one rank of ``mpirun -n 2 ... simulate --sweep`` left it waiting in
    MPI_Finalize and the others in their allgather, forever (nothing printed, a SIGTERM to
    mpirun no help). The rank now says so and aborts the job; the points stay (--resume)."""

    from tests.helpers import signal_sweep
    from tests.test_trust_attack3b import GRID

    status, err = signal_sweep(tmp_path, n, GRID, lambda ranks: [max(ranks)])  # one rank
    assert status != 0, err[-800:]
    words = "interrupted (SIGTERM); finished points kept in o (--resume); rank "
    assert words in err and f" of {n}, aborting all ranks" in err, err[-800:]
    assert "Traceback" not in err, err[-800:]


@pytest.mark.parametrize(
    "edit, words",
    [
        (("residuals", "rows", float("nan")), "residuals.rows: expected a whole number"),
        (("residuals", "rows", -3), "residuals.rows: expected a whole number"),
        (("residuals", "median_rel", 1e300), "residuals.median_rel: expected a relative error"),
        (("residuals", "median_rel", 50.0), "residuals.median_rel: expected at most max_rel"),
        (("gamma", "overhead_s", -5.0), "gamma[0].overhead_s: expected a finite number >= 0"),
        (("gamma", "sizes", "x"), "gamma[0].sizes: expected a whole number of sizes"),
    ],
)
def test_a_cost_models_residuals_are_checked(model_file, tmp_path, edit, words):  # noqa: F811
    """S-H4: ``model predict`` of a model whose residuals say ``rows`` NaN, -3, or a median
    of 1e300 above its worst printed "over nan measurements" and a 300-digit percent."""
    from tests.test_model_cli import dl as here

    doc = json.loads(model_file.read_text())
    block, key, value = edit
    if block == "gamma":
        doc["gamma"][0][key] = value
    else:
        doc["algorithms"]["ring"]["residuals"][key] = value
    m = tmp_path / "m.json"
    m.write_text(json.dumps(doc))
    r = here("model", "predict", "--model", str(m), "--ranks", "8", "--bytes", "1M")
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert here("model", "predict", "--model", str(model_file), "--ranks", "8").returncode == 0


@pytest.mark.parametrize(
    "extra, words",
    [  # S-H5: an OverflowError before the config was read; S-M7: a stall in MPI_Init
        (["--comm-timeout", "1e300"], "--comm-timeout: expected 0 (off) or 0.1 to 1e+06 seconds"),
        (["--comm-timeout", "1e-300"], "--comm-timeout: expected 0 (off) or 0.1 to 1e+06"),
        # S-H6: an OverflowError in time.sleep, mid-run
        (["--inject-fault", "stall:rank=0:step=1:seconds=1e10"], "a stall of at most 1e+06 s"),
    ],
)
def test_train_bounds_its_waits(tmp_path, extra, words):
    args = ["--samples", "500", "--features", "4", "--batch-size", "32", "--steps", "3"]
    r = run_mpi(1, train_cmd(*args, "--out", str(tmp_path / "o"), *extra), timeout=120)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_run_scale_times_out_is_named_with_a_status_of_the_table(tmp_path):
    """S-M8: a run ``scale --timeout`` killed was "failed (exit status -9)" and scale's
    own status 247 ((-9) & 0xff); a timeout of 1e-300 s was taken."""
    from tests.test_scale import dist_logreg

    train = ["train", "--samples", "20000", "--features", "256", "--batch-size", "1024"]
    train += ["--steps", "100000"]  # minutes: killed after 3 s
    r = dist_logreg(
        "scale", "--ranks", "1", "--timeout", "3", "--out", str(tmp_path / "a"), "--", *train
    )
    assert r.returncode == 137, r.stderr
    assert "the run at 1 rank(s) took longer than --timeout 3 s; killed (exit status 137)" in (
        r.stdout + r.stderr
    )
    r = dist_logreg(
        "scale", "--ranks", "1", "--timeout", "1e-300", "--out", str(tmp_path / "b"), "--", *train
    )
    assert r.returncode == 2 and "--timeout: expected a number of seconds from 0.001" in r.stderr


@pytest.mark.parametrize(
    "first, second", [("batch-size", "batch_size"), ("batch_size", "batch-size")]
)
def test_a_train_config_key_spelled_two_ways_is_refused(first, second):
    """S-M5: ``batch-size = 16`` and ``batch_size = 32`` in one config: the later won."""
    from dist_logreg.errors import UsageError
    from dist_logreg.train.options import config_values

    with pytest.raises(UsageError, match=f"key '{second}': given twice, spelled two ways"):
        config_values({"steps": 3, first: 16, second: 32}, "config file c.toml")
    assert config_values({"steps": 3, first: 16}, "c")["batch_size"] == 16


@pytest.mark.parametrize("key, value", [("dtype_bytes", 1e300), ("dtype_bytes", 10**30)])
def test_a_step_workloads_gradient_is_counted_before_it_is_listed(tmp_path, key, value):
    """Found by fuzzing report beside the attack: a step block's ``dtype_bytes`` of 1e300
    was an ``OverflowError`` traceback (the buckets listed one by one; a small bucket would
    have listed 10^290 of them)."""
    from tests.test_trust_leftovers import _edited

    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--workload"]
    args += ["params=1e6,forward=1ms,backward=2ms"]
    cmd = [str(BIN / "dist-logreg"), "simulate", *args, "--out", str(tmp_path / "s")]
    assert run_mpi(1, cmd).returncode == 0
    r = _edited(tmp_path / "s", tmp_path, _set("step", "workload", key, value=value))
    words = "step.workload: expected a workload simulate runs: a gradient of"
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


GRID = 'fabric = "flat:hosts=8,rate=100G"\nranks = [4, 8]\nalgorithm = "ring"\nbytes = "1K"\n'


@pytest.mark.parametrize("name", ["simulate.json", "simulate.json.partial"])
def test_a_sweep_never_writes_over_its_grid(tmp_path, name):
    """T-M1: ``simulate --sweep D/simulate.json --out D --force`` replaced the grid with its
    output (``D/simulate.json.partial``: deleted with the partial files)."""
    from tests.test_model_cli import dl as here

    grid = tmp_path / name
    grid.write_text(GRID)
    r = here("simulate", "--sweep", str(grid), "--out", str(tmp_path), "--force")
    assert r.returncode == 2 and f"({grid}); expected another file name" in r.stderr, r.stderr
    assert grid.read_text() == GRID


@pytest.mark.parametrize("link", ["leaf\u0660-spine1", "leaf1-spine\u0660+leaf1-spine1"])
def test_a_failed_cables_digits_are_ascii(link):
    """T-M2: ``fail:link=leaf٠-spine1`` was read as leaf0."""
    from tests.test_model_cli import dl as here

    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4", "--ranks", "8"]
    r = here("simulate", *args, "--bytes", "1K", "--scenario", f"fail:link={link}")
    assert r.returncode == 2 and "link: expected leafL-spineS cables" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "line, words",
    [("rate = nan", "rate: expected a rate"), ("hosts = 4.0", "hosts: expected a whole")],
)
def test_a_fabric_files_bad_value_names_the_file(tmp_path, line, words):
    """T-M3: a bad value in a fabric file said ``fabric spec:`` (which file, in a sweep?)."""
    from tests.test_model_cli import dl as here

    body = 'topology = "flat"\n' + ("" if line.startswith("hosts") else "hosts = 4\n") + line
    (tmp_path / "f.toml").write_text(body + "\n")
    r = here("simulate", "--fabric", str(tmp_path / "f.toml"), "--ranks", "4", "--bytes", "1K")
    assert r.returncode == 2 and f"fabric file {tmp_path / 'f.toml'}: {words}" in r.stderr


@pytest.fixture(scope="module")
def lossy_packet(tmp_path_factory):
    from tests.test_trust_packet import needs_ns3  # noqa: F401 (skips without ns-3)

    pytest.importorskip("ns")
    out = tmp_path_factory.mktemp("p") / "p"
    args = ["--fabric", "flat:hosts=4", "--ranks", "2", "--bytes", "1K", "--engine", "packet"]
    args += ["--transport", "roce", "--loss-link", "host-up=1"]
    cmd = [str(BIN / "dist-logreg"), "simulate", *args, "--out", str(out)]
    r = run_mpi(1, cmd, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize(
    "edit, words",
    [  # T-H5: the check's own exception was built wrongly (a TypeError)
        (
            lambda d: d["results"][0]["packet"]["options"]["loss_link"].update({"host-up": -1}),
            "packet.options.loss_link.host-up: expected a loss fraction >= 0 and at most 1",
        ),
        # T-H6: a string among the message start times (a TypeError)
        (
            lambda d: d["results"][0]["packet"]["message_start_s"].__setitem__(0, "x"),
            "packet.message_start_s[0]: expected a finite number of seconds",
        ),
    ],
)
def test_a_packet_rows_edited_options_and_times_are_one_line(lossy_packet, tmp_path, edit, words):
    from tests.test_trust_leftovers import _edited

    assert (
        run_mpi(
            1, [str(BIN / "dist-logreg"), "report", str(lossy_packet), "--out", str(tmp_path / "g")]
        ).returncode
        == 0
    )
    r = _edited(lossy_packet, tmp_path, edit)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize(
    "edit, words",
    [  # T-M5: each was reported with exit 0
        (_set("results", 0, "collisions", value=-1), "collisions: expected a number of coll"),
        (_set("results", 0, "collisions", value=1e300), "collisions: expected a number of coll"),
        (
            lambda d: d["results"][0]["links"]["host-up"].update(max_util=0.5),
            "links.host-up.max_util: expected at most",
        ),
        (_set("results", 0, "cross_leaf_bytes", value=2**63), "cross_leaf_bytes: expected at most"),
        (_set("placement", "placement_seed", value=-1), "placement.placement_seed: expected a s"),
        (_set("placement", "placement_seed", value=0.5), "placement.placement_seed: expected a s"),
        (_set("fabric", "pinned_paths", value="x"), "fabric.pinned_paths: expected a number"),
    ],
)
def test_a_flow_rows_edited_counts_are_refused(flat_sim, tmp_path, edit, words):
    from tests.test_trust_leftovers import _edited

    r = _edited(flat_sim, tmp_path, edit)
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_an_exact_rows_phase_synchronous_time_holds_its_links(tmp_path):
    """T-M5: an ``--exact`` row's ``phase_sync_s`` edited to 0.5 s beside 3.5 ms was taken
    (its links' utilisation is over that time: the bytes they carried grew with it)."""
    from tests.test_trust_leftovers import _edited

    args = ["--fabric", "flat:hosts=8,rate=100G", "--ranks", "8", "--bytes", "1M", "--exact"]
    cmd = [str(BIN / "dist-logreg"), "simulate", *args, "--out", str(tmp_path / "s")]
    assert run_mpi(1, cmd).returncode == 0
    r = _edited(tmp_path / "s", tmp_path, _set("results", 0, "phase_sync_s", value=0.5))
    assert r.returncode == 2 and "links.host-up.mean_util: expected at most" in r.stderr


def test_simulate_run_refuses_a_run_of_no_steps(tmp_path):
    """T-M6: ``steps_run: 0`` was taken as all the run's steps (Q-H1's numbers again)."""
    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "3"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    doc = json.loads((run / "summary.json").read_text())
    doc["steps_run"] = 0
    (run / "summary.json").write_text(json.dumps(doc))
    cmd = [str(BIN / "dist-logreg"), "simulate", "--fabric", "flat:hosts=4", "--ranks", "2"]
    r = run_mpi(1, [*cmd, "--run", str(run)])
    assert r.returncode == 2 and "steps_run: expected a whole number of steps >= 1" in r.stderr


def test_simulate_run_says_which_of_its_two_steps_overlaps(tmp_path):
    """T-M4: for an overlapped (``--allreduce mpi``, bucketed) run, ``simulate --run``
    printed the run block's step (compute + comm) and the step table's (buckets overlapped
    with backward), 26 % apart, with nothing saying which is which."""
    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "50", "--steps", "5", "--bucket-bytes", "160"]
    r = run_mpi(2, train_cmd(*args, "--allreduce", "mpi", "--out", str(run)), timeout=120)
    assert r.returncode == 0, r.stderr
    cmd = [str(BIN / "dist-logreg"), "simulate", "--fabric", "flat:hosts=8", "--ranks", "2,8"]
    r = run_mpi(1, [*cmd, "--algorithm", "ring", "--run", str(run)])
    assert r.returncode == 0, r.stderr
    assert "(each bucket's allreduce after the compute, none hidden: the step table's" in r.stdout


def test_a_cost_model_file_is_checked_at_one_rank(tmp_path):
    """S-L2: ``train --cost-model FIFO`` (or a missing file) at one rank was "ignored" with
    exit 0, where two ranks refuse it."""
    import os

    os.mkfifo(tmp_path / "fifo")
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
    for model, words in (("fifo", "got a FIFO"), ("none.json", "not found")):
        cmd = train_cmd(*args, "--out", str(tmp_path / "o"), "--cost-model", str(tmp_path / model))
        r = run_mpi(1, cmd, timeout=120)
        assert r.returncode == 2 and "--cost-model: model file" in r.stderr and words in r.stderr


def test_simulate_out_names_a_device_as_one(tmp_path):
    """T-L2: ``--out /dev/null`` was "a file"."""
    from tests.test_model_cli import dl as here

    r = here("simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--out", "/dev/null")
    assert r.returncode == 2 and "got a device, FIFO or socket" in r.stderr
