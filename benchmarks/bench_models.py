"""Model benchmark: run under mpirun, e.g.

    mpirun -n 2 python benchmarks/bench_models.py

Runs the real trainer (``train.loop.train``, instrumented as the CLI runs it) on the same
rows in several forms, interleaved round by round (absolute times drift between runs on
shared machines; ratios measured side by side do not):

- binary, dense rows: the baseline;
- softmax with K classes (default 10), dense rows: a gradient K x as large to compute and
  to reduce (``K (d + 1) + 2`` elements per allreduce);
- binary and softmax on the same rows stored as scipy CSR (``--density`` of non-zeros).

Reports per configuration the median step time and its split (data = batch gather,
compute = gradient math, comm = the allreduce, including waiting for the other ranks), the
allreduce payload, and the ratios of the step and of the compute to the dense binary one.
The slowest rank's medians are reported (a step is as slow as it). On a machine shared with
other work, comm mostly measures waiting for a descheduled rank: compare the compute ratios,
of the median and of the fastest step's compute (the least disturbed by other work).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per rank, before numpy loads

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from mpi4py import MPI  # noqa: E402

from dist_logreg.comm.base import MPIAllreduce  # noqa: E402
from dist_logreg.comm.wrappers import Instrumented  # noqa: E402
from dist_logreg.record.console import NullReporter  # noqa: E402
from dist_logreg.train import models  # noqa: E402
from dist_logreg.train.config import TrainConfig  # noqa: E402
from dist_logreg.train.data import Dataset  # noqa: E402
from dist_logreg.train.loop import train  # noqa: E402


def rows(samples: int, features: int, classes: int, density: float, seed: int = 0):
    """The same rows dense and CSR; binary labels and K-class labels drawn through models."""
    rng = np.random.default_rng(seed)
    X = sp.random_array((samples, features), density=density, rng=rng, format="csr")
    X.data = rng.standard_normal(X.data.size) / np.sqrt(density)  # unit variance per entry
    Z = X @ (rng.standard_normal((features, classes)) / np.sqrt(features) * 2)
    y_soft = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1).astype(np.float64)
    y_bin = (Z[:, 0] + rng.logistic(size=samples) > 0).astype(np.float64)
    return X.toarray(), sp.csr_array(X), y_bin, y_soft


def one_round(comm, cfg, configs) -> dict:
    """Seconds per step (and per phase) of each configuration, this rank."""
    out = {}
    for name, (ds, mdl) in configs.items():
        allreduce = Instrumented(MPIAllreduce(comm), cfg.steps)
        res = train(comm, allreduce, cfg, ds, NullReporter(), model=mdl)
        phases = np.median(res.phase_ns, axis=0) * 1e-9  # data, compute, comm, update
        out[name] = {
            "step_s": res.loop_ns * 1e-9 / res.steps,
            "phases_s": phases.tolist(),
            "compute_min_s": float(res.phase_ns[:, 1].min() * 1e-9),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--density", type=float, default=0.01, help="non-zero fraction of the rows")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=50, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    dense, csr, y_bin, y_soft = rows(args.samples, args.features, args.classes, args.density)
    d, k = args.features, args.classes
    configs = {
        "binary dense": (Dataset(dense, y_bin, "dense", checked=True), models.Binary(d)),
        f"softmax K={k} dense": (
            Dataset(dense, y_soft, "dense", checked=True),
            models.Softmax(d, k),
        ),
        "binary sparse": (Dataset(csr, y_bin, "csr", checked=True), models.Binary(d)),
        f"softmax K={k} sparse": (Dataset(csr, y_soft, "csr", checked=True), models.Softmax(d, k)),
    }
    cfg = TrainConfig(batch_size=args.batch_size, steps=args.steps, lr=0.1, check_every=0)
    one_round(comm, TrainConfig(**{**cfg.__dict__, "steps": 5}), configs)  # warm-up
    rounds = [one_round(comm, cfg, configs) for _ in range(args.rounds)]
    mine = {
        name: {
            "step_s": float(np.median([r[name]["step_s"] for r in rounds])),
            "phases_s": np.median([r[name]["phases_s"] for r in rounds], axis=0).tolist(),
            "compute_min_s": float(min(r[name]["compute_min_s"] for r in rounds)),
        }
        for name in configs
    }
    everyone = comm.gather(mine, root=0)
    if rank != 0:
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"world size {size}; {args.samples} x {d} float64, density {args.density}, global batch "
        f"{args.batch_size}; {args.rounds} interleaved rounds of {args.steps} steps; medians, "
        f"slowest rank; load average {load:.1f} on {os.cpu_count()} cores"
    )
    base = max(r["binary dense"]["step_s"] for r in everyone)
    slowest = max(everyone, key=lambda r: r["binary dense"]["step_s"])
    base_compute = slowest["binary dense"]["phases_s"][1]
    base_min = max(r["binary dense"]["compute_min_s"] for r in everyone)
    print(
        f"{'':22} {'step':>9} {'data':>9} {'compute':>9} {'comm':>9} {'payload':>10} "
        f"{'step ratio':>10} {'compute ratio':>13} {'min compute':>11} {'ratio':>6}"
    )
    table = []
    for name, (_, mdl) in configs.items():
        step = max(r[name]["step_s"] for r in everyone)
        slowest = max(everyone, key=lambda r, name=name: r[name]["step_s"])
        ph = slowest[name]["phases_s"]
        best = max(r[name]["compute_min_s"] for r in everyone)
        payload = mdl.buffer_size * 8
        print(
            f"{name:22} {step * 1e3:7.3f}ms {ph[0] * 1e3:7.3f}ms {ph[1] * 1e3:7.3f}ms "
            f"{ph[2] * 1e3:7.3f}ms {payload:>8,} B {step / base:9.2f}x "
            f"{ph[1] / base_compute:12.2f}x {best * 1e3:9.3f}ms {best / base_min:5.2f}x"
        )
        table.append(
            {
                "config": name,
                "step_s": step,
                "phases_s": ph,
                "compute_min_s": best,
                "payload_bytes": payload,
            }
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"world_size": size, "workload": vars(args), "rows": table}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
