"""Defects found by the second attack on issue 29's surfaces, each a test that failed before
its fix: rail keys without a bound (a traceback, or 1e+303 s with exit 0) and ``--exact``
spinning forever on a rail fabric's few-byte messages."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.test_model_cli import dl
from tests.test_sim_packet import needs_ns3
from tests.test_trust_sim_numbers import refused

RAIL = "rail:hosts-per-unit=2,spines=2"


@pytest.mark.parametrize(
    "spec, words",
    [
        (RAIL + ",scaleup-rate=1e-308", ["scaleup-rate", "at least"]),
        (RAIL + ",scaleup-rate=1e30", ["scaleup-rate", "at most"]),
        (RAIL + ",scaleup-latency=1e308", ["scaleup-latency", "at most", "1e+308"]),
        (RAIL + ",scaleup-latency=1e30", ["scaleup-latency", "at most"]),
        (RAIL + ",nic-efficiency=1e-308", ["nic-efficiency", "at least", "1e-308"]),
    ],
)
def test_a_rail_value_out_of_bounds_is_refused_with_the_bound(spec, words):
    """Before: ``time_s is inf (a bug)`` with a traceback, or a time of 1.2e+31 s (a
    latency of 1e30 s) or 3.9e+303 s (an efficiency of 1e-308) printed with exit 0."""
    refused(spec, *words)


def test_rail_values_at_their_bounds_simulate_finite_times():
    spec = RAIL + ",scaleup-rate=8b/s,scaleup-latency=10s,nic-efficiency=0.001"
    r = dl("simulate", "--fabric", spec, "--ranks", "16", "--bytes", "1M", "--json")
    assert r.returncode == 0, r.stderr
    assert all(np.isfinite(x["time_s"]) for x in json.loads(r.stdout)["results"])


@pytest.mark.parametrize("algorithm", ["ring", "hierarchical"])
def test_exact_on_a_rail_fabric_with_a_few_bytes_ends(algorithm):
    """16 ranks, 16 B: 1-byte chunks left a residue of 2.6e-9 B whose finish time
    (5.9e-21 s) was below the clock's resolution, so the event loop advanced by 0 s forever.
    The phase-synchronous time is an upper bound of the exact one (up to the exact mode's
    whole-byte chunks: 1 B where the phases carry 1/16 B), and both are at least the job's
    lower bound (checked by the engine itself)."""
    args = ["simulate", "--fabric", RAIL, "--ranks", "16", "--algorithm", algorithm]
    args += ["--bytes", "1,16", "--json"]

    def run(*extra):
        cmd = [sys.executable, "-m", "dist_logreg", *args, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    exact, phased = run("--exact"), run()
    assert exact.returncode == 0 and phased.returncode == 0, exact.stderr[-600:]
    t_exact = [x["time_s"] for x in json.loads(exact.stdout)["results"]]
    t_phased = [x["time_s"] for x in json.loads(phased.stdout)["results"]]
    assert all(0 < e <= p * (1 + 1e-5) for e, p in zip(t_exact, t_phased, strict=True)), (
        t_exact,
        t_phased,
    )


FLAT = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--queue", "99999999999999999999T"], ["--queue", "4294967295"]),
        (["--ecn", "5G"], ["--ecn", "4294967295"]),
        (["--link-delay", "host-up=1e308"], ["--link-delay host-up", "10 s", "1e+308"]),
        (["--min-rto", "1e308"], ["--min-rto", "10 s"]),
        (["--queue-samples", "1000000000"], ["--queue-samples", "100000"]),
        (["--max-wall", "²h"], ["--max-wall", "'²h'"]),
    ],
)
def test_a_packet_option_beyond_ns3s_range_is_refused(args, words):
    """Before: an ``OverflowError`` traceback (``--queue``), a ``ValueError`` traceback
    (``²h``: ``isdigit`` takes a superscript), a delay of 1e308 s that overflowed ns-3's
    clock and gave 30 us (below the 42 us ideal) with exit 0, a sampler of 10^9 samples
    that ran out of memory. Refused before ns-3 is imported."""
    r = dl(*FLAT, "--engine", "packet", "--bytes", "1K", *args)
    assert r.returncode == 2, (r.stdout[-300:], r.stderr[-600:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_ranks_per_host_that_would_overflow_is_refused():
    """Before: ``OverflowError: Python int too large to convert to C long``."""
    cmd = [sys.executable, "-m", "dist_logreg", *FLAT, "--bytes", "1K"]
    r = subprocess.run(
        [*cmd, "--ranks-per-host", str(10**19)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--ranks-per-host" in r.stderr and "1000000" in r.stderr, r.stderr


def _limited_memory():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@needs_ns3
def test_the_queue_sampler_never_steps_below_ns3s_resolution():
    """A 64-byte ring with no latency and no overhead: the flow time over the default 500
    samples is below 1 ns, which ns-3 rounds to 0, so the sampler rescheduled itself at
    +0 forever and died in ``std::bad_alloc`` (a traceback). At least 1 ns now. (With no
    latency at all the collective is now refused as under ns-3's clock, so the links get
    10 ns: six steps of two hops, about 120 ns, over 500 samples is still under 1 ns.)"""
    spec = "flat:hosts=4,link-latency=10ns,alpha=0"
    cmd = [sys.executable, "-m", "dist_logreg", "simulate", "--fabric", spec, "--ranks", "4"]
    cmd += ["--algorithm", "ring", "--engine", "packet", "--bytes", "64", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=280, preexec_fn=_limited_memory)
    assert r.returncode == 0, r.stderr[-800:]
    res = json.loads(r.stdout)["results"][0]
    assert np.isfinite(res["time_s"]) and res["time_s"] > 0


@needs_ns3
def test_a_long_link_delay_ends_in_bounded_memory():
    """``--link-delay host-up=10s`` (and host-down: one cable): the run lasts 120 s of
    simulated time, the sampler's interval was sized by the flow time without the delay
    (80 ns), so it sampled 1.5e9 times (memory without bound; killed after 200 s); and the
    run's stop (60 s) was before the end. Now: exit 0, the ring's 6 dependent steps each
    cross a 10 s host link."""
    cmd = [sys.executable, "-m", "dist_logreg", *FLAT, "--engine", "packet", "--bytes", "1K"]
    cmd += ["--link-delay", "host-up=10s", "--link-delay", "host-down=10s", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=280, preexec_fn=_limited_memory)
    assert r.returncode == 0, r.stderr[-800:]
    t = json.loads(r.stdout)["results"][0]["time_s"]
    assert 6 * 10.0 <= t < 1e4, t


@pytest.mark.parametrize(
    "change, words",
    [
        ({"algorithm": "nope"}, ["record 0", "algorithm", "'nope'", "ring"]),
        ({"algorithm": ""}, ["record 0", "algorithm", "''"]),
        ({"collective": "nope"}, ["record 0", "collective", "'nope'", "allreduce"]),
        ({"collective": [1]}, ["record 0", "collective", "[1]"]),
    ],
)
def test_a_bench_record_of_an_unknown_algorithm_is_one_line(tmp_path, change, words):
    """Before: ``ValueError: unknown allreduce algorithm 'nope'`` with a traceback, from
    deep in the fit."""
    rec = {"algorithm": "ring", "time_s": 1e-5, "world_size": 4}
    recs = [{**rec, "bytes": b} for b in (1024, 65536)]
    recs[0].update(change)
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps({"records": recs}))
    r = dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2, (r.stdout[-300:], r.stderr[-600:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert not (tmp_path / "m.json").exists()


def test_a_command_started_with_stdout_closed_ends_without_a_traceback():
    """``dist-logreg simulate ... >&-``: Python's ``sys.stdout`` is None, and the CLI's
    final flush was ``AttributeError: 'NoneType' object has no attribute 'flush'``."""
    cmd = [sys.executable, "-m", "dist_logreg", *FLAT, "--bytes", "1K"]
    r = subprocess.run(
        cmd, stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(1)
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-800:]


def test_a_p2p_window_beyond_the_memory_is_refused_before_allocating(monkeypatch):
    """``bench --p2p bw --window 100000000`` held 11.5 GB of receive buffers and request
    objects and ran past 12 minutes; refused now with the estimate."""
    import argparse

    from dist_logreg.bench import pairs, sweep
    from dist_logreg.errors import UsageError

    monkeypatch.setattr(sweep, "available_memory", lambda: 16 << 30)
    args = argparse.Namespace(p2p="bw", pairs="0:1", window=100_000_000, max_bytes=64)
    with pytest.raises(UsageError, match="--window 100000000 x --max-bytes 64.*GiB"):
        pairs.check_args(args, 2)
    pairs.check_args(argparse.Namespace(**{**vars(args), "window": 64}), 2)


def test_a_max_bytes_beyond_the_memory_is_refused_before_allocating(monkeypatch):
    """``bench --max-bytes 99999999999999999999T`` was killed by the kernel (exit 137)."""
    import argparse

    from dist_logreg.bench import sweep
    from dist_logreg.errors import UsageError

    monkeypatch.setattr(sweep, "available_memory", lambda: 16 << 30)
    given = dict(allreduce="mpi", min_bytes=8, max_bytes=2**70, factor=2, iters=1, warmup=0)
    args = argparse.Namespace(**given, tag=None, ranks_per_node=None)
    with pytest.raises(UsageError, match="--max-bytes .*GiB"):
        sweep.check_args(args)
