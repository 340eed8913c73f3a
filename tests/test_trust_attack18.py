"""Issue 29, the eighteenth attack: each test fails before its fix (U- on training and its
readers, V- on the simulator)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BIN, run_mpi, tiny_run, train_cmd
from tests.test_model_cli import bench_file, model_file  # noqa: F401 (fixtures)
from tests.test_trust_attack17 import lossy_packet  # noqa: F401 (a fixture)


def dl(*args: str, cwd=None):
    """``dist-logreg ARGS`` at one rank (train and predict start MPI: not in this process)."""
    return run_mpi(1, [str(BIN / "dist-logreg"), *args], timeout=120, cwd=cwd)


@pytest.mark.parametrize("spec", ["bucket-sizes=1M,buckets=1", "bucket-sizes=8T"])
def test_a_workload_of_its_own_bucket_sizes_is_reported(tmp_path, spec):
    """V-H1: the bucket count (a fix of the seventeenth attack's) was the gradient over
    ``buckets`` where the workload lists its own sizes: 1 bucket counted as 1,048,576."""
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring"]
    r = dl(
        "simulate",
        *args,
        "--workload",
        f"{spec},forward=1ms,backward=1ms",
        "--out",
        str(tmp_path / "s"),
    )
    assert r.returncode == 0, r.stderr
    r = dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A 2-rank run killed at step 25 (its rows to step 24 in partial/), resumed from 20."""
    out = tmp_path_factory.mktemp("r") / "run"
    args = ["--samples", "2000", "--features", "16", "--batch-size", "64", "--steps", "60"]
    args += ["--checkpoint-every", "10", "--flush-every", "5", "--out", str(out)]
    run_mpi(2, train_cmd(*args, "--inject-fault", "kill:rank=1:step=25"), timeout=120)
    assert run_mpi(2, train_cmd(*args, "--resume"), timeout=120).returncode == 0
    return out


def _copy(run, tmp_path):
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _rows(path, edit) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    edit(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_resumed_run_is_reported(resumed, tmp_path):
    assert dl("report", str(resumed), "--out", str(tmp_path / "r")).returncode == 0


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("comm_s", 900000.0, "comm_s: expected at most"),
        ("rank", 9999999, "rank: expected 0 (its file's)"),
        ("step", 10**15, "step: expected below the run's 60 steps"),
    ],
)
def test_a_dead_attempts_rows_are_held_to_the_run(resumed, tmp_path, key, value, words):
    """U-H1: a dead attempt's rows in partial/ were held to nothing: a 10-day step, step
    10^15, rank 9,999,999 were drawn."""
    run = _copy(resumed, tmp_path)
    part = run / "partial" / "steps-attempt1-from0-rank0.jsonl"
    _rows(part, lambda rows: rows[5].update({key: value}))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and words in r.stderr and "steps-attempt1" in r.stderr, r.stderr


def test_a_repeated_line_switches_off_no_bound(resumed, tmp_path):
    """U-H2: one line of a resumed run's steps.jsonl repeated skipped every bound: a call of
    99,999 s drawn."""
    run = _copy(resumed, tmp_path)
    lines = (run / "steps.jsonl").read_text().splitlines()
    (run / "steps.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    _rows(run / "metrics.jsonl", lambda rows: rows[3].update(seconds=99999.0))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "metrics.jsonl: seconds: expected at most" in r.stderr


@pytest.mark.parametrize(
    "edit, words",
    [  # U-H3: 10^30 lifted every bound; U-H5: a traceback in the S-H2 check
        (lambda s: s.update(resumed_from_step=10**30), "resumed_from_step: expected a"),
        (lambda s: s.update(resumed_from_step=59), "resumed_from_step: expected a step below"),
        (lambda s: s["time_s_per_rank"].update(total=5), "time_s_per_rank.total: expected an"),
        (lambda s: s.update(time_s_per_rank=7), "time_s_per_rank: expected an object"),
    ],
)
def test_a_summarys_resume_and_rank_times_are_checked(resumed, tmp_path, edit, words):
    run = _copy(resumed, tmp_path)
    doc = json.loads((run / "summary.json").read_text())
    edit(doc)
    (run / "summary.json").write_text(json.dumps(doc))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_step_of_null_is_one_line(resumed, tmp_path):
    """U-H6: ``"step": null`` in a resumed run's steps.jsonl was a ValueError traceback."""
    run = _copy(resumed, tmp_path)
    _rows(run / "steps.jsonl", lambda rows: rows[0].update(step=None))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    words = "steps.jsonl line 1: step: expected a whole number >= 0, got None"
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("kind", ["fifo", "zero", "empty-svm"])
def test_predict_reads_regular_data_with_rows(tmp_path, kind):
    """U-H4: ``predict --data`` of a FIFO hung, of a link to /dev/zero grew without bound;
    U-M3: of an empty LIBSVM file it predicted "0 rows" with exit 0."""
    import os

    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    data = tmp_path / ("d.svm" if kind == "empty-svm" else "d.csv")
    if kind == "fifo":
        os.mkfifo(data)
    elif kind == "zero":
        data.symlink_to("/dev/zero")
    else:
        data.write_text("")
    r = dl("predict", "--model", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv"))
    words = "expected at least one row" if kind == "empty-svm" else "expected a regular file"
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_a_calls_prediction_is_held_to_the_runs_model(tmp_path, model_file):  # noqa: F811
    """U-H7: a call's ``predicted_s`` of 900,000 s beside the run's 6 us prediction was drawn
    as the model's line."""
    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "16", "--batch-size", "64", "--steps", "10"]
    args += ["--cost-model", str(model_file), "--allreduce", "ring", "--out", str(run)]
    assert run_mpi(2, train_cmd(*args), timeout=120).returncode == 0
    assert dl("report", str(run), "--out", str(tmp_path / "g")).returncode == 0
    _rows(run / "metrics.jsonl", lambda rows: rows[7].update(predicted_s=900000.0))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "metrics.jsonl: predicted_s: expected at most" in r.stderr


@pytest.mark.parametrize("key", ["median_rel", "max_rel", "rows"])
def test_a_cost_models_residuals_are_whole(model_file, tmp_path, key):  # noqa: F811
    """U-H14: a residual of null was let through by the seventeenth attack's check, then a
    TypeError traceback in model predict."""
    from tests.test_model_cli import dl as here

    doc = json.loads(model_file.read_text())
    doc["algorithms"]["ring"]["residuals"][key] = None
    (tmp_path / "m.json").write_text(json.dumps(doc))
    r = here("model", "predict", "--model", str(tmp_path / "m.json"), "--ranks", "8")
    assert r.returncode == 2 and f"residuals.{key}: expected" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def genuine_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "b.json"
    args = ["bench", "--allreduce", "ring", "--min-bytes", "1K", "--max-bytes", "64K"]
    r = run_mpi(2, [str(BIN / "dist-logreg"), *args, "--iters", "3", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("dtype", 5, "dtype: expected one of float32, float64, got 5"),
        ("hosts", 7, "hosts: expected a list of host names"),
        ("ranks_per_node", "x", "ranks_per_node: expected a number of ranks"),
        ("host_of_rank", [10**30, 0], "host_of_rank[0]: expected a host number"),
        ("count", {}, "count: expected a whole number of elements"),
    ],
)
@pytest.mark.parametrize("command", ["fit", "report"])
def test_a_bench_records_fields_are_typed(genuine_bench, tmp_path, key, value, words, command):
    """U-H12, U-H13: a bench record's dtype 5, hosts 7, ranks_per_node "x", a host of 10^30,
    a count of {} were tracebacks in model fit and report."""
    from tests.test_model_cli import dl as here

    doc = json.loads(genuine_bench.read_text())
    doc["records"][0][key] = value
    (tmp_path / "b.json").write_text(json.dumps(doc))
    if command == "fit":
        r = here("model", "fit", str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json"))
    else:
        r = here("report", str(tmp_path / "b.json"), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_scale_of_a_run_killed_by_sigkill_is_one_line(tmp_path):
    """U-H8: a run that died of SIGKILL (137) under ``scale`` with no ``--timeout`` was a
    TypeError traceback (the seventeenth attack's fix formatted the absent timeout)."""
    from tests.test_scale import dist_logreg

    train = ["train", "--samples", "600", "--features", "5", "--batch-size", "60", "--steps", "8"]
    train += ["--inject-fault", "kill:rank=0:step=2"]
    r = dist_logreg("scale", "--ranks", "1", "--out", str(tmp_path / "s"), "--", *train)
    assert r.returncode == 137 and "failed (exit status 137)" in r.stdout + r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_rows_attempt_and_the_summarys_validation_are_checked(resumed, tmp_path):
    """U-H11: a row's ``attempt`` of 1e300 (or -1) was listed as an attempt in full; U-H9: a
    ``validation`` of 0.5 was an AttributeError traceback."""
    run = _copy(resumed, tmp_path)
    _rows(run / "steps.jsonl", lambda rows: rows[0].update(attempt=1e300))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "line 1: attempt: expected a whole number" in r.stderr
    _rows(run / "steps.jsonl", lambda rows: rows[0].update(attempt=3))
    doc = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**doc, "validation": 0.5}))
    r = dl("report", str(run), "--out", str(tmp_path / "r2"))
    assert r.returncode == 2 and "validation: expected" in r.stderr and "Traceback" not in r.stderr


def test_predict_refuses_weights_whose_logits_overflow_and_never_writes_a_runs_file(tmp_path):
    """U-H15: a ``coef`` of 1e308 wrote nan probabilities with exit 0 (numpy's raw warning
    beside); U-M6: ``--out RUN/steps.jsonl --force`` replaced the run's own measurements."""
    import numpy as np

    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    before = (run / "steps.jsonl").read_bytes()
    r = dl("predict", "--model", str(run), "--out", str(run / "steps.jsonl"), "--force")
    assert r.returncode == 2 and "a file of the run it predicts with" in r.stderr, r.stderr
    assert (run / "steps.jsonl").read_bytes() == before
    z = dict(np.load(run / "model.npz"))
    z["coef"] = np.full(z["coef"].shape, 1e308)
    np.savez(run / "model.npz", **z)
    r = dl("predict", "--model", str(run), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 2 and "expected weights whose logits stay finite" in r.stderr
    assert "RuntimeWarning" not in r.stderr and not (tmp_path / "p.csv").exists()


def test_predict_refuses_nonfinite_features_and_prints_a_huge_loss_shortly(tmp_path):
    """U-H16: ``predict --data`` with a NaN or inf feature wrote nan probabilities with exit
    0 (train refuses the same file); a feature of 1e308 printed a log-loss of 307 digits."""
    import numpy as np

    run = tmp_path / "run"
    args = ["--samples", "200", "--features", "5", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    X = np.random.default_rng(1).normal(size=(10, 5))
    y = (X[:, 0] > 0).astype(int)
    X[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, y=y)
    r = dl("predict", "--model", str(run), "--data", str(tmp_path / "nan.npz"))
    assert r.returncode == 2 and "expected finite features, got X[2, 1] = nan" in r.stderr
    X[2, 1], X[3, 0] = 0.0, 1e308
    np.savez(tmp_path / "big.npz", X=X, y=y)
    r = dl("predict", "--model", str(run), "--data", str(tmp_path / "big.npz"))
    if r.returncode == 0:  # the logit stays finite: a huge, finite loss, printed short
        line = r.stderr.strip().splitlines()[-1]  # (the rows go to stdout)
        assert "log-loss" in line and len(line) < 200 and "e+" in line, line
    else:  # or it overflows: refused
        assert r.returncode == 2 and "logits stay finite" in r.stderr


def test_a_diverging_runs_loss_is_printed_shortly(tmp_path):
    """U-M1: ``train --lr 1e30`` printed a batch loss and a final loss of 263 digits."""
    args = ["--samples", "500", "--features", "8", "--batch-size", "32", "--steps", "5"]
    r = run_mpi(1, train_cmd(*args, "--lr", "1e30", "--out", str(tmp_path / "o")), timeout=120)
    text = r.stdout + r.stderr
    assert "loss" in text and max(len(line) for line in text.splitlines()) < 200, text[-600:]


def test_reports_link_rate_is_bounded(genuine_bench, tmp_path):
    """U-H17: ``report --link-rate 1e300`` (or a bench file's ``link_rate`` "1e300") drew a
    ceiling of 1e+291 Gbit/s; model predict refuses the same."""
    from tests.test_model_cli import dl as here

    for rate in ("1e300", "1e-300gbit"):
        r = here("report", str(genuine_bench), "--link-rate", rate, "--out", str(tmp_path / "r"))
        assert r.returncode == 2 and "--link-rate: expected 8 to 8e+14 bit/s" in r.stderr
    doc = json.loads(genuine_bench.read_text())
    (tmp_path / "b.json").write_text(json.dumps({**doc, "link_rate": "1e300"}))
    r = here("report", str(tmp_path / "b.json"), "--out", str(tmp_path / "r2"))
    assert r.returncode == 2 and "link_rate: expected 8 to 8e+14 bit/s" in r.stderr


@pytest.mark.parametrize("calls", [1e-300, 0])
def test_model_predict_run_needs_a_call_a_step(model_file, tmp_path, calls):  # noqa: F811
    """U-H19: ``calls_per_step`` of 1e-300 printed a 290-digit time, 0 "predicted 0.0 s"."""
    from tests.test_model_cli import dl as here

    run = tiny_run(tmp_path / "run", allreduce__calls_per_step=calls)
    r = here("model", "predict", "--model", str(model_file), "--run", str(run), "--ranks", "8")
    assert r.returncode == 2 and "calls_per_step: expected a number of calls a step" in r.stderr


@pytest.mark.parametrize("name, key", [("metrics.jsonl", "seconds"), ("steps.jsonl", "compute_s")])
def test_the_rows_before_a_resume_are_held_too(tmp_path, name, key):
    """U-H18: a run completed at 20 steps, then resumed to 30: its first 20 steps' rows were
    held to nothing (a 900,000 s call and compute phase drawn)."""
    from tests.test_trust_attack17 import completed_then_resumed

    run = completed_then_resumed(tmp_path / "run", 20, 30)
    assert dl("report", str(run), "--out", str(tmp_path / "g")).returncode == 0
    _rows(run / name, lambda rows: rows[3].update({key: 900000.0}))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and f"{name}: {key}: expected at most" in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--dcqcn-rai", "--dcqcn-rhai", "--dcqcn-min-rate"])
def test_dcqcns_rates_are_bounded(flag):
    """Found by running every option at hostile values beside the attack: a DCQCN rate of
    1e300 bit/s was run (the rates had no bound but > 0)."""
    from tests.test_model_cli import dl as here

    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--engine", "packet"]
    r = here("simulate", *args, "--transport", "roce", flag, "1e300")
    assert r.returncode == 2 and f"{flag}: expected 8 to 8e+14 bit/s" in r.stderr, r.stderr


def test_a_resumed_runs_header_counts_all_its_steps(resumed, tmp_path):
    """U-M7: a 60-step run resumed from step 20 was headed "2 rank(s), 40 steps"."""
    assert dl("report", str(resumed), "--out", str(tmp_path / "r")).returncode == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "2 rank(s), 60 steps (40 of them in its last attempt, from step 20)" in text


def test_a_fabric_params_entry_without_a_value_is_one_line(tmp_path):
    """V-H2: a ``fabric.params.hash`` of ``{}`` was an AttributeError traceback."""
    from tests.test_trust_attack17 import _set
    from tests.test_trust_leftovers import _edited

    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1K", "--out"]
    assert dl("simulate", *args, str(tmp_path / "s")).returncode == 0
    r = _edited(tmp_path / "s", tmp_path, _set("fabric", "params", "hash", value={}))
    assert r.returncode == 2 and "fabric.params.hash: expected a value" in r.stderr, r.stderr


def test_simulate_refuses_more_series_than_report_draws(tmp_path):
    """V-H3: 14 algorithms x 15 sizes ran (1.5 s) into a file report refused (210 > 200)."""
    from dist_logreg.collective.algorithms import INTER_SPELLINGS, scheduled_keys

    sizes = ",".join(f"{1 << k}K" for k in range(15))
    algs = ",".join([*scheduled_keys(), *INTER_SPELLINGS][:14])
    r = dl(
        "simulate",
        "--fabric",
        "flat:hosts=4",
        "--ranks",
        "4",
        "--algorithm",
        algs,
        "--bytes",
        sizes,
        "--out",
        str(tmp_path / "s"),
    )
    assert r.returncode == 2 and "--algorithm x --bytes: expected at most 200 series" in r.stderr
    assert not (tmp_path / "s").exists()


def test_a_long_spec_or_path_is_one_line(tmp_path):
    """V-H4: a sweep with a workload spec of 255+ characters was ``OSError: File name too
    long`` (it was tried as a file name); ``--out`` of such a name too."""
    spec = "bucket-sizes=" + "+".join(["64K"] * 60) + ",forward=1ms,backward=2ms"
    (tmp_path / "g.toml").write_text(
        'fabric = "flat:hosts=4"\nranks = [2, 4]\nalgorithm = ["ring"]\n'
    )
    r = dl(
        "simulate",
        "--sweep",
        str(tmp_path / "g.toml"),
        "--workload",
        spec,
        "--out",
        str(tmp_path / "s"),
    )
    assert r.returncode == 0, r.stderr
    long = str(tmp_path / ("a" * 300))
    r = dl("simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--out", long)
    assert r.returncode == 2 and "a path the file system refuses as too long" in r.stderr


@pytest.mark.parametrize("value", [None, 0])
def test_a_step_workloads_bucket_sizes_are_a_list(tmp_path, value):
    """V-H5: ``step.workload.bucket_sizes`` of null (or 0) was a TypeError traceback."""
    from tests.test_trust_attack17 import _set
    from tests.test_trust_leftovers import _edited

    run = tmp_path / "run"
    args = ["--samples", "2000", "--features", "50", "--steps", "3", "--bucket-bytes", "160"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    sim = ["--fabric", "flat:hosts=8", "--ranks", "2,4", "--algorithm", "ring", "--run", str(run)]
    assert dl("simulate", *sim, "--out", str(tmp_path / "s")).returncode == 0
    r = _edited(tmp_path / "s", tmp_path, _set("step", "workload", "bucket_sizes", value=value))
    assert r.returncode == 2 and "bucket_sizes: expected a list of byte counts" in r.stderr


def test_a_csv_of_a_header_only_is_one_line(tmp_path):
    """U-M2: a CSV of a header only printed numpy's raw UserWarning with a source path and
    said "expected 6 columns, got 1"."""
    (tmp_path / "h.csv").write_text("a,b,c,d,e,y\n")
    r = run_mpi(1, train_cmd("--data", str(tmp_path / "h.csv"), "--out", str(tmp_path / "o")))
    assert r.returncode == 2 and "expected at least one row under its header" in r.stderr
    assert "UserWarning" not in r.stderr


@pytest.mark.parametrize("key", ["min", "p50"])
def test_a_summarys_call_of_no_time_is_refused(resumed, tmp_path, key):
    """U-M8: a summary's allreduce latency of 0 s was taken and printed "0 s"."""
    run = _copy(resumed, tmp_path)
    doc = json.loads((run / "summary.json").read_text())
    doc["allreduce"]["latency_s"][key] = 0.0
    (run / "summary.json").write_text(json.dumps(doc))
    r = dl("report", str(run), "--out", str(tmp_path / "r"))
    assert (
        r.returncode == 2
        and f"latency_s.{key}: expected a finite number of seconds (1 ns" in r.stderr
    )


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d["results"][0].update(algorithm="x"), "algorithm: unknown allreduce algo"),
        (lambda d: d["results"][0]["packet"]["options"].update(buffer="x"), "options.buffer: "),
        (lambda d: d["results"][0]["packet"]["options"].update(rto=-1), "options.rto: expected"),
    ],
)
def test_a_packet_rows_algorithm_and_options_are_checked(lossy_packet, tmp_path, edit, words):  # noqa: F811
    """V-H6: a packet row's unknown algorithm was a ValueError traceback; V-H7, V-M3: its
    options were unchecked (a buffer of "x" a TypeError, an rto of -1 taken)."""
    from tests.test_trust_leftovers import _edited

    r = _edited(lossy_packet, tmp_path, edit)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_sweep_files_huge_float_is_read_as_the_flags_text(tmp_path):
    """V-M2: ``placement-seed = 1e300`` in a sweep file ran with a 301-digit seed, where
    ``--placement-seed 1e300`` is refused."""
    from tests.test_model_cli import dl as here

    grid = tmp_path / "g.toml"
    grid.write_text(
        'fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"\nranks = [2, 4]\n'
        'algorithm = ["ring"]\nbytes = ["1K"]\nplacement = "random"\nplacement-seed = 1e300\n'
    )
    r = here("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "placement-seed: expected a whole number from 0 to" in r.stderr


@pytest.fixture(scope="module")
def step_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "s"
    grid = out.parent / "g.toml"
    grid.write_text(
        'fabric = ["flat:hosts=4", "flat:hosts=8"]\nranks = [2, 4]\nalgorithm = ["ring"]\n'
        'workload = ["params=1e6,forward=1ms,backward=2ms"]\nranks-per-host = [1, 2]\n'
    )
    assert dl("simulate", "--sweep", str(grid), "--out", str(out)).returncode == 0
    return out


@pytest.mark.parametrize(
    "edit, words",
    [  # V-H8: a TypeError; V-H9: an OverflowError
        (lambda d: d.update(fabrics=5), "fabrics: expected a list, got int 5"),
        (
            lambda d: d["step"]["rows"][0].update({"ranks-per-host": 1e300}),
            "step.rows[0].ranks-per-host: expected a number of ranks from 1 to 1000000",
        ),
    ],
)
def test_a_step_sweeps_fabrics_and_row_placement_are_checked(step_sweep, tmp_path, edit, words):
    from tests.test_trust_leftovers import _edited

    assert dl("report", str(step_sweep), "--out", str(tmp_path / "g")).returncode == 0
    r = _edited(step_sweep, tmp_path, edit)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
