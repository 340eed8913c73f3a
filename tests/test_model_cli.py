"""``dist-logreg model fit|predict`` as a user runs them (plain processes, no MPI)."""

import contextlib
import io
import json
import subprocess

import numpy as np
import pytest

from dist_logreg.cli.main import main
from dist_logreg.collective.closed_form import coefficients
from dist_logreg.collective.costfile import design
from dist_logreg.collective.schedule import Placement, shape
from tests.helpers import BIN

A_I, B_I, A_E, B_E, G = 3e-6, 2e-10, 40e-6, 8e-9, 1e-10


def dl(*args: str) -> subprocess.CompletedProcess:
    """``dist-logreg ARGS`` in this process (a plain sub-command: no MPI, no launcher)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_the_installed_command_runs_without_mpi(model_file):
    r = subprocess.run(
        [
            str(BIN / "dist-logreg"),
            "model",
            "predict",
            "--model",
            str(model_file),
            "--bytes",
            "1M",
            "--algorithm",
            "ring",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "\nring\n" in r.stdout and "fastest: 1 MiB ring" in r.stdout


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    """What `bench --out` writes, at 2 and 4 ranks on 1, 2 and 4 hosts, made from known
    parameters."""
    params = np.array([[A_I, B_I, A_E, B_E, G]])
    recs = []
    for name in ("ring", "recursive-doubling", "rabenseifner", "mpi"):
        for p, k in ((2, 1), (4, 1), (4, 2), (2, 0), (4, 0)):
            place = Placement.blocks(p, k)
            for n in (2**e for e in range(10, 24, 2)):
                t = float((design(shape(name, place), n, []) * params).sum())
                recs.append(
                    {
                        "algorithm": name,
                        "bytes": n,
                        "time_s": t,
                        "world_size": p,
                        "host_of_rank": list(place.host_of),
                        "reduce_s": n * G,
                        "hosts": [f"h{h}" for h in range(place.hosts)],
                    }
                )
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    path.write_text(json.dumps(recs))
    return path


@pytest.fixture(scope="module")
def model_file(bench_file):
    out = bench_file.parent / "model.json"
    r = dl(
        "model", "fit", str(bench_file), "--out", str(out), "--link-rate", "1G", "--segments", "1"
    )
    assert r.returncode == 0, r.stderr
    assert "ring: 2(p-1) alpha" in r.stdout and f"# wrote {out}" in r.stdout
    return out


def test_fit_writes_the_parameters_and_where_they_came_from(model_file, bench_file):
    m = json.loads(model_file.read_text())
    seg = m["algorithms"]["ring"]["segments"][0]
    assert seg["inter"]["alpha_s"] == pytest.approx(A_E, rel=0.01)
    assert seg["inter"]["beta_s_per_byte"] == pytest.approx(B_E, rel=0.01)
    assert seg["intra"]["alpha_s"] == pytest.approx(A_I, rel=0.01)
    src = m["source"]
    assert src["link_rate_bits"] == 1e9 and src["files"] == [str(bench_file)]
    assert src["world_sizes"] == [2, 4] and src["hosts"] == [1, 2, 4]
    assert m["algorithms"]["mpi"]["formula"].startswith("GENERIC")
    assert m["algorithms"]["ring"]["residuals"]["max_rel"] < 0.01


def test_predict_at_512_ranks_on_400g(model_file):
    r = dl(
        "model",
        "predict",
        "--model",
        str(model_file),
        "--ranks",
        "512",
        "--link-rate",
        "400G",
        "--bytes",
        "16M",
        "--algorithm",
        "ring",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["predictions"]
    n = 16 << 20
    a, b, c = coefficients("ring", 512)
    want = a * A_E + b * n * B_E * 1e9 / 400e9 + c * n * G
    assert row["time_s"] == pytest.approx(want, rel=0.01)
    assert row["busbw_GBps"] == pytest.approx(n / want / 1e9 * 2 * 511 / 512, rel=0.01)
    assert sum(row["share"].values()) == pytest.approx(1)


def test_predict_table_names_the_fastest_and_the_crossovers(model_file):
    r = dl(
        "model",
        "predict",
        "--model",
        str(model_file),
        "--ranks",
        "64",
        "--ranks-per-host",
        "8",
        "--topology",
        "two-tier",
        "--hosts-per-leaf",
        "4",
        "--oversubscription",
        "2:1",
        "--bytes",
        "8,64K,16M",
    )
    assert r.returncode == 0, r.stderr
    assert "64 ranks, 8 per host (8 hosts), two-tier: 2 leaves" in r.stdout
    for name in ("ring", "recursive-doubling", "rabenseifner", "mpi"):
        assert f"\n{name}\n" in r.stdout
    assert "fastest: 8 B " in r.stdout and "crossovers: " in r.stdout
    assert "latency" in r.stdout and "bandwidth" in r.stdout and "reduction" in r.stdout


def test_predict_the_trainers_buffer(model_file):
    r = dl(
        "model",
        "predict",
        "--model",
        str(model_file),
        "--features",
        "65536",
        "--dtype",
        "float32",
        "--algorithm",
        "ring",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert [x["bytes"] for x in json.loads(r.stdout)["predictions"]] == [(65536 + 3) * 4]


def test_predict_the_comm_fraction_of_a_run(model_file, tmp_path):
    summary = {
        "world_size": 4,
        "steps_run": 100,
        "allreduce": {
            "algorithm": "ring",
            "bytes_per_call": 1 << 20,
            "calls_per_step": 1,
            "latency_s": {"p50": 1e-3},
        },
        "time_s": {"data": 0.2, "compute": 0.6, "update": 0.1},
        "comm_fraction": {"median": 0.3},
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    r = dl(
        "model",
        "predict",
        "--model",
        str(model_file),
        "--run",
        str(tmp_path),
        "--ranks",
        "1024",
        "--link-rate",
        "100G",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    a, b, c = coefficients("ring", 1024)
    n = 1 << 20
    comm = a * A_E + b * n * B_E * 1e9 / 100e9 + c * n * G
    local = (0.2 + 0.6) / 100 * 4 / 1024 + 0.1 / 100  # strong scaling: rows split 1024 ways
    assert got["predicted_comm_s_per_step"] == pytest.approx(comm, rel=0.01)
    assert got["predicted_comm_fraction"] == pytest.approx(comm / (comm + local), rel=0.01)


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "--model", "nope.json"], "model file nope.json: not found"),
        (["predict", "--model", "{m}", "--link-rate", "fast"], "expected a link rate such as 25G"),
        (["predict", "--model", "{m}", "--algorithm", "nccl"], "no fit for 'nccl'; it has ring"),
        (["predict", "--model", "{m}", "--topology", "two-tier"], "--hosts-per-leaf: expected"),
        (["predict", "--model", "{m}", "--run", "nowhere"], "--run nowhere: no summary.json"),
        (["fit", "{b}", "--out", "{m}x", "--segments", "9"], "--segments: expected 1 to 4"),
        (["fit", "missing.json"], "bench file missing.json: not found"),
        (["fit", "{m}"], "expected the JSON `dist-logreg bench --out` writes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(model_file, bench_file, args, message):
    args = [a.format(m=model_file, b=bench_file) for a in args]
    r = dl("model", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
