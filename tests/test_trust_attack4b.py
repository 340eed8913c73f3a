"""The fourth attack on the simulator: each case wrote an unphysical number with exit 0 or
ended in a traceback; each is now one line naming the option, key and value, exit status 2,
nothing written (or, for the packet engine, a time at or above its own ideal)."""

from __future__ import annotations

import json

import pytest

from dist_logreg.errors import UsageError
from tests.test_simulate_attack import cli, refused
from tests.test_trust_packet import needs_ns3

FLAT64 = ["--fabric", "flat:hosts=64", "--bytes", "1M", "--algorithm", "ring"]


@pytest.mark.parametrize(
    "ranks, workload, words",
    [
        # N-H5: 1e6 s x 1e7 / 2 ranks = 5e12 s a pass (317,000 years), written with exit 0
        (
            "2",
            "params=1e6,forward=1000000s,backward=1000000s,strong=10000000",
            ["strong", "at 2 ranks", "at most 1e+06 s"],
        ),
        # 2 ms x 1e9 / 2 = 1e6 s forward at 2 ranks; backward 1.5e6 s: above the bound
        ("2,64", "params=1e6,forward=1ms,backward=3ms,strong=1000", None),
        ("2,64", "params=1e6,forward=1ms,backward=3ms,strong=1000000000", ["strong", "at most"]),
        ("2", "params=1e6,forward=1ms,backward=1ms,strong=100000000", ["strong", "10,000,000"]),
    ],
)
def test_strong_scaling_bounds_the_compute(tmp_path, ranks, workload, words):
    out = tmp_path / "o"
    fab = [x for x in FLAT64 if x not in ("--bytes", "1M")]  # not read with --workload (J-M2)
    r = cli(*fab, "--ranks", ranks, "--workload", workload, "--out", str(out), timeout=120)
    if words is None:  # 3 ms x 1000 / 2 = 1.5 s a pass: well inside the bound
        assert r.returncode == 0, r.stderr[-600:]
        return
    refused(r, *words)
    assert not (out / "simulate.json").exists()


def test_strong_bound_is_checked_at_the_smallest_rank_count():
    """The compute per rank is pass x strong / ranks: the fewest ranks give the longest."""
    from dist_logreg.sim.workload import MAX_SECONDS, parse_workload

    w = parse_workload("params=1e6,forward=1s,backward=1s,strong=4000000")
    w.check_ranks([4, 64])  # 1 s x 4e6 / 4 = 1e6 s: at the bound, accepted
    assert w.compute(4)[0] == pytest.approx(MAX_SECONDS)
    with pytest.raises(UsageError, match="at 2 ranks"):
        w.check_ranks([2, 64])


def _row(r) -> dict:
    assert r.returncode == 0, r.stderr[-600:]
    return json.loads(r.stdout)["results"][0]


@needs_ns3
def test_packet_ideal_uses_the_link_delays_it_ran_with():
    """N-H3: ns-3 ran with --link-delay's 0 ns, the ideal (and the job's lower bound) with the
    spec's 10 us: a time 0.2x its own "ideal" with exit 0. The ideal of the links at 0 ns is
    the flow engine's on a fabric whose link-latency is 0 ns."""
    job = ["--ranks", "4", "--bytes", "1K", "--algorithm", "ring", "--json"]
    delays = ["--link-delay", "host-up=0ns", "--link-delay", "host-down=0ns"]
    pk = _row(
        cli(
            "--fabric",
            "flat:hosts=4,link-latency=10us",
            *job,
            "--engine",
            "packet",
            *delays,
            timeout=300,
        )
    )
    fl = _row(cli("--fabric", "flat:hosts=4,link-latency=0ns", *job, timeout=120))
    assert pk["ideal_s"] == pytest.approx(fl["ideal_s"], rel=1e-9)
    assert pk["time_s"] >= pk["ideal_s"]


def test_exact_refuses_a_message_graph_over_memory(monkeypatch):
    """N-H6: ring at 8192 ranks (8192 x 2(8192-1) = 134,201,344 messages) passed the time
    estimate, then ended in a MemoryError traceback: the graph's memory is now estimated
    against the memory available before it is built (here a 1 GiB limit)."""
    from dist_logreg.sim import exact

    monkeypatch.setattr(exact, "memory_limit", lambda: 1 << 30)
    with pytest.raises(UsageError, match=r"ring at 8192 ranks is 134,201,344 messages"):
        exact.check_memory("ring", 8192)
    exact.check_memory("ring", 64)  # 8064 messages: kilobytes
    exact.check_memory("rabenseifner", 8192)  # 2 log2(8192) = 26 steps: 213,000 messages


def test_simulate_exact_checks_memory_before_building(monkeypatch, tmp_path):
    """The whole command: refused in one line, the message graph never built."""
    from dist_logreg.cli.main import build_parser
    from dist_logreg.cli.simulate_run import simulate_doc
    from dist_logreg.sim import exact

    def never(*a, **k):
        raise AssertionError("the message graph was built")

    monkeypatch.setattr(exact, "memory_limit", lambda: 1 << 20)  # 1 MiB: 64 ranks do not fit
    monkeypatch.setattr(exact, "messages", never)
    argv = ["simulate", *FLAT64[:2], "--ranks", "64", "--bytes", "1K", "--algorithm", "ring"]
    args = build_parser().parse_args([*argv, "--exact"])
    with pytest.raises(UsageError, match=r"--exact: ring at 64 ranks is 8,064 messages"):
        simulate_doc(args, progress=lambda *a: None)


def test_scenario_given_twice_is_refused():
    """N-M11: the first of two --scenario options was silently dropped."""
    fab = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2", "--ranks", "4"]
    twice = ["--scenario", "straggler:factor=2", "--scenario", "fail:spine=0"]
    r = cli(*fab, "--bytes", "1M", "--algorithm", "ring", *twice)
    refused(r, "--scenario", "given twice")


@pytest.mark.parametrize("key", ["flops", "params", "flop-rate"])
def test_a_number_past_the_bound_names_the_bound(key):
    """N-M12: flops=1e30 was refused as not "a positive number"; the bound is 1e16."""
    from dist_logreg.sim.workload import parse_workload

    given = {"params": "1e6", "flops": "1e9", "flop-rate": "1e12", key: "1e30"}
    spec = ",".join(f"{k}={v}" for k, v in given.items())
    with pytest.raises(UsageError, match=rf"{key}: expected below 1e\+16, got '1e30'"):
        parse_workload(spec)
