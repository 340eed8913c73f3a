"""A training step on the emulated cluster against `simulate --run` of the same run.

    python benchmarks/bench_step_real.py [--rate 1gbit] [--mtu 9000] [--steps 12]
        [--layouts leaf-spine,flat] [--allreduce ring,mpi] [--buckets 1M,256K,0]
        [--json FILE] [--runs DIR]

Needs root and iproute2 (network namespaces; leaf-spine also nft). For each layout it
brings up an emulated cluster (name ``i30q``, subnet 198.18.63.0/24, calibrated: the
simulator reads the measured ceilings), trains a 4 MiB float32 gradient (1,048,576
features, one contiguous batch of ``--batch`` rows: nothing gathered) with each bucket
size (``0``: one allreduce per step), simulates the run with ``simulate --run RUN --fabric
cluster:i30q --flows FLOWS`` (its buckets, its measured compute, the spines its flows
took), and prints measured / simulated step time and exposed communication with the load
average (the machine is shared: each rank needs a core to move its bytes). ``simulate
--run`` overlaps a run's buckets with the backward pass; the project's own ring cannot
(its buckets run one after another), so for those rows the table also gives the same
workload with ``overlap=no`` ("buckets as run"). The measured step is the median over
ranks of total / steps; the simulated one adds the run's data and update time, which its
workload does not carry. The cluster is taken down in a ``finally``. Layouts:
``leaf-spine`` (4 hosts, 2 leaves x 2 spines, one rank per host: 4 ranks) and ``flat``
(2 hosts on one bridge: 2 ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

NAME, SUBNET = "i30q", "198.18.63.0/24"
LAYOUTS = {
    "leaf-spine": ["--hosts", "4", "--topology", "leaf-spine", "--leaves", "2", "--spines", "2"],
    "flat": ["--hosts", "2", "--topology", "flat"],
}
RANKS = {"leaf-spine": 4, "flat": 2}
#: The trainer's allreduce: the project's ring on point-to-point calls (its buckets run one
#: after another: nothing overlaps), or Open MPI's own (``--mpi-algorithm ring`` forces the
#: blocking one; buckets go through ``Iallreduce``, whose algorithm Open MPI picks).
ALLREDUCE = {
    "mpi": ["--allreduce", "mpi", "--mpi-algorithm", "ring"],
    "ring": ["--allreduce", "ring"],
}
ENV = {
    **os.environ,
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_mpi_yield_when_idle": "1",
}


def dlr(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``dist-logreg ARGS`` (this interpreter's), failing loudly with its output."""
    cmd = [sys.executable, "-m", "dist_logreg", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr}")
    return r


def train_args(a, buckets: int, out: Path, alg: str) -> list[str]:
    """One batch of ``--batch`` rows over and over (contiguous: math and allreduces)."""
    return [
        "train",
        "--features",
        str(a.features),
        "--dtype",
        "float32",
        "--samples",
        str(a.batch),
        "--batch-size",
        str(a.batch),
        "--shuffle",
        "blocks",
        "--steps",
        str(a.steps),
        "--bucket-bytes",
        str(buckets),
        *ALLREDUCE[alg],
        "--check-every",
        "0",
        "--out",
        str(out),
    ]


def measure(run: Path) -> dict:
    """Per step, the medians over ranks: the step (total / steps), each part, and the
    exposed communication (the step less the compute, the data and the update)."""
    s = json.loads((run / "summary.json").read_text())
    steps, per_rank = s["steps"], s["time_s_per_rank"]
    part = {k: per_rank[k]["median"] / steps for k in ("data", "compute", "comm", "update")}
    step = per_rank["total"]["median"] / steps
    other = part["data"] + part["update"]  # a step's time the run's workload does not carry
    exposed = step - part["compute"] - other
    return {"step_s": step, "other_s": other, "exposed_s": exposed, **part}


def simulate(run: Path, ranks: int, workload: str | None = None, alpha: float = 0) -> dict:
    """The ``step`` part of ``simulate --run RUN`` (its buckets, its measured compute, the
    spines its flows took), or with ``workload`` of ``--workload WORKLOAD`` instead; with
    ``alpha``, that per-message cost instead of the default 5 us."""
    fabric = f"cluster:{NAME}" + (f",alpha={alpha!r}s" if alpha else "")
    args = ["simulate", "--fabric", fabric, "--ranks", str(ranks)]
    args += ["--algorithm", "ring", "--json"]
    args += ["--workload", workload] if workload else ["--run", str(run)]
    if (run / "flows.json").exists():
        args += ["--flows", str(run / "flows.json")]
    return json.loads(dlr(*args).stdout)["step"]


def blocking(work: dict) -> str:
    """``simulate --run``'s workload with overlap off: the project's own algorithms have no
    non-blocking start (``Allreduce.istart`` runs the allreduce at once), so each bucket's
    allreduce runs when its block is computed and holds the next block until it is done."""
    (size,) = set(work["bucket_sizes"]) or {work["gradient_bytes"]}
    return (
        f"params={work['gradient_bytes']},dtype=fp8,buckets={size},"
        f"forward={work['forward_s']!r}s,backward={work['backward_s']!r}s,overlap=no"
    )


def measured_alpha(layout: str, tmp: Path) -> float:
    """Seconds per message on this cluster: a 4 KiB ring allreduce (no bandwidth to speak
    of) over its 2(p-1) messages, the p50 of 30 calls. Measured by ``bench``, not by the
    runs it is compared with, as docs/simulation.md's validation measured its alpha."""
    out = tmp / f"alpha-{layout}.json"
    bench = ["bench", "--allreduce", "ring", "--min-bytes", "4K", "--max-bytes", "4K"]
    dlr("cluster", "run", "--name", NAME, "--", *bench, "--iters", "30", "--out", str(out))
    (rec,) = json.loads(out.read_text())["records"]
    return rec["time_s_p50"] / (2 * (RANKS[layout] - 1))


def one(layout: str, alg: str, buckets: int, a, tmp: Path, alpha: float) -> dict:
    """Train one configuration on the running cluster and simulate it."""
    out = tmp / f"{layout}-{alg}-{buckets}"
    load0 = os.getloadavg()[0]
    train = train_args(a, buckets, out, alg)
    dlr("cluster", "run", "--name", NAME, "--", *train)
    load1 = os.getloadavg()[0]
    m, step = measure(out), simulate(out, RANKS[layout])
    (sim,) = step["rows"]
    sim_step = sim["step_s"] + m["other_s"]
    as_run = sim_step  # the run's buckets as the run ran them: overlapped or one by one
    work = blocking(step["workload"]) if alg != "mpi" and buckets else None
    if work:
        (row,) = simulate(out, RANKS[layout], work)["rows"]
        as_run = row["step_s"] + m["other_s"]
    (row,) = simulate(out, RANKS[layout], work, alpha)["rows"]  # as run, measured alpha
    with_alpha = row["step_s"] + m["other_s"]
    return {
        "layout": layout,
        "ranks": RANKS[layout],
        "allreduce": alg,
        "buckets": buckets,
        "measured_step_s": m["step_s"],
        "measured_exposed_s": m["exposed_s"],
        "measured_compute_s": m["compute"],
        "measured_other_s": m["other_s"],
        "sim_step_s": sim_step,
        "sim_exposed_s": sim["exposed_s"],
        "ratio_step": m["step_s"] / sim_step,
        "sim_step_as_run_s": as_run,
        "ratio_step_as_run": m["step_s"] / as_run,
        "alpha_s": alpha,
        "sim_step_alpha_s": with_alpha,
        "ratio_step_alpha": m["step_s"] / with_alpha,
        "ratio_exposed": m["exposed_s"] / sim["exposed_s"] if sim["exposed_s"] else float("nan"),
        "load": [round(load0, 2), round(load1, 2)],
    }


def table(rows: list[dict]) -> str:
    """The docs' table: measured, simulated (+ the run's data and update), ratios, load."""
    head = (
        "| layout | ranks | allreduce | buckets | step measured | `simulate --run` | ratio | "
        "buckets as run | ratio | as run, measured α | ratio | "
        "exposed measured | `simulate --run` | ratio | load |\n"
        + "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        b = f"{r['buckets'] >> 10} KiB" if r["buckets"] else "none (one allreduce)"
        lines.append(
            f"| {r['layout']} | {r['ranks']} | {r['allreduce']} | {b} | "
            f"{r['measured_step_s'] * 1e3:.1f} ms | {r['sim_step_s'] * 1e3:.1f} ms | "
            f"{r['ratio_step']:.2f} | {r['sim_step_as_run_s'] * 1e3:.1f} ms | "
            f"{r['ratio_step_as_run']:.2f} | {r['sim_step_alpha_s'] * 1e3:.1f} ms | "
            f"{r['ratio_step_alpha']:.2f} | {r['measured_exposed_s'] * 1e3:.1f} ms | "
            f"{r['sim_exposed_s'] * 1e3:.1f} ms | {r['ratio_exposed']:.2f} | "
            f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |"
        )
    return "\n".join(lines)


def sizes(text: str) -> list[int]:
    """``1M,256K,0`` -> bytes."""
    mult = {"K": 1 << 10, "M": 1 << 20}
    return [int(t[:-1]) * mult[t[-1]] if t[-1] in mult else int(t) for t in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", default="1gbit")
    p.add_argument("--mtu", default="9000")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--features", type=int, default=1 << 20)
    p.add_argument("--batch", type=int, default=64, help="global batch rows (default 64)")
    p.add_argument("--runs", type=Path, help="keep the train runs here (default: discarded)")
    p.add_argument("--layouts", default="leaf-spine,flat")
    p.add_argument("--allreduce", default="ring", help="ring (ours), mpi (Open MPI's), or both")
    p.add_argument("--buckets", type=sizes, default=sizes("1M,256K,0"))
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-step-real-") as tmp:
        tmp = a.runs or tmp
        for layout in a.layouts.split(","):
            up = ["cluster", "up", "--name", NAME, "--subnet", SUBNET, *LAYOUTS[layout]]
            up += ["--rate", a.rate, "--mtu", a.mtu, "--calibrate"]
            try:
                cal = [ln for ln in dlr(*up).stdout.splitlines() if "calibrated" in ln]
                print(f"{layout}: " + "; ".join(x.strip() for x in cal), flush=True)
                alpha = measured_alpha(layout, Path(tmp))
                print(f"{layout}: alpha {alpha * 1e3:.3f} ms per message (4 KiB ring)")
                for alg in a.allreduce.split(","):
                    for b in a.buckets:
                        rows.append(one(layout, alg, b, a, Path(tmp), alpha))
                        print(json.dumps(rows[-1]), flush=True)
            finally:
                dlr("cluster", "down", "--name", NAME)
    print(f"rate {a.rate}, mtu {a.mtu}, {a.steps} steps, {a.features} float32 features, ", end="")
    print(f"batch {a.batch}")
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
