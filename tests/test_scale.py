"""``dist-logreg scale``: the arithmetic of the table, and the sweep end to end."""

import json
import subprocess

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops import scale
from tests.helpers import BIN, mpi_env


def test_parse_ranks():
    assert scale.parse_ranks("1,2,4,8") == [1, 2, 4, 8]
    for bad in ("", "2,1", "1,1", "0,2", "1,x"):
        with pytest.raises(UsageError, match="--ranks: expected increasing positive"):
            scale.parse_ranks(bad)


def test_weak_scaling_grows_the_batch_and_the_synthetic_set(tmp_path):
    argv = ["--batch-size", "100", "--steps", "5"]
    settings = scale.train_settings(argv)
    assert settings["batch_size"] == 100 and settings["samples"] == 32768  # the default
    weak = scale.run_argv(argv, settings, "weak", 4, 2, tmp_path)
    assert weak[-6:] == ["--batch-size", "200", "--samples", "65536", "--out", str(tmp_path)]
    strong = scale.run_argv(argv, settings, "strong", 4, 2, tmp_path)
    assert strong == argv + ["--out", str(tmp_path)]
    files = scale.train_settings(["--data", "d.npz", "--batch-size", "8"])
    assert "--samples" not in scale.run_argv([], files, "weak", 2, 1, tmp_path)  # a file stays


def test_the_emulated_clusters_launcher_leaves_the_rank_count_to_each_run(tmp_path):
    from dist_logreg.ops.cluster import Cluster, Spec

    c = Cluster(
        Spec(name="t", hosts=3),
        hosts=["t-h0", "t-h1", "t-h2"],
        mpi_net="198.18.7.0/24",
        oob_net="198.18.7.128/25",
    )
    line = scale.cluster_launcher(c)
    assert "-n" not in line and line.count("--map-by") == 1 and line[-1] == "node:OVERSUBSCRIBE"
    assert "--hostfile" in line and "198.18.7.0/24" in line  # the cluster's own settings
    cmd = scale.launch_command(line, 5, ["--steps", "3"])
    assert cmd[1:3] == ["-n", "5"] and cmd[-3:] == ["train", "--steps", "3"]


def point(p, batch, step, comm):
    return {
        "world_size": p,
        "batch_size": batch,
        "step_s": step,
        "comm_s": comm,
        "comm_fraction": comm / step,
        "payload_bytes_per_step": 4096,
        "algorithm": "ring",
    }


def test_speedup_and_efficiency():
    strong = scale.tabulate(
        [point(1, 64, 0.010, 0.0), point(2, 64, 0.006, 0.001), point(4, 64, 0.004, 0.002)], "strong"
    )
    assert [round(p["speedup"], 6) for p in strong] == [1.0, round(10 / 6, 6), 2.5]
    assert strong[2]["efficiency"] == pytest.approx(2.5 / 4)
    weak = scale.tabulate([point(2, 64, 0.010, 0.0), point(4, 128, 0.0125, 0.002)], "weak")
    assert weak[0]["speedup"] == pytest.approx(2.0)  # the baseline counts as P0
    assert weak[1]["efficiency"] == pytest.approx(0.010 / 0.0125)


def test_model_prediction_next_to_each_point():
    model = {"alpha_s": 1e-5, "beta_s_per_byte": 1e-9, "gamma_s_per_byte": 1e-10}
    t = scale.predict_allreduce_s(model, "ring", 4096, 4)
    assert t == pytest.approx(2 * 3 * 1e-5 + 1.5 * 4096 * 1e-9 + 0.75 * 4096 * 1e-10)
    assert scale.predict_allreduce_s(model, "ring", 4096, 1) == 0.0
    per_algo = {"algorithms": {"mpi": model}}
    assert scale.predict_allreduce_s(per_algo, "ring", 4096, 4) is None  # no ring parameters
    assert scale.predict_allreduce_s(per_algo, "mpi", 4096, 2) > 0
    points = scale.tabulate([point(1, 64, 0.010, 0.0), point(4, 64, 0.004, 0.002)], "strong", model)
    pred = points[1]["predicted"]
    assert pred["step_s"] == pytest.approx(0.010 / 4 + t)
    assert pred["measured_over_predicted_step"] == pytest.approx(0.004 / pred["step_s"])
    table = scale.format_table(points, "strong", "test machine")
    assert "pred. step" in table and "test machine" in table


def dist_logreg(*args, timeout=180):
    return subprocess.run(
        [str(BIN / "dist-logreg"), *args],
        capture_output=True,
        text=True,
        env=mpi_env(),
        timeout=timeout,
    )


TRAIN = ["train", "--samples", "600", "--features", "5", "--batch-size", "60", "--steps", "8"]


@pytest.mark.e2e
def test_scale_sweep_end_to_end(tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"alpha_s": 2e-6, "beta_s_per_byte": 1e-10}))
    out = str(tmp_path / "s")
    r = dist_logreg(
        "scale",
        "--ranks",
        "1,2",
        "--oversubscribe",
        "--weak",
        "--out",
        out,
        "--model",
        str(model),
        "--label",
        "ci",
        "--",
        *TRAIN,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "s" / "scale.json").read_text())
    assert doc["mode"] == "weak" and [p["world_size"] for p in doc["points"]] == [1, 2]
    assert [p["batch_size"] for p in doc["points"]] == [60, 120]  # weak: batch grows with P
    first, second = doc["points"]
    assert first["speedup"] == pytest.approx(1.0) and second["efficiency"] > 0
    assert 0 <= second["comm_fraction"] <= 1 and "predicted" in second
    summary = json.loads((tmp_path / "s" / "p2" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["data"]["samples"] == 1200
    table = (tmp_path / "s" / "scale.txt").read_text()
    assert "weak scaling, ci" in table and table in r.stdout + "\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ranks", "2,1", "--", *TRAIN], "--ranks: expected increasing"),
        (["--ranks", "1", "--", "bench"], "expected '-- train [options]'"),
        (["--ranks", "1", "--model", "nope.json", "--", *TRAIN], "--model nope.json"),
    ],
)
def test_scale_usage_errors(tmp_path, args, message):
    r = dist_logreg("scale", "--out", str(tmp_path / "s"), *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.mark.e2e
def test_scale_stops_at_a_run_that_rejects_its_input(tmp_path):
    # train refuses its flags at 2 ranks (no rank 2 to stall); 3 ranks never start
    train = ["train", "--samples", "10", "--batch-size", "4", "--steps", "2"]
    train += ["--inject-fault", "stall:rank=1:step=0:seconds=0"]
    r = dist_logreg(
        "scale", "--ranks", "2,3", "--oversubscribe", "--out", str(tmp_path), "--", *train
    )
    assert r.returncode == 0, r.stdout + r.stderr  # rank 1 exists at 2 and 3 ranks
    r = dist_logreg(
        "scale",
        "--ranks",
        "2,3",
        "--oversubscribe",
        "--out",
        str(tmp_path / "b"),
        "--",
        *train[:-1],
        "stall:rank=2:step=0:seconds=0",
    )
    assert r.returncode == 2  # rank 2 at 2 ranks: a usage error, and 3 ranks never start
    doc = json.loads((tmp_path / "b" / "scale.json").read_text())
    assert [p["world_size"] for p in doc["points"]] == [2]
    assert doc["points"][0]["exit"] == 2 and "failed (exit status 2)" in r.stdout


def test_scale_refuses_a_batch_below_a_world_size_before_any_run(tmp_path):
    """Fourteenth attack P-M7: train refuses a global batch below its world size only once
    every rank is up (100,000 ranks sat silent); scale refuses it before the first run."""
    train = ["train", "--samples", "10", "--batch-size", "2", "--steps", "2"]
    r = dist_logreg(
        "scale", "--ranks", "1,3,4", "--oversubscribe", "--out", str(tmp_path / "o"), "--", *train
    )
    assert r.returncode == 2 and "3 ranks need a global batch of at least 3 rows" in r.stderr
    assert not (tmp_path / "o").exists()
