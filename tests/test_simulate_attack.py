"""``dist-logreg simulate`` under bad input: one line naming the key and value, exit 2, no
traceback, no hang, nothing absurd in memory (each case hung, crashed or was accepted)."""

import json
import os
import subprocess
import sys

import pytest

FLAT = ["--fabric", "flat:hosts=4,rate=100G", "--ranks", "4", "--algorithm", "ring"]


def cli(*args, timeout=30):
    try:
        return subprocess.run(
            [sys.executable, "-m", "dist_logreg", "simulate", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"simulate {' '.join(args)} hung past {timeout} s")


def refused(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout[-300:], r.stderr[-600:])
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    for w in words:
        assert w in last, last
    return last


@pytest.mark.parametrize(
    "spec, words",
    [
        ("flat:hosts=4,hosts=8", ["hosts", "twice"]),
        ("fat-tree:k=8,hosts=4", ["hosts", "fat-tree"]),
        ("leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,core-rate=1G", ["core-rate"]),
        ("flat:hosts=100000000", ["100000000 hosts", "at most"]),
        ("fat-tree:k=1000", ["fat-tree", "at most"]),
    ],
)
def test_bad_spec_strings(spec, words):
    refused(cli("--fabric", spec, "--ranks", "2", "--algorithm", "ring"), *words)


def test_spec_file_fifo_deep_huge_duplicate(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    refused(cli("--fabric", str(fifo), "--ranks", "2"), "regular file")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    refused(cli("--fabric", str(deep), "--ranks", "2"), "deep.json")
    huge = tmp_path / "huge.json"
    huge.write_text('{"topology": "flat", "hosts": 4' + " " * (2 << 20) + "}")
    refused(cli("--fabric", str(huge), "--ranks", "2"), "at most")
    dup = tmp_path / "dup.json"
    dup.write_text('{"topology": "flat", "hosts": 4, "hosts": 8}')
    refused(cli("--fabric", str(dup), "--ranks", "2"), "hosts", "twice")


def test_flows_and_cost_model_fifo(tmp_path):
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    refused(cli(*FLAT, "--flows", str(fifo)), "--flows", "regular file")
    refused(cli(*FLAT, "--cost-model", str(fifo)), "--cost-model", "regular file")


def test_out_not_a_directory(tmp_path):
    f = tmp_path / "afile"
    f.write_text("")
    refused(cli(*FLAT, "--bytes", "1M", "--out", str(f)), "--out", "directory")
    refused(cli(*FLAT, "--bytes", "1M", "--out", str(f / "sub")), "--out", "cannot write")
    refused(cli(*FLAT, "--bytes", "1M", "--out", ""), "--out")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--placement", "random", "--placement-seed", "-1"], ["--placement-seed", "-1"]),
        (["--seeds", "100000"], ["--seeds", "100000"]),
        (["--bytes", "1000000000000000000000000000000"], ["--bytes"]),
    ],
)
def test_bad_options(args, words):
    refused(cli(*FLAT, *args), *words)


def test_exact_for_hours_refused_up_front():
    # 65536 ranks, ring: 2(p-1) steps of p messages, 8.6e9 messages (the event-driven engine
    # plays a 4096-rank ring in a minute, issue 30): hours of event loop and far more memory
    # than a machine has; it must be refused before any of it.
    r = cli(
        "--fabric",
        "flat:hosts=16384",
        "--ranks",
        "65536",
        "--ranks-per-host",
        "4",
        "--algorithm",
        "ring",
        "--bytes",
        "100M",
        "--exact",
        timeout=20,
    )
    refused(r, "--exact", "estimated")


def _model(tmp_path, alphas):
    """A minimal fitted model: ``alphas[alg]`` (inter-host), gamma 0.01 ns/B."""

    def seg(a):
        return {
            "intra": {"alpha_s": a, "beta_s_per_byte": 1e-9},
            "inter": {"alpha_s": a, "beta_s_per_byte": 1e-9},
        }

    doc = {
        "format": "dist-logreg cost model",
        "version": 1,
        "breakpoints": [],
        "columns": ["alpha_intra", "beta_intra", "alpha_inter", "beta_inter", "gamma"],
        "gamma": [{"s_per_byte": 1e-11, "overhead_s": 0.0, "sizes": 4}],
        "algorithms": {
            a: {"formula": "", "segments": [seg(v)], "residuals": {}} for a, v in alphas.items()
        },
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    return path


def test_cost_model_alpha_and_gamma_printed_are_the_ones_used(tmp_path):
    path = _model(tmp_path, {"ring": 7e-6, "rabenseifner": 30e-6})
    args = ["--fabric", "flat:hosts=4,rate=100G", "--ranks", "4", "--bytes", "1M", "--json"]
    r = cli(*args, "--algorithm", "ring", "--cost-model", str(path))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # ring on one switch, p=4: 6 steps of alpha + 2 hops + (S/4)/B, 3 steps reduce S/4
    s, b = 1 << 20, 100e9 / 8
    expect = 6 * (7e-6 + 2e-6 + s / 4 / b) + 3 * (s / 4) * 1e-11
    assert doc["results"][0]["time_s"] == pytest.approx(expect, rel=1e-9)
    assert doc["fabric"]["params"]["alpha"]["value"] == pytest.approx(7e-6)
    assert doc["fabric"]["params"]["gamma"]["value"] == pytest.approx(1e-11)
    r = cli(*args, "--algorithm", "ring,rabenseifner", "--cost-model", str(path))
    alpha = json.loads(r.stdout)["fabric"]["params"]["alpha"]
    assert alpha["value"] is None and "ring 7 us" in alpha["source"]
    assert "rabenseifner 30 us" in alpha["source"]


def test_an_algorithm_given_twice_is_one_row():
    r = cli(*FLAT[:-1], "ring,ring", "--bytes", "1M", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["results"]) == 1


def test_exact_says_its_ideal_is_the_phase_synchronous_one():
    # one switch, p=13: exact is slower than phase-synchronous (early messages share a
    # folded rank's host link), so "x ideal" > 1 where only host links exist: the table
    # must say which run the ideal comes from.
    r = cli(
        "--fabric",
        "flat:hosts=16",
        "--ranks",
        "13",
        "--bytes",
        "3M",
        "--exact",
        "--algorithm",
        "recursive-doubling",
    )
    assert r.returncode == 0, r.stderr
    assert "ideal, bottleneck, flows/uplink and link utilisation are the phase-synchronous" in (
        r.stdout
    )


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("compute", float("nan"), ["time_s.compute", "nan"]),
        ("compute", -1.0, ["time_s.compute", "-1.0"]),
        ("world_size", 0, ["world_size", "0"]),
    ],
)
def test_run_summary_with_garbage_is_refused(tmp_path, key, value, words):
    summary = {
        "steps": 10,
        "world_size": 2,
        "allreduce": {"calls": 10, "bytes": 10240.0},
        "time_s": {"compute": 0.01},
    }
    if key == "compute":
        summary["time_s"]["compute"] = value
    else:
        summary[key] = value
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    refused(cli(*FLAT, "--run", str(tmp_path)), "--run", *words)


def test_busbw_of_a_small_allreduce_keeps_its_digits():
    # ring, p=2, 1 KiB on one switch: 2 steps of 5 us + 2 hops + 512 B at 50 GB/s
    t = 2 * (5e-6 + 2e-6 + 512 / 50e9)
    busbw = 1024 / t * 2 * 1 / 2
    r = cli("--fabric", "flat:hosts=2", "--ranks", "2", "--algorithm", "ring", "--bytes", "1K")
    assert r.returncode == 0, r.stderr
    assert f"{busbw / 1e6:.2f} MB/s" in r.stdout, r.stdout
