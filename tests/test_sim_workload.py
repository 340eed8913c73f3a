"""``simulate --workload`` (issue 30, 1 and 5): a training step's buckets against its compute.

The independent reasons: the Hockney closed form of each bucket's allreduce where nothing
is shared (one switch; the same form as tests/test_sim_closed_forms.py), and the hand
arithmetic of one communication stream (overlap off: every bucket after the backward
pass; overlap on: each bucket's allreduce shorter than the next bucket's compute, so only
the last one is exposed).
"""

import json
import subprocess
import sys

import pytest

from dist_logreg.collective.algorithms import RABENSEIFNER, RECURSIVE_DOUBLING, RING
from dist_logreg.collective.closed_form import model_time
from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep
from dist_logreg.sim.step import step_doc, step_row
from dist_logreg.sim.workload import collectives, parse_workload

P = 8
ALPHA, L, BETA, GAMMA = 5e-6, 1e-6, 8 / 100e9, 1 / 20e9
FLAT = f"flat:hosts={P},rate=100G,link-latency=1us,alpha=5us,reduce-rate=20GB/s"
MIB = 1 << 20


def ring_closed(nbytes: int) -> float:
    """One ring allreduce alone on one switch: 2(p-1) steps of alpha + 2 hops + n/p bytes."""
    return model_time(RING.name, nbytes, P, ALPHA + 2 * L, BETA, GAMMA)


def simulate(spec: str, algorithm=RING.name, ranks=(P,)) -> dict:
    w = parse_workload(spec)
    fab = parse_fabric(FLAT)
    algs = list(collectives(w, algorithm))
    doc = sweep(fab, FLAT, list(ranks), algs, sorted(set(w.sizes())))
    return step_doc(w, doc["results"])


def test_buckets_split_the_gradient_last_layers_first():
    w = parse_workload("params=12M,dtype=fp32,buckets=16M,forward=1ms,backward=2ms")
    assert w.sizes() == [16 * MIB, 16 * MIB, 48_000_000 - 32 * MIB]
    assert parse_workload("params=7e9,dtype=bf16,buckets=0,forward=1ms").sizes() == [14 * 10**9]
    assert parse_workload("llama-7b:overlap=no").overlap is False


def test_overlap_off_is_compute_plus_every_buckets_closed_form():
    spec = "params=12M,dtype=fp32,buckets=16M,forward=10ms,backward=20ms,optimizer=1ms,overlap=no"
    s = simulate(spec)
    row = s["rows"][0]
    comm = sum(ring_closed(b) for b in parse_workload(spec).sizes())
    assert row["comm_s"] == pytest.approx(comm, rel=1e-9)
    assert row["step_s"] == pytest.approx(0.031 + comm, rel=1e-9)
    assert row["exposed_s"] == pytest.approx(comm, rel=1e-9)
    assert row["comm_fraction"] == pytest.approx(comm / (0.031 + comm), rel=1e-9)
    # the timeline: one stream, each bucket after the one before, all after backward
    tl = s["timeline"]["buckets"]
    assert tl[0]["start_s"] == pytest.approx(0.030) and tl[-1]["end_s"] == pytest.approx(
        0.030 + comm
    )
    assert all(
        a["end_s"] == pytest.approx(b["start_s"]) for a, b in zip(tl[:-1], tl[1:], strict=True)
    )


def test_overlap_on_hides_all_but_the_last_bucket_when_each_is_shorter_than_the_next():
    # 4 buckets of 1 MiB over a 100 ms backward pass: 25 ms of compute between two ready
    # times, against ~0.2 ms for one bucket's allreduce
    t = ring_closed(MIB)
    assert t < 0.025
    row = simulate("params=1048576,dtype=fp32,buckets=1M,forward=10ms,backward=100ms")["rows"][0]
    assert row["buckets"] == 4
    assert row["exposed_s"] == pytest.approx(t, rel=1e-9)
    assert row["step_s"] == pytest.approx(0.110 + t, rel=1e-9)
    assert row["comm_s"] == pytest.approx(4 * t, rel=1e-9)


def test_overlap_on_when_communication_is_the_bottleneck_the_stream_sets_the_step():
    # backward 0.1 ms: the first bucket is ready at 25 us, then four allreduces back to back
    t = ring_closed(MIB)
    row = simulate("params=1048576,dtype=fp32,buckets=1M,forward=0,backward=0.1ms")["rows"][0]
    assert row["step_s"] == pytest.approx(0.1e-3 / 4 + 4 * t, rel=1e-9)


def test_sharded_without_overlap_costs_what_the_allreduce_costs():
    # the ring's reduce-scatter + allgather are its allreduce's two halves, step for step
    spec = "params=1048576,dtype=fp32,buckets=1M,forward=1ms,backward=2ms,overlap=no"
    whole = simulate(spec)["rows"][0]
    halves = simulate(spec + ",sync=sharded")["rows"][0]
    assert halves["step_s"] == pytest.approx(whole["step_s"], rel=1e-9)
    assert halves["step_s"] == pytest.approx(0.003 + 4 * ring_closed(MIB), rel=1e-9)
    with pytest.raises(UsageError, match="sync=sharded"):
        collectives(parse_workload(spec + ",sync=sharded"), RECURSIVE_DOUBLING.name)


def test_efficiency_is_against_the_smallest_rank_count_weak_and_strong():
    spec = "params=1048576,dtype=fp32,buckets=1M,forward=1ms,backward=2ms"
    rows = simulate(spec, ranks=(2, P))["rows"]
    assert rows[0]["efficiency"] == 1.0
    assert rows[1]["efficiency"] == pytest.approx(rows[0]["step_s"] / rows[1]["step_s"])
    w = parse_workload(spec + ",strong=2")
    strong = step_row(w, 4, RABENSEIFNER.name, lambda c, b: 0.0)[0]
    assert strong["compute_s"] == pytest.approx(0.003 * 2 / 4)  # one global batch over 4


@pytest.mark.parametrize("algorithm, overlapped", [("mpi", True), ("ring", False), (None, False)])
def test_the_command_writes_the_step_block_and_the_run_becomes_a_workload(
    tmp_path, algorithm, overlapped
):
    """Only MPI's non-blocking Iallreduce overlaps the next bucket's compute; the project's
    own algorithms run each bucket's allreduce to the end when it is posted."""
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "world_size": 2,
        "steps": 10,
        "allreduce": {"calls": 40, "bytes": 40 * 4096, "algorithm": algorithm},
        "time_s": {"compute": 0.5},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "simulate",
            "--fabric",
            FLAT,
            "--ranks",
            "2,8",
            "--algorithm",
            RING.name,
            "--run",
            str(run),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    step = json.loads(r.stdout)["step"]
    assert step["workload"]["buckets"] == 4 and step["workload"]["overlap"] is overlapped
    rows = {x["ranks"]: x for x in step["rows"]}
    assert rows[8]["compute_s"] == pytest.approx(0.05 * 2 / 8)  # the batch over 8 ranks
    assert rows[2]["compute_s"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("params=abc", "params: expected a positive number"),
        ("params=1M,dtype=int3", "dtype: expected one of"),
        ("params=1M,speed=2", "speed: expected one of the keys"),
        ("params=1M,overlap=maybe", "overlap: expected yes or no"),
        ("params=1M,sync=gossip", "sync: expected one of allreduce, sharded"),
        ("params=1M,forward=fast", "forward"),
        ("params=1M,flops=1e12,forward=1ms", "flops or forward/backward, not both"),
        ("nosuchmodel", "expected a preset"),
        ("forward=1ms", "params: required"),
    ],
)
def test_a_bad_workload_is_one_line_naming_the_key_and_value(spec, words):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "simulate",
            "--fabric",
            "flat:hosts=4",
            "--ranks",
            "4",
            "--workload",
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and f"--workload {spec}" in err[0] and words in err[0], err


def test_the_report_draws_the_steps_timeline_and_refuses_a_bad_step(tmp_path):
    out = tmp_path / "sim"
    run = [sys.executable, "-m", "dist_logreg"]
    spec = "params=1048576,dtype=fp32,buckets=1M,forward=1ms,backward=2ms"
    r = subprocess.run(
        [
            *run,
            "simulate",
            "--fabric",
            FLAT,
            "--ranks",
            "2,8",
            "--algorithm",
            RING.name,
            "--workload",
            spec,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Training step" in r.stdout and "exposed" in r.stdout
    r = subprocess.run(
        [*run, "report", str(out), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "1-sim-step.png").stat().st_size > 1000
    assert "Training step" in (tmp_path / "r" / "report.md").read_text()
    doc = json.loads((out / "simulate.json").read_text())
    doc["step"]["rows"][0]["comm_fraction"] = 1.5
    (out / "simulate.json").write_text(json.dumps(doc))
    r = subprocess.run(
        [*run, "report", str(out), "--out", str(tmp_path / "r2")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "step.rows[0].comm_fraction" in r.stderr, r.stderr


@pytest.mark.parametrize("flops, rate", [("6T", "400T"), ("1.5e15", "1e15"), ("12e9", "3G")])
def test_flops_and_a_flop_rate_give_the_compute_of_their_closed_form(flops, rate):
    # compute = flops / rate, a third forward and two thirds backward; one bucket after
    # the backward pass (overlap off) of c s: the step is compute + c, c of it exposed
    scale = {"T": 1e12, "G": 1e9}
    num = lambda t: float(t[:-1]) * scale[t[-1]] if t[-1] in scale else float(t)  # noqa: E731
    compute = num(flops) / num(rate)
    w = parse_workload(f"params=1M,buckets=0,flops={flops},flop-rate={rate},overlap=no")
    assert w.forward_s == pytest.approx(compute / 3, rel=1e-12)
    assert w.backward_s == pytest.approx(2 * compute / 3, rel=1e-12)
    c = 1.25e-3
    row, _ = step_row(w, P, RING.name, lambda coll, b: c)
    assert row["compute_s"] == pytest.approx(compute, rel=1e-12)
    assert row["step_s"] == pytest.approx(compute + c, rel=1e-12)
    assert row["exposed_s"] == pytest.approx(c, rel=1e-9)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("params=1M,flops=6T", "flop-rate: expected a positive number"),
        ("params=1M,flops=6T,flop-rate=0", "flop-rate: expected a positive number"),
        ("params=1M,flops=6T,flop-rate=1T,forward=1ms", "give flops or forward/backward"),
    ],
)
def test_flops_without_a_rate_or_with_forward_is_one_line(spec, words):
    with pytest.raises(UsageError, match=words):
        parse_workload(spec)
