"""The third attack on issue 29's surfaces: --workload, --scenario and --sweep --resume.

Each case was a traceback, a hang or an unphysical number with exit 0 (D15-D22 of the
attack's findings); each is now one line naming the option, key and value, exit status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim.scenario import parse_scenario
from dist_logreg.sim.workload import parse_workload


@pytest.mark.parametrize(
    "spec, words",
    [
        # D15: 2.8e10 one-byte buckets were allocated as one Python list (MemoryError)
        ("params=7e9,buckets=1", "makes 28,000,000,000 buckets"),
        ("params=7e9,buckets=8", "expected at most 262,144"),
        # D16: a gradient that rounds to 0 bytes divided by zero in the step model
        ("params=1e-9", "params: expected a gradient of at least 1 byte"),
        # D17: 1e308 s of forward pass gave a step of inf ms with exit 0
        ("params=1e6,forward=1e308s", "forward: expected at most 1e+06 s"),
        ("params=1e6,optimizer=1e9s", "optimizer: expected at most 1e+06 s"),
        ("params=1e6,flops=1e15,flop-rate=1", "flops / flop-rate = 1e+15 s a step"),
        # D18: the same key in two spellings: one was silently dropped
        ("params=1e6,PARAMS=2e6", "params: expected each key once"),
        ("params=1e6,flop_rate=1T,flop-rate=2T,flops=1e12", "flop-rate: expected each key once"),
        # superscript digits pass str.isdigit but not int()
        ("params=1e6,strong=²", "strong: expected a whole number of ranks"),
    ],
)
def test_bad_workloads_are_one_line(spec, words):
    with pytest.raises(UsageError, match="--workload") as e:
        parse_workload(spec)
    assert words in str(e.value)


@pytest.mark.parametrize(
    "spec, words",
    [
        # D19: a straggler 1000x FASTER made every rank's compute 1000x shorter (exit 0)
        ("straggler:factor=0.001", "factor: expected a number from 1 to 1e6"),
        ("straggler:factor=1e9", "factor: expected a number from 1 to 1e6"),
        # D21: a "degrade" that made a link 1e300 times faster (inf in the solver)
        ("degrade:factor=1e-300,class=host-up", "factor: expected a number from 1 to 1e6"),
        # D20: the same key in two spellings: one silently dropped
        ("straggler:factor=2,FACTOR=3", "factor: expected each key once"),
        ("background:fraction=0.1,seed=1,SEED=2", "seed: expected each key once"),
        # superscript digits pass str.isdigit but not int(): a ValueError traceback
        ("straggler:factor=2,rank=²", "rank: expected a rank"),
        ("background:fraction=0.5,seed=³", "seed: expected a whole number"),
        ("neighbour:ranks=²", "ranks: expected a whole number of ranks"),
        ("straggler:factor=2,rank=99999999999999999999", "rank: expected a rank"),
    ],
)
def test_bad_scenarios_are_one_line(spec, words):
    with pytest.raises(UsageError, match="--scenario") as e:
        parse_scenario(spec)
    assert words in str(e.value)


def test_a_straggler_of_factor_one_is_no_straggler():
    assert parse_scenario("straggler:factor=1").values["factor"] == 1.0


def _simulate(*args, cwd, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


SWEEP = 'fabric = "flat:hosts=8,rate=100G"\nranks = [2, 4]\nalgorithm = "ring"\nbytes = "1M"\n'


def test_a_fifo_as_the_partial_file_is_refused_not_read(tmp_path):
    """D22: --resume opened a FIFO planted as simulate.json.partial and waited forever."""
    (tmp_path / "grid.toml").write_text(SWEEP)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "simulate.json.partial")
    r = _simulate("--sweep", "grid.toml", "--out", "out", "--resume", cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "expected a regular file, got a FIFO" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "done, words",
    [
        ('{"99": {}}', "done: expected {point index below 2"),
        ('{"0": [1]}', "done: expected {point index below 2"),
        ("[1, 2]", "done: expected {point index below 2"),
    ],
)
def test_a_partial_file_with_bad_points_is_refused(tmp_path, done, words):
    """A partial file of this grid whose points are not results is named, not a traceback."""
    from dist_logreg.sim.sweep import PARTIAL_FORMAT, Partial

    out = tmp_path / "out"
    out.mkdir()
    key = "k"
    (out / "simulate.json.partial").write_text(
        f'{{"format": "{PARTIAL_FORMAT}", "grid": "{key}", "points": 2, "done": {done}}}'
    )
    with pytest.raises(UsageError, match="--resume") as e:
        Partial(out, key, 2).load()
    assert words in str(e.value)


def test_a_fifo_as_the_workload_file_is_refused(tmp_path):
    fifo = tmp_path / "w.toml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="expected a regular file, got a FIFO"):
        parse_workload(str(fifo))


@pytest.mark.parametrize(
    "args, words",
    [
        # D13: a retransmission timer of 0 rescheduled itself at +0: bad_alloc, then a segfault
        (["--transport", "roce", "--rto", "0"], "--rto: expected a timer of at least 1 us"),
        (["--transport", "roce", "--dcqcn-timer", "0"], "--dcqcn-timer: expected a timer"),
        # D14: "0 s > --max-wall 0 s"
        (["--max-wall", "0"], "--max-wall: expected a wall time > 0"),
    ],
)
def test_packet_timers_of_zero_are_refused_before_ns3(tmp_path, args, words):
    """Refused while the options are read: before ns-3 is imported, so without it too."""
    job = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "64K", "--algorithm", "ring"]
    r = _simulate(*job, "--engine", "packet", *args, cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
