"""The other collectives in the algorithm table, without MPI: keys, closed forms against
the allreduce's, and the simulator replaying their schedules."""

import json
import subprocess

import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective import schedule
from tests.conftest import BIN


def test_every_collective_has_its_records_and_keys():
    assert table.IMPLEMENTATIONS["reduce-scatter"] == ("mpi", "ring", "recursive-halving")
    assert table.IMPLEMENTATIONS["allgather"] == ("mpi", "ring", "recursive-doubling")
    for collective, names in table.IMPLEMENTATIONS.items():
        for name in names:
            rec = table.get(name, collective)
            assert table.get(table.key(rec)) is rec and rec.closed_form is not None
    with pytest.raises(ValueError, match="expected one of mpi, ring, recursive-halving"):
        table.get("reduce-scatter/rabenseifner")


@pytest.mark.parametrize("p", [2, 3, 4, 8, 16])
def test_the_halves_add_up_to_their_allreduce(p):
    """Ring allreduce = ring reduce-scatter + ring allgather; Rabenseifner = recursive
    halving + recursive doubling: the coefficients, and the schedules' bytes, add up."""
    for whole, rs, ag in [
        ("ring", "reduce-scatter/ring", "allgather/ring"),
        ("rabenseifner", "reduce-scatter/recursive-halving", "allgather/recursive-doubling"),
    ]:
        a = table.get(rs).closed_form(p)
        b = table.get(ag).closed_form(p)
        total = tuple(x + y for x, y in zip(a, b, strict=True))
        if whole == "ring" or p & (p - 1) == 0:  # the folds differ: halving folds a chunk out
            assert total == pytest.approx(table.get(whole).closed_form(p)), (whole, p)
        want, _ = schedule.traffic(whole, p, 1.0)
        got = schedule.traffic(rs, p, 1.0)[0] + schedule.traffic(ag, p, 1.0)[0]
        if whole == "ring" or p & (p - 1) == 0:
            assert got.sum() == pytest.approx(want.sum()), (whole, p)


def test_the_simulator_replays_a_half_in_half_the_time_of_the_ring():
    out = subprocess.run(
        [
            str(BIN / "dist-logreg"),
            "simulate",
            "--fabric",
            "flat:hosts=8",
            "--ranks",
            "8",
            "--bytes",
            "1M",
            "--algorithm",
            "ring,reduce-scatter/ring,allgather/ring",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = {r["algorithm"]: r for r in json.loads(out.stdout)["results"]}
    ring = rows["ring"]["time_s"]
    # the ring allreduce is exactly the two halves' steps, one after the other
    assert rows["reduce-scatter/ring"]["time_s"] + rows["allgather/ring"]["time_s"] == (
        pytest.approx(ring)
    )
    # the same link-bound steps: the same bus bandwidth, each with its own factor
    assert rows["reduce-scatter/ring"]["busbw"] == pytest.approx(rows["ring"]["busbw"])
