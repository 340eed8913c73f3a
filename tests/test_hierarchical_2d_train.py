"""``train --allreduce hierarchical-2d:INTER`` under mpirun at 1, 2 and 3 ranks: the model
of the MPI library's allreduce, and the traffic its record's schedule says (at 3 ranks on
nodes of 2, the uneven case: the flat fallback)."""

import json

import numpy as np
import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.schedule import traffic
from tests.helpers import WORLD_SIZES, run_mpi, train_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# 9 features -> a 12-element buffer of float64 per step, 12 steps.
BASE = ["--samples", "900", "--features", "9", "--batch-size", "90", "--steps", "12", "--seed", "4"]
STEPS, S = 12, 12 * 8


def _train(n, out, *extra):
    result = run_mpi(n, train_cmd(*BASE, "--out", str(out), *extra), timeout=90)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return (
        np.load(out / "model.npz")["coef"],
        summary,
        json.loads((out / "traffic.json").read_text()),
    )


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_each_inter_algorithm_trains_the_mpi_model(tmp_path, n):
    ref, _, _ = _train(n, tmp_path / "mpi")
    node_of = [r // 2 for r in range(n)]
    for inter in (table.RABENSEIFNER.name, table.RECURSIVE_DOUBLING.name):
        name = f"{table.HIERARCHICAL_2D.name}:{inter}"
        coef, s, t = _train(n, tmp_path / inter, "--allreduce", name, "--ranks-per-node", "2")
        np.testing.assert_allclose(coef, ref, rtol=1e-10)
        assert s["allreduce"]["algorithm"] == name and t["algorithm"] == name
        want, _ = traffic(name, n, S, node_of)
        np.testing.assert_allclose(np.array(t["bytes"]), STEPS * want)
