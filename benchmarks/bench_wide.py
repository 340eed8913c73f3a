"""Where a ``--shuffle blocks`` step's time goes, against one pass over the rank's rows.

    mpirun -n 2 python benchmarks/bench_wide.py --shape narrow
    mpirun -n 2 python benchmarks/bench_wide.py --shape wide --samples 8192

Shapes (the issue's): narrow 200,000 x 512 float64, batch 4096; wide 20,000 x 65,536
float32, batch 1024 (``--samples`` scales the rows down: a step reads ``batch / p`` rows
whatever the file's length, so only the file size and the first epoch change). The data is
a memory-mapped ``X.npy`` written to ``--dir`` (a temporary folder by default).

Measured in one run, interleaved round by round; every time is the median over a round's
steps (one preempted step moves a mean, not a median), then the median over rounds, on the
slowest rank:

- ``one pass``: ``X[rows] @ w`` over the rank's share of a step (a gemv: every row read
  once, the least any gradient can cost);
- the gradient's phases, block by block as ``train/binary.grad_sums`` runs them (gemv
  ``X_b w``, the sigmoid, gemv ``r_b X_b``, the accumulation, the loss), with the
  cache-block size and per-row loss before this change (512 KiB: half the L2;
  ``np.logaddexp``) and after (twice the L2; ``max(z, 0) + log1p(exp(-|z|))``);
- the trainer's whole step (``train`` with ``--shuffle blocks``), before and after, and
  its data/compute/comm/update split; minor page faults per step (``getrusage``) once the
  map has been touched (the first epoch faults every page in).

Prints a table on rank 0; ``--json FILE`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from time import perf_counter_ns

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

from dist_logreg.comm.base import MPIAllreduce  # noqa: E402
from dist_logreg.comm.wrappers import Instrumented  # noqa: E402
from dist_logreg.record.console import NullReporter  # noqa: E402
from dist_logreg.train import binary, data  # noqa: E402
from dist_logreg.train.config import TrainConfig  # noqa: E402
from dist_logreg.train.loop import train  # noqa: E402

SHAPES = {"narrow": (200_000, 512, "float64", 4096), "wide": (20_000, 65_536, "float32", 1024)}
BEFORE_BYTES = 512 * 1024  # the block size before: half this CPU's L2 (at most 4 MiB)
PHASES = ("gemv X_b w", "sigmoid", "gemv r_b X_b", "accumulate", "loss and tail")


def make_data(folder: Path, n: int, d: int, dtype: str, comm) -> None:
    """Rank 0 writes X.npy (a memory map, written in chunks) and y.npy once."""
    if comm.Get_rank() == 0 and not (folder / "X.npy").exists():
        folder.mkdir(parents=True, exist_ok=True)
        X = np.lib.format.open_memmap(folder / "X.part.npy", "w+", dtype, (n, d))
        rng = np.random.default_rng(0)
        w = rng.standard_normal(d) / np.sqrt(d)
        y = np.empty(n)
        for lo in range(0, n, 512):
            hi = min(lo + 512, n)
            X[lo:hi] = rng.standard_normal((hi - lo, d), dtype=np.float32)
            y[lo:hi] = (X[lo:hi] @ w > 0).astype(np.float64)
        X.flush()
        del X
        np.save(folder / "y.npy", y)
        (folder / "X.part.npy").rename(folder / "X.npy")
    comm.Barrier()


def phases(X, y, params, out, rows, work, acc_ns: np.ndarray) -> None:
    """``binary.grad_sums`` with a timer between its statements (writes ``acc_ns``)."""
    n, d = X.shape
    m = rows.stop - rows.start
    w, b = params[:d], params[d]
    t = perf_counter_ns
    yv = work.y[:m]
    np.copyto(yv, y[rows], casting="same_kind")
    z, r = work.z[:m], work.r[:m]
    acc = out[:d]
    acc[...] = 0
    for lo in range(0, m, work.block_rows):
        hi = min(lo + work.block_rows, m)
        xb = X[rows.start + lo : rows.start + hi]
        zb, rb = z[lo:hi], r[lo:hi]
        t0 = t()
        np.matmul(xb, w, out=zb)
        t1 = t()
        zb += b
        np.multiply(zb, 0.5, out=rb)
        binary._half_tanh(rb, rb)
        rb -= yv[lo:hi]
        t2 = t()
        np.matmul(rb, xb, out=work.part)
        t3 = t()
        acc += work.part
        t4 = t()
        acc_ns[:4] += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
    t5 = t()  # (acc_ns is zeroed per step by the caller)
    out[d] = r.sum()
    out[d + 1] = binary.loss_terms(z, yv).sum()  # the switched one
    out[d + 2] = m
    acc_ns[4] += t() - t5


def trainer_step(comm, ds, cfg) -> tuple[float, np.ndarray, float]:
    """The real trainer: median seconds per step, the medians of its (data, compute, comm,
    update) phases in seconds, and minor page faults per step."""
    allreduce = Instrumented(MPIAllreduce(comm), cfg.steps)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    res = train(comm, allreduce, cfg, ds, NullReporter())
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / res.steps
    step = float(np.median(res.phase_ns.sum(axis=1))) * 1e-9
    return step, np.median(res.phase_ns, axis=0) * 1e-9, faults


_LOSS_AFTER = binary.loss_terms


def _loss_before(z, y):
    """The per-row loss before this change (np.logaddexp)."""
    return np.logaddexp(0.0, z).astype(z.dtype, copy=False) - y * z


def switch(label: str, nbytes: int) -> None:
    """The before/after switch: the trainer's block size (read at Workspace creation) and
    its per-row loss (a module global of train/binary.py, read at every step)."""
    binary.cache_block_bytes = lambda: nbytes
    binary.loss_terms = _loss_before if label == "before" else _LOSS_AFTER


def one_round(comm, ds, cfg, after_bytes: int, rng) -> dict:
    p, rank = comm.Get_size(), comm.Get_rank()
    n, d = ds.X.shape
    X = ds.X.view(np.ndarray)
    m = cfg.batch_size // p
    params = np.zeros(d + 1, X.dtype)
    params[:d] = 1e-3
    out = np.empty(d + 3, X.dtype)
    z = np.empty(m, X.dtype)
    res = {}
    starts = rng.integers(0, n // cfg.batch_size, size=cfg.steps) * cfg.batch_size + rank * m
    clock = perf_counter_ns
    for label, nbytes in (("before", BEFORE_BYTES), ("after", after_bytes)):
        switch(label, nbytes)
        work = binary.Workspace(d, m, X.dtype, max(2, nbytes // (d * X.itemsize)))
        per = np.zeros((len(starts), 5), dtype=np.int64)
        comm.Barrier()
        for k, s in enumerate(starts):
            phases(X, ds.y, params, out, slice(s, s + m), work, per[k])
        res[f"phases_{label}"] = np.median(per, axis=0) * 1e-9  # per step, medians
        res[f"block_rows_{label}"] = work.block_rows
        comm.Barrier()
        ts = np.empty(len(starts))
        for k, s in enumerate(starts):
            t0 = clock()
            binary.grad_sums(X, ds.y, params, out, slice(s, s + m), work)
            ts[k] = clock() - t0
        res[f"grad_{label}"] = float(np.median(ts)) * 1e-9
        step, split, faults = trainer_step(comm, ds, cfg)
        res[f"step_{label}"], res[f"split_{label}"], res[f"faults_{label}"] = step, split, faults
    comm.Barrier()
    ts = np.empty(len(starts))
    for k, s in enumerate(starts):
        t0 = clock()
        np.matmul(X[s : s + m], params[:d], out=z)
        ts[k] = clock() - t0
    res["one_pass"] = float(np.median(ts)) * 1e-9
    return res


def report(rows: list[dict], args, n, d, dtype, batch, p) -> dict:
    med = {k: np.median([r[k] for r in rows], axis=0) for k in rows[0]}
    one = float(med["one_pass"])
    mb = batch // p * d * np.dtype(dtype).itemsize / 1e6
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    print(
        f"{args.shape}: {n} x {d} {dtype} memory map, batch {batch}, {p} ranks, "
        f"--shuffle blocks; {len(rows)} rounds of {args.steps} steps, per-step medians, "
        f"slowest rank; loadavg {' '.join(load)}"
    )
    print(
        f"one pass over the rank's {mb:.1f} MB of rows (gemv): {one * 1e3:.3f} ms "
        f"({mb / 1e3 / one:.1f} GB/s)"
    )
    for label in ("before", "after"):
        ph = med[f"phases_{label}"]
        br = int(med[f"block_rows_{label}"])
        print(
            f"[{label}] blocks of {br} rows ({br * d * np.dtype(dtype).itemsize >> 10} KiB): "
            f"gradient {med[f'grad_{label}'] * 1e3:.3f} ms = "
            f"{med[f'grad_{label}'] / one:.2f}x one pass; trainer step "
            f"{med[f'step_{label}'] * 1e3:.3f} ms = {med[f'step_{label}'] / one:.2f}x "
            f"(goal <= 1.5x); page faults per step {med[f'faults_{label}']:.0f}"
        )
        print(
            "    gradient phases, ms: "
            + ", ".join(f"{name} {v * 1e3:.3f}" for name, v in zip(PHASES, ph, strict=True))
        )
        split = med[f"split_{label}"]
        print(
            "    trainer step, ms: "
            + ", ".join(
                f"{k} {v * 1e3:.3f}"
                for k, v in zip(("data", "compute", "comm", "update"), split, strict=True)
            )
        )
    return {k: (v.tolist() if isinstance(v, np.ndarray) else float(v)) for k, v in med.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=tuple(SHAPES), default="narrow")
    ap.add_argument("--samples", type=int, help="rows of the file (default: the shape's)")
    ap.add_argument("--steps", type=int, default=40, help="steps per round (default: 40)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    ap.add_argument("--dir", help="where the data file goes (default: a temporary folder)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    n, d, dtype, batch = SHAPES[args.shape]
    n = args.samples or n
    folder = Path(args.dir or tempfile.gettempdir()) / f"dist-logreg-wide-{n}x{d}-{dtype}"
    make_data(folder, n, d, dtype, comm)
    ds = data.load(str(folder), dtype)
    after = binary.cache_block_bytes()
    cfg = TrainConfig(
        batch_size=batch,
        steps=args.steps,
        lr=0.1,
        seed=0,
        check_every=0,
        shuffle="blocks",
        dtype=dtype,
    )
    rng = np.random.default_rng(comm.Get_rank())
    for s in range(0, n - n % batch, batch):  # touch every page once: steady state
        float(ds.X[s : s + batch].sum())
    rows = [one_round(comm, ds, cfg, after, rng) for _ in range(args.rounds)]
    rows = comm.gather(rows, root=0)
    if comm.Get_rank() == 0:
        worst = [
            {k: np.maximum.reduce([np.asarray(r[i][k]) for r in rows]) for k in rows[0][i]}
            for i in range(args.rounds)
        ]
        doc = report(worst, args, n, d, dtype, batch, comm.Get_size())
        if args.json:
            Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
