"""The trainer's step against its peers and against the memory-bandwidth limit.

One command, interleaved rounds (absolute times drift on shared machines; ratios measured
side by side do not)::

    python benchmarks/bench_peers.py                  # full: 5 rounds, both shapes
    python benchmarks/bench_peers.py --quick          # smaller data, 2 rounds: a smoke run
    python benchmarks/bench_peers.py --rounds 9 --json peers.json

Contenders, each a fresh process (group) per round and shape, on the same memory-mapped
data files and the same global batches (the ``rows`` order from the seed):

- ``numpy``: one process, one thread, a plain numpy loop over the whole global batch;
- ``mpi4py``: a minimal data-parallel loop (gather, two matrix-vector products, one
  ``Allreduce(IN_PLACE)``) at ``--ranks`` ranks;
- ``ddp``: PyTorch DistributedDataParallel over gloo at ``--ranks`` ranks (skipped, with
  the reason, when torch is not installed: ``pip install -e '.[bench]'``);
- ``trainer rows|blocks|none``: the trainer in each ``--shuffle`` mode, and ``trainer
  sharded`` (``--sampling sharded --shuffle rows``).

Shapes: ``narrow`` 200,000 x 512 float64, global batch 4096; ``wide`` 20,000 x 65,536
float32 (5.2 GB, memory-mapped), batch 1024. The data files are written once under
``--data-dir``. Each process first reads the rows it will use (a memory map's pages are then
mapped), runs warm-up steps, then times steps; a step's time is the slowest rank's.

The memory bandwidth is measured with the ranks streaming at once (``np.sum``, a
matrix-vector product and a copy over a buffer far larger than the caches); the limit of a
step is one pass over the rank's batch bytes at the best read rate. Per-rank peak memory of
``--sampling sharded`` is measured on a synthetic 400,000 x 256 float64 set (819 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per process, before numpy loads

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
SHAPES = {
    "narrow": {
        "n": 200_000,
        "d": 512,
        "dtype": "float64",
        "batch": 4096,
        "warmup": 20,
        "steps": 200,
    },
    "wide": {"n": 20_000, "d": 65_536, "dtype": "float32", "batch": 1024, "warmup": 5, "steps": 25},
}
QUICK = {
    "narrow": {"n": 40_000, "warmup": 5, "steps": 40},
    "wide": {"n": 2_500, "warmup": 3, "steps": 8},
}
TINY = {  # for the test that keeps this script working: seconds, not minutes
    "narrow": {"n": 4_000, "d": 64, "batch": 256, "warmup": 2, "steps": 5},
    "wide": {"n": 600, "d": 4096, "batch": 64, "warmup": 2, "steps": 4},
}
TRAINER_MODES = {
    "trainer rows": ("rows", "global"),
    "trainer blocks": ("blocks", "global"),
    "trainer none": ("none", "global"),
    "trainer sharded": ("rows", "sharded"),
}
RSS_SHAPE = {"full": (400_000, 256), "tiny": (20_000, 64)}
SEED, LR, L2 = 0, 0.1, 1e-4


# ----------------------------------------------------------------------------- workers


def _report(**values) -> None:
    print("RESULT " + json.dumps(values), flush=True)


def _open(data_dir: str):
    X = np.load(f"{data_dir}/X.npy", mmap_mode="r", allow_pickle=False)
    y = np.load(f"{data_dir}/y.npy", allow_pickle=False)
    return X, y


def _pretouch(X, lo: int = 0, hi: int | None = None) -> None:
    """Read the rows once, so a memory map's pages are mapped before steps are timed."""
    hi = X.shape[0] if hi is None else hi
    step = max(1, (64 << 20) // max(1, X.shape[1] * X.itemsize))
    for a in range(lo, hi, step):
        float(X[a : min(a + step, hi)].sum())


def _numpy_like_loop(X, y, idx_of, batch_rows, steps, warmup, allreduce=None) -> float:
    """Gather, logits, residuals, two matrix-vector products, (allreduce), SGD: s/step."""
    from dist_logreg.train.binary import loss_terms, sigmoid

    d = X.shape[1]
    xbuf = np.empty((batch_rows, d), X.dtype)
    ybuf = np.empty(batch_rows, X.dtype)
    params = np.zeros(d + 1, X.dtype)
    buf = np.empty(d + 3, X.dtype)
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = np.sort(idx_of(step))
        np.take(X, idx, axis=0, out=xbuf, mode="clip")
        np.take(y, idx, out=ybuf, mode="clip")
        z = xbuf @ params[:d]
        z += params[d]
        r = sigmoid(z)
        r -= ybuf
        np.matmul(r, xbuf, out=buf[:d])
        buf[d], buf[d + 1], buf[d + 2] = r.sum(), loss_terms(z, ybuf).sum(), batch_rows
        if allreduce is not None:
            allreduce(buf)
        g = buf[: d + 1] / buf[d + 2]
        g[:d] += L2 * params[:d]
        params -= LR * g
    return (time.perf_counter() - t0) / steps


def worker_numpy(args, shape) -> None:
    from dist_logreg.train.sampling import GlobalBatches

    X, y = _open(args.data)
    _pretouch(X)
    gb = GlobalBatches(X.shape[0], shape["batch"], SEED)
    step_s = _numpy_like_loop(X, y, gb.batch, shape["batch"], shape["steps"], shape["warmup"])
    _report(rank=0, step_s=step_s)


def worker_mpi4py(args, shape) -> None:
    from mpi4py import MPI

    from dist_logreg.train.sampling import GlobalBatches, rank_slice

    comm = MPI.COMM_WORLD
    X, y = _open(args.data)
    _pretouch(X)
    lo, hi = rank_slice(shape["batch"], comm.Get_size(), comm.Get_rank())
    gb = GlobalBatches(X.shape[0], shape["batch"], SEED)
    comm.Barrier()
    step_s = _numpy_like_loop(
        X,
        y,
        lambda s: gb.batch(s)[lo:hi],
        hi - lo,
        shape["steps"],
        shape["warmup"],
        lambda buf: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
    )
    _report(rank=comm.Get_rank(), step_s=step_s)


def worker_ddp(args, shape) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from dist_logreg.train.sampling import GlobalBatches, rank_slice

    torch.set_num_threads(1)
    rank, size = int(os.environ["OMPI_COMM_WORLD_RANK"]), int(os.environ["OMPI_COMM_WORLD_SIZE"])
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=size
    )
    X, y = _open(args.data)
    _pretouch(X)
    lo, hi = rank_slice(shape["batch"], size, rank)
    gb = GlobalBatches(X.shape[0], shape["batch"], SEED)
    dtype = getattr(torch, shape["dtype"])
    model = DistributedDataParallel(torch.nn.Linear(X.shape[1], 1, dtype=dtype))
    torch.nn.init.zeros_(model.module.weight)
    opt = torch.optim.SGD(model.parameters(), lr=LR, weight_decay=L2)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    xbuf = np.empty((hi - lo, X.shape[1]), X.dtype)
    ybuf = np.empty(hi - lo, X.dtype)
    xt, yt = torch.from_numpy(xbuf), torch.from_numpy(ybuf)  # share the numpy buffers
    dist.barrier()
    for step in range(shape["warmup"] + shape["steps"]):
        if step == shape["warmup"]:
            t0 = time.perf_counter()
        idx = np.sort(gb.batch(step)[lo:hi])
        np.take(X, idx, axis=0, out=xbuf, mode="clip")
        np.take(y, idx, out=ybuf, mode="clip")
        opt.zero_grad()
        loss = loss_fn(model(xt).squeeze(1), yt) * (size / shape["batch"])  # DDP averages
        loss.backward()  # the gradient allreduce happens in here
        opt.step()
    step_s = (time.perf_counter() - t0) / shape["steps"]
    dist.destroy_process_group()
    _report(rank=rank, step_s=step_s)


def worker_trainer(args, shape) -> None:
    from mpi4py import MPI

    from dist_logreg.comm.base import MPIAllreduce
    from dist_logreg.comm.wrappers import Instrumented
    from dist_logreg.record.console import NullReporter
    from dist_logreg.record.result import PHASES
    from dist_logreg.record.stats import peak_rss_bytes
    from dist_logreg.train import shards
    from dist_logreg.train.config import TrainConfig
    from dist_logreg.train.loop import train

    comm = MPI.COMM_WORLD
    steps, warmup = shape["steps"], shape["warmup"]
    cfg = TrainConfig(
        data=f"{args.data}/X.npy,{args.data}/y.npy",
        dtype=shape["dtype"],
        batch_size=shape["batch"],
        steps=warmup + steps,
        lr=LR,
        l2=L2,
        seed=SEED,
        shuffle=args.shuffle,
        sampling=args.sampling,
        check_every=0,
        flush_every=0,
        log_every=10**9,
    )
    ds = shards.for_rank(cfg, comm.Get_size(), comm.Get_rank())
    ds.checked = True  # our own clean files: skip the value scan
    _pretouch(ds.X)
    result = train(comm, Instrumented(MPIAllreduce(comm), warmup + steps), cfg, ds, NullReporter())
    marks, phases = result.marks[warmup:], result.phase_ns[warmup:]
    step_s = (marks[-1, 4] - marks[0, 0]) * 1e-9 / steps
    phases_ms = dict(zip(PHASES, (np.median(phases, axis=0) * 1e-6).tolist(), strict=True))
    _report(rank=comm.Get_rank(), step_s=step_s, rss=peak_rss_bytes(), phases_ms=phases_ms)


def worker_bandwidth(args, shape) -> None:
    """Each rank streams a buffer far larger than the caches, all ranks at once."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    a = np.ones(args.bw_bytes // 8)
    out = np.empty_like(a)
    v64, v32 = np.ones(4096), np.ones(8192, np.float32)
    a32 = a.view(np.float32)
    kernels = {
        "sum": (lambda: a.sum(), a.nbytes),
        "gemv64": (lambda: a.reshape(-1, 4096) @ v64, a.nbytes),
        "gemv32": (lambda: a32.reshape(-1, 8192) @ v32, a.nbytes),
        "copy": (lambda: np.copyto(out, a), 2 * a.nbytes),  # read + write
    }
    best = {}
    for name, (fn, nbytes) in kernels.items():
        times = []
        for _ in range(5):  # the fastest of 5: the least disturbed by other jobs
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best[name] = nbytes / min(times) / 1e9
    _report(rank=comm.Get_rank(), GBps=best)


WORKERS = {
    "numpy": worker_numpy,
    "mpi4py": worker_mpi4py,
    "ddp": worker_ddp,
    "trainer": worker_trainer,
    "bandwidth": worker_bandwidth,
}


# ------------------------------------------------------------------------------ driver


def make_data(path: Path, shape: dict) -> Path:
    """X.npy (standard normal) and y.npy (labels through a logistic model), written once."""
    folder = path / f"{shape['n']}x{shape['d']}-{shape['dtype']}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    n, d = shape["n"], shape["d"]
    X = np.lib.format.open_memmap(folder / "X.npy", "w+", shape["dtype"], (n, d))
    y = np.empty(n, shape["dtype"])
    w = np.random.default_rng([SEED, 1]).standard_normal(d) * (2 / np.sqrt(d))
    rows = max(1, (256 << 20) // (d * 8))
    for i, a in enumerate(range(0, n, rows)):
        rng = np.random.default_rng([SEED, 2, i])
        xb = rng.standard_normal((min(rows, n - a), d), dtype=np.float32)
        X[a : a + len(xb)] = xb
        y[a : a + len(xb)] = rng.random(len(xb)) < 1 / (1 + np.exp(-(xb @ w)))
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    (folder / "done").write_text("ok\n")
    return folder


def _env() -> dict:
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_btl", "self,sm")
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(kind: str, ranks: int, shape: dict, data: Path | None, extra=(), timeout=900):
    """Run one worker (under mpirun when ``ranks`` > 0); the results of every rank."""
    cmd = [
        sys.executable,
        str(HERE),
        "--worker",
        kind,
        "--shape-json",
        json.dumps(shape),
        "--data",
        str(data),
        *extra,
    ]
    if ranks:
        cmd = [str(BIN / "mpirun"), "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    found = [json.loads(line[7:]) for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    if r.returncode != 0 or not found:
        raise RuntimeError(f"{kind} failed ({r.returncode}): {r.stderr[-2000:]}")
    return found


def peak_rss(ranks: int, rows: int, features: int, sampling: str) -> list[int]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            str(BIN / "mpirun"),
            "-n",
            str(ranks),
            str(BIN / "dist-logreg"),
            "train",
            "--samples",
            str(rows),
            "--features",
            str(features),
            "--batch-size",
            "4096",
            "--steps",
            "20",
            "--sampling",
            sampling,
            "--out",
            out,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        return json.loads(Path(out, "summary.json").read_text())["memory"][
            "peak_rss_bytes_per_rank"
        ]


def torch_missing() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"torch is not installed ({exc}); pip install -e '.[bench]'"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    ap.add_argument("--quick", action="store_true", help="smaller data and fewer steps")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the test's size
    ap.add_argument("--ranks", type=int, default=2, help="world size of the parallel runs")
    ap.add_argument("--shapes", default="narrow,wide", help="comma-separated: narrow,wide")
    ap.add_argument("--no-ddp", action="store_true", help="leave PyTorch DDP out")
    ap.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "dist-logreg-bench"))
    ap.add_argument("--json", metavar="FILE", help="also write every number as JSON")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--shape-json", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--shuffle", default="rows", help=argparse.SUPPRESS)
    ap.add_argument("--sampling", default="global", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bw-bytes", type=int, default=1 << 30, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        WORKERS[args.worker](args, json.loads(args.shape_json))
        return 0
    from bench_report import report  # the tables and goals, next to this file

    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    rounds = args.rounds or (1 if args.tiny else 2 if args.quick else 5)
    shapes = {}
    for name in args.shapes.split(","):
        shapes[name] = {
            **SHAPES[name],
            **(TINY if args.tiny else QUICK if args.quick else {}).get(name, {}),
        }
    skip_ddp = "left out (--no-ddp)" if args.no_ddp else torch_missing()
    contenders = [("numpy", 0, "numpy", ()), ("mpi4py", args.ranks, "mpi4py", ())]
    if not skip_ddp:
        contenders.append(("ddp", args.ranks, "ddp", ()))
    for label, (shuffle, sampling) in TRAINER_MODES.items():
        contenders.append(
            (label, args.ranks, "trainer", ("--shuffle", shuffle, "--sampling", sampling))
        )
    load_before = os.getloadavg()
    started = time.time()
    folders = {name: make_data(Path(args.data_dir), shape) for name, shape in shapes.items()}
    bw_bytes = (64 << 20) if args.tiny else (512 << 20) if args.quick else (1 << 30)
    results: dict = {name: {c[0]: [] for c in contenders} for name in shapes}
    details: dict = {name: {} for name in shapes}
    bandwidth = []
    for rnd in range(rounds):
        print(f"round {rnd + 1}/{rounds}", flush=True)
        bw = launch("bandwidth", args.ranks, {}, None, ("--bw-bytes", str(bw_bytes)))
        bandwidth.append({k: min(r["GBps"][k] for r in bw) for k in bw[0]["GBps"]})
        for name, shape in shapes.items():
            order = contenders[rnd % len(contenders) :] + contenders[: rnd % len(contenders)]
            for label, ranks, kind, extra in order:
                if kind == "ddp":
                    extra = ("--port", str(_free_port()))
                per_rank = launch(kind, ranks, shape, folders[name], extra)
                results[name][label].append(max(r["step_s"] for r in per_rank))
                if kind == "trainer":
                    details[name].setdefault(label, []).append(per_rank)
    rows, features = RSS_SHAPE["tiny" if args.tiny else "full"]
    rss = {s: peak_rss(args.ranks, rows, features, s) for s in ("global", "sharded")}
    doc = {
        "size": size,
        "rounds": rounds,
        "ranks": args.ranks,
        "shapes": shapes,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "wall_s": time.time() - started,
        "ddp_skipped": skip_ddp,
        "steps_s": results,
        "trainer_details": details,
        "bandwidth_GBps": bandwidth,
        "rss": {
            "rows": rows,
            "features": features,
            "data_bytes": rows * features * 8,
            "peak_rss_bytes_per_rank": rss,
        },
    }
    print(report(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
