"""The cost model accepts nothing it cannot stand behind (issue 18, part 2).

Bad measurements and unidentifiable fits are refused by ``model fit``; a bad ``model.json``
is refused by every command that reads one, before any work; every prediction says how far
it can be trusted; rank counts up to a million in bounded memory.
"""

import json
import math
import tracemalloc

import numpy as np
import pytest

from dist_logreg.collective.closed_form import coefficients
from dist_logreg.collective.costfile import design
from dist_logreg.collective.schedule import Placement, shape
from tests.test_model_cli import dl

A_I, B_I, A_E, B_E, G = 3e-6, 2e-10, 40e-6, 8e-9, 1e-10
RING = "ring"


def records(sizes, names=("ring", "recursive-doubling"), places=((2, 1), (4, 1), (4, 2))):
    """Bench records made from known parameters (what `bench --out` writes)."""
    params = np.array([[A_I, B_I, A_E, B_E, G]])
    out = []
    for name in names:
        for p, k in places:
            place = Placement.blocks(p, k)
            for n in sizes:
                t = float((design(shape(name, place), n, []) * params).sum())
                out.append(
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
    return out


SIZES = [2**e for e in range(10, 24, 2)]


def write(tmp_path, recs, name="b.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"run": {}, "records": recs}))
    return path


def one_line(r, code=2):
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    bench = write(d, records(SIZES, names=("ring", "recursive-doubling", "mpi")))
    out = d / "model.json"
    r = dl("model", "fit", str(bench), "--out", str(out), "--segments", "1", "--link-rate", "1G")
    assert r.returncode == 0, r.stderr
    return out


# --- model fit: measurements -------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, want",
    [
        ("time_s", "NaN", "record 3: time_s: expected a finite number of seconds > 0"),
        ("time_s", 1e300, "record 3: time_s: expected at most"),
        ("time_s", -1.0, "record 3: time_s: expected a finite number of seconds > 0, got -1.0"),
        ("time_s", 0.0, "record 3: time_s: expected a finite number of seconds > 0, got 0.0"),
        ("time_s", "x", "record 3: time_s: expected a finite number of seconds > 0, got 'x'"),
        ("bytes", -8, "record 3: bytes: expected a whole number of bytes from 1 to 2^50, got -8"),
        ("bytes", 1e30, "record 3: bytes: expected a whole number of bytes from 1"),
        ("world_size", 0, "record 3: world_size: expected an integer from 1 to 10000000, got 0"),
        ("reduce_s", "Infinity", "record 3: reduce_s: expected a finite number of seconds"),
    ],
)
def test_fit_refuses_bad_measurements_naming_the_record(tmp_path, key, value, want):
    recs = records(SIZES)
    recs[3][key] = value
    text = json.dumps({"records": recs}).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    bench = tmp_path / "b.json"
    bench.write_text(text)
    out = tmp_path / "model.json"
    line = one_line(dl("model", "fit", str(bench), "--out", str(out)))
    assert f"bench file {bench}: {want}" in line
    assert not out.exists()


def test_fit_on_one_message_size_cannot_identify_beta(tmp_path):
    bench = write(tmp_path, records([4096]))
    line = one_line(dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json")))
    assert "cannot identify beta" in line and "1 message size" in line and "ring" in line


def test_fit_on_sizes_spanning_less_than_a_factor_8_cannot_identify_beta(tmp_path):
    bench = write(tmp_path, records([4096, 8192, 16384]))
    line = one_line(dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json")))
    assert "cannot identify beta" in line and "a factor of 4" in line and "at least 8" in line


def test_fit_with_given_breakpoints_checks_every_segment(tmp_path):
    bench = write(tmp_path, records(SIZES))
    # a breakpoint leaving one size above it: that segment cannot be fitted
    line = one_line(
        dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"), "--breakpoints", "2M")
    )
    assert "cannot identify beta" in line and "segment 1" in line


def test_a_good_fit_still_recovers_the_parameters(model):
    seg = json.loads(model.read_text())["algorithms"][RING]["segments"][0]
    assert seg["inter"]["beta_s_per_byte"] == pytest.approx(B_E, rel=0.01)


# --- model.json: validated on load -------------------------------------------------------


def corrupt(model, tmp_path, edit):
    doc = json.loads(model.read_text())
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))  # json.dumps writes NaN for nan: as a broken file would
    return path


def _set_alpha(v):
    def edit(doc):
        doc["algorithms"][RING]["segments"][0]["inter"]["alpha_s"] = v

    return edit


BAD_MODELS = [
    (
        _set_alpha(float("nan")),
        "algorithms.ring.segments[0].inter.alpha_s: expected a finite number >= 0, got nan",
    ),
    (
        _set_alpha(-5e-3),
        "algorithms.ring.segments[0].inter.alpha_s: expected a finite number >= 0, got -0.005",
    ),
    (
        _set_alpha("x"),
        "algorithms.ring.segments[0].inter.alpha_s: expected a finite number >= 0, got 'x'",
    ),
    (_set_alpha(1e9), "algorithms.ring.segments[0].inter.alpha_s: expected at most"),
    (lambda d: d["gamma"][0].update(s_per_byte=None), "gamma[0].s_per_byte: expected a finite"),
    (lambda d: d.update(breakpoints=["64K"]), "breakpoints[0]: expected a whole number of bytes"),
    (
        lambda d: d["algorithms"][RING]["segments"][0].update(inter=[1]),
        "algorithms.ring.segments[0].inter: expected an object with alpha_s and beta_s_per_byte",
    ),
]


@pytest.mark.parametrize("edit, want", BAD_MODELS)
def test_model_predict_refuses_a_bad_model_file_naming_the_key(model, tmp_path, edit, want):
    bad = corrupt(model, tmp_path, edit)
    line = one_line(dl("model", "predict", "--model", str(bad), "--bytes", "1M"))
    assert f"model file {bad}: {want}" in line


def test_scale_refuses_a_bad_fitted_model_before_any_run(model, tmp_path):
    bad = corrupt(model, tmp_path, _set_alpha(float("nan")))
    r = dl(
        "scale",
        "--ranks",
        "1,2",
        "--model",
        str(bad),
        "--out",
        str(tmp_path / "s"),
        "--",
        "train",
        "--steps",
        "2",
    )
    assert "alpha_s: expected a finite number >= 0, got nan" in one_line(r)
    assert not (tmp_path / "s" / "p1").exists()


@pytest.mark.parametrize(
    "doc, want",
    [
        ({"alpha_s": "x", "beta_s_per_byte": 1e-9}, "alpha_s: expected a finite number >= 0"),
        ({"alpha_s": -1, "beta_s_per_byte": 1e-9}, "alpha_s: expected a finite number >= 0"),
        ({"alpha_s": 1e-6, "beta_s_per_byte": float("nan")}, "beta_s_per_byte: expected a"),
        ({"alpha_s": 1e-6}, "expected alpha_s and beta_s_per_byte"),
        (
            {"algorithms": {"ring": {"alpha_s": 1e-6, "beta_s_per_byte": -2}}},
            "algorithms.ring.beta_s_per_byte: expected a finite number >= 0",
        ),
    ],
)
def test_scale_refuses_bad_hand_written_models(tmp_path, doc, want):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    r = dl(
        "scale",
        "--ranks",
        "1,2",
        "--model",
        str(path),
        "--out",
        str(tmp_path / "s"),
        "--",
        "train",
        "--steps",
        "2",
    )
    assert want in one_line(r)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_scale_refuses_a_timeout_that_is_not_positive(tmp_path, value):
    r = dl(
        "scale",
        "--ranks",
        "1",
        "--timeout",
        value,
        "--out",
        str(tmp_path / "s"),
        "--",
        "train",
        "--steps",
        "2",
    )
    assert "--timeout: expected a number of seconds from 0.001 to 1e+06" in one_line(r)


# --- rank counts -------------------------------------------------------------------------


@pytest.mark.parametrize("ranks", ["0", "-3"])
def test_predict_refuses_ranks_below_one(model, ranks):
    line = one_line(dl("model", "predict", "--model", str(model), "--ranks", ranks))
    assert f"--ranks: expected an integer from 1 to 1000000, got {ranks}" in line


def test_predict_refuses_a_billion_ranks_instead_of_growing_without_bound(model):
    line = one_line(dl("model", "predict", "--model", str(model), "--ranks", "1000000000"))
    assert "--ranks: expected an integer from 1 to 1000000, got 1000000000" in line


@pytest.mark.parametrize("k", [1, 8])
def test_a_million_ranks_in_bounded_memory(model, k):
    tracemalloc.start()
    r = dl(
        "model",
        "predict",
        "--model",
        str(model),
        "--ranks",
        "1000000",
        "--ranks-per-host",
        str(k),
        "--link-rate",
        "400G",
        "--bytes",
        "8,1M,64M",
        "--json",
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.returncode == 0, r.stderr
    assert peak < 400e6, f"peak {peak / 1e6:.0f} MB"
    rows = json.loads(r.stdout)["predictions"]
    ring = next(x for x in rows if x["algorithm"] == RING and x["bytes"] == 64 << 20)
    # k = 1: every rank its own host, the ring's closed form with the 400G beta
    if k == 1:
        a, b, c = coefficients("ring", 10**6)
        n = 64 << 20
        want = a * A_E + b * n * B_E * 1e9 / 400e9 + c * n * G
        assert ring["time_s"] == pytest.approx(want, rel=0.01)


def reference_hierarchical(node_of):
    """Hierarchical's phases written flow by flow (the oracle of the vectorised version)."""
    node_of = np.asarray(node_of)
    members = [np.flatnonzero(node_of == n) for n in dict.fromkeys(node_of.tolist())]
    members.sort(key=lambda m: m[0])
    out = []
    for i in range(1, max(m.size for m in members)):
        src = [int(m[i]) for m in members if m.size > i]
        dst = [int(m[0]) for m in members if m.size > i]
        out.append((src, dst))
    return out, [int(m[0]) for m in members]


@pytest.mark.parametrize(
    "node_of",
    [[0, 0, 1, 1, 1, 2], [2, 0, 2, 1, 0, 0, 1], [0] * 5, list(range(6)), [0, 1, 0, 1, 0, 1, 3]],
)
def test_vectorised_hierarchical_phases_match_the_flow_by_flow_ones(node_of):
    from dist_logreg.collective.steps import hierarchical_phases

    got = hierarchical_phases(node_of)
    ups, leaders = reference_hierarchical(node_of)
    k = len(ups)
    assert [(ph.src.tolist(), ph.dst.tolist()) for ph in got[:k]] == ups
    assert [(ph.dst.tolist(), ph.src.tolist()) for ph in got[len(got) - k :]] == ups
    ring = got[k : len(got) - k]
    if len(leaders) > 1:
        assert ring[0].src.tolist() == leaders


@pytest.mark.parametrize("p", [2, 3, 5, 6, 7, 12, 33])
def test_vectorised_fold_matches_mpich(p):
    from dist_logreg.collective.steps import _folded

    q = 1 << (p.bit_length() - 1)
    extra = p - q
    want = [2 * i + 1 if i < extra else i + extra for i in range(q)]  # MPICH's new ranks
    assert _folded(p)[2].tolist() == want


def test_placement_of_a_million_ranks_is_built_without_a_python_loop():
    place = Placement.blocks(10**6, 8, 4, 2.0)
    assert place.hosts == 125000 and len(place.leaf_of) == 125000
    assert hash(place) == hash(Placement.blocks(10**6, 8, 4, 2.0))


# --- how far a prediction can be trusted -------------------------------------------------


def test_every_prediction_states_the_fit_residuals(model):
    r = dl("model", "predict", "--model", str(model), "--ranks", "4", "--bytes", "64K")
    assert r.returncode == 0, r.stderr
    assert "fit residuals on its own data: ring median" in r.stdout
    assert "worst" in r.stdout
    js = json.loads(
        dl(
            "model", "predict", "--model", str(model), "--ranks", "4", "--bytes", "64K", "--json"
        ).stdout
    )
    res = js["trust"]["residuals"]["ring"]
    assert 0 <= res["median_rel"] <= res["max_rel"] < 0.01


def test_extrapolation_in_size_ranks_and_link_rate_is_warned_with_how_far(model):
    r = dl(
        "model",
        "predict",
        "--model",
        str(model),
        "--ranks",
        "512",
        "--link-rate",
        "400G",
        "--bytes",
        "1G",
        "--algorithm",
        "ring",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # measured: 1 KiB .. 4 MiB, 2..4 ranks, 1 Gbit/s
    assert "extrapolation: size 1 GiB is 256x above the largest measured (4 MiB)" in out
    assert "extrapolation: 512 ranks is 128x the most measured (4)" in out
    assert "extrapolation: link rate 400 Gbit/s is 400x the fit's (1 Gbit/s)" in out


def test_no_extrapolation_warning_inside_the_measured_range(model):
    r = dl(
        "model",
        "predict",
        "--model",
        str(model),
        "--ranks",
        "4",
        "--bytes",
        "64K",
        "--algorithm",
        "ring",
    )
    assert r.returncode == 0 and "extrapolation" not in r.stdout


# --- the user states the fabric ----------------------------------------------------------


def test_user_stated_fabric_parameters_replace_the_fit_and_say_so(model):
    n, p = 100 << 20, 512
    r = dl(
        "model",
        "predict",
        "--model",
        str(model),
        "--ranks",
        str(p),
        "--link-rate",
        "400G",
        "--bytes",
        str(n),
        "--algorithm",
        "ring",
        "--alpha",
        "2us",
        "--reduce-rate",
        "50GB/s",
        "--link-latency",
        "1us",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    (row,) = got["predictions"]
    a, b, c = coefficients("ring", p)
    want = a * (2e-6 + 1e-6) + b * n * 8 / 400e9 * (B_E * 1e9 / 8) + c * n / 50e9
    assert row["time_s"] == pytest.approx(want, rel=0.01)
    src = got["parameters"]
    assert src["alpha"].startswith("user") and src["gamma"].startswith("user")
    assert src["link_latency"].startswith("user") and src["beta"].startswith("fit")
    text = dl(
        "model",
        "predict",
        "--model",
        str(model),
        "--ranks",
        str(p),
        "--bytes",
        str(n),
        "--algorithm",
        "ring",
        "--gamma",
        "0.02ns",
    ).stdout
    assert "parameters: alpha from the fit" in text and "gamma 0.02 ns/B from the user" in text


@pytest.mark.parametrize(
    "args, want",
    [
        (["--alpha", "fast"], "--alpha: expected a time such as 2us, 500ns or 1e-6 (seconds)"),
        (["--alpha=-2us"], "--alpha: expected a time such as 2us"),
        (["--gamma", "0.02ns", "--reduce-rate", "50GB/s"], "--gamma and --reduce-rate: give one"),
        (["--reduce-rate", "0GB/s"], "--reduce-rate: expected a rate such as 50GB/s"),
        (["--link-latency", "nan"], "--link-latency: expected a time such as 2us"),
    ],
)
def test_user_fabric_parameters_are_checked(model, args, want):
    assert want in one_line(dl("model", "predict", "--model", str(model), *args))


# --- mpi is not named fastest on a generic model ------------------------------------------


def test_mpi_is_left_out_of_fastest_with_a_note(model):
    r = dl("model", "predict", "--model", str(model), "--ranks", "64", "--bytes", "8,16M", "--json")
    got = json.loads(r.stdout)
    assert all(f["algorithm"] != "mpi" for f in got["fastest"])
    assert any("mpi" in n and "left out of fastest" in n for n in got["notes"])
    assert any(x["algorithm"] == "mpi" for x in got["predictions"])  # still predicted
    assert all(math.isfinite(x["time_s"]) for x in got["predictions"])


# --- train and bench read the model at start-up ------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
def test_train_refuses_a_bad_model_file_before_training(model, tmp_path, n):
    from tests.conftest import run_mpi, train_cmd

    bad = corrupt(model, tmp_path, _set_alpha(-5e-3))
    out = tmp_path / "run"
    r = run_mpi(
        n,
        train_cmd(
            "--steps",
            "5",
            "--samples",
            "64",
            "--features",
            "4",
            "--batch-size",
            "8",
            "--allreduce",
            "ring",
            "--model",
            str(bad),
            "--out",
            str(out),
        ),
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "alpha_s: expected a finite number >= 0, got -0.005" in r.stderr
    assert not (out / "summary.json").exists() and "step" not in r.stdout.lower()


def test_bench_refuses_a_bad_model_file_before_the_sweep(model, tmp_path):
    from tests.conftest import BIN, run_mpi

    bad = corrupt(model, tmp_path, _set_alpha(float("nan")))
    r = run_mpi(
        2,
        [
            str(BIN / "dist-logreg"),
            "bench",
            "--allreduce",
            "ring",
            "--model",
            str(bad),
            "--max-bytes",
            "64",
        ],
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "alpha_s: expected a finite number >= 0, got nan" in r.stderr


def test_the_comm_fraction_of_a_run_says_how_far_to_trust_it(model, tmp_path):
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
        str(model),
        "--run",
        str(tmp_path),
        "--ranks",
        "1024",
        "--link-rate",
        "100G",
    )
    assert r.returncode == 0, r.stderr
    assert "fit residuals on its own data: ring median" in r.stdout
    assert "extrapolation: 1024 ranks is 256x the most measured (4)" in r.stdout
