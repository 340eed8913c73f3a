"""A packet-engine sweep spread over MPI: ``simulate --sweep FILE`` with ``engine =
"packet"`` under ``mpirun -n 1, 2, 3`` gives the serial sweep's ``results`` (each rank
imports ns-3 once, for every point it runs). Only ``wall_s``, the wall time a run took,
may differ: it is measured, not simulated."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BIN, WORLD_SIZES, run_mpi
from tests.test_sim_packet import HAVE_NS3
from tests.test_simulate_sweep import sweep_cli

GRID = """
engine = "packet"
fabric = "flat:hosts=4,rate=10G"
ranks = [2, 4]
algorithm = ["ring", "recursive-doubling"]
bytes = ["64K"]
tcp = "dctcp"
ecn = "20K"
"""

pytestmark = [
    pytest.mark.skipif(not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'"),
    pytest.mark.slow,
]


def _measured_out(x):
    """``x`` without its ``wall_s`` entries, at any depth."""
    if isinstance(x, dict):
        return {k: _measured_out(v) for k, v in x.items() if k != "wall_s"}
    if isinstance(x, list):
        return [_measured_out(v) for v in x]
    return x


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    d = tmp_path_factory.mktemp("packet-sweep")
    (d / "grid.toml").write_text(GRID)
    r = sweep_cli("--sweep", str(d / "grid.toml"), "--out", str(d / "serial"), timeout=600)
    assert r.returncode == 0, r.stderr
    return d, json.loads((d / "serial" / "simulate.json").read_text())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_a_packet_sweep_under_mpirun_gives_the_serial_results(serial, n):
    d, doc = serial
    rows = doc["results"]
    assert [r["point"] for r in rows] == [0, 1, 2, 3]
    assert all(r["packet"]["message_done_s"] for r in rows)  # packet rows, not the flow's
    out = d / f"mpi{n}"
    r = run_mpi(
        n,
        [str(BIN / "dist-logreg"), "simulate", "--sweep", str(d / "grid.toml"), "--out", str(out)],
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads((out / "simulate.json").read_text())
    assert got["sweep"]["mpi_ranks"] == n
    assert json.dumps(_measured_out(got["results"])) == json.dumps(_measured_out(rows))
    assert r.stdout.count("wrote ") == 1  # rank 0 alone reports
