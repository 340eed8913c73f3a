"""A large allreduce on emulated hosts as the link rate drops, next to the cost model.

Run as root:  .venv/bin/python benchmarks/bench_link_rate.py

For each rate: `dist-logreg cluster up --hosts 2 --rate R`, then `cluster run -- bench` of one
16 MiB allreduce (mpi and ring), then `cluster down`. The cost model (Hockney, ring):
t = 2(p-1) alpha + 2(p-1)/p * S * beta, with beta = 8 / rate seconds per byte and alpha the
measured 8-byte latency of the unshaped link.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dist_logreg.collective.closed_form import model_time
from dist_logreg.report.runs import bench_records

BIN = Path(sys.executable).parent


def cluster(*args: str) -> None:
    subprocess.run([str(BIN / "dist-logreg"), "cluster", *args], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def bench(name: str, size: str, tcp_links: int, out: Path, algorithms: str) -> list[dict]:
    subprocess.run(
        [str(BIN / "dist-logreg"), "cluster", "run", "--name", name, "--tcp-links",
         str(tcp_links), "--", "bench", "--allreduce", algorithms, "--min-bytes", size,
         "--max-bytes", size, "--iters", "8", "--warmup", "2", "--out", str(out)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return bench_records(json.loads(out.read_text()), str(out))["records"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="unshaped,1gbit,500mbit,100mbit")
    ap.add_argument("--size", default="16M")
    ap.add_argument("--tcp-links", type=int, default=4)
    args = ap.parse_args()
    name, subnet = "dlrbench", "198.18.10.0/24"
    tmp = Path(tempfile.mkdtemp())
    rows = []
    alpha = None
    for rate in args.rates.split(","):
        shaped = [] if rate == "unshaped" else ["--rate", rate]
        cluster("up", "--hosts", "2", "--name", name, "--subnet", subnet, *shaped)
        try:
            if alpha is None:  # per-message latency of the link, for the cost model
                alpha = bench(name, "8", args.tcp_links, tmp / "a.json", "ring")[0]["time_s"] / 2
            recs = bench(name, args.size, args.tcp_links, tmp / "b.json", "mpi,ring")
        finally:
            cluster("down", "--name", name)
        for r in recs:
            bits = None if rate == "unshaped" else float(rate[:-4]) * {"g": 1e9, "m": 1e6}[rate[-4]]
            model = model_time("ring", r["bytes"], 2, alpha, 8 / bits) if bits else None
            rows.append((rate, r["algorithm"], r["bytes"], r["time_s"], r["busbw"] * 8, model))
    print(f"# 2 emulated hosts x 1 rank, {args.size} allreduce, btl_tcp_links {args.tcp_links}; "
          f"alpha (8 B ring / 2 messages) = {alpha * 1e6:.1f} us")  # fmt: skip
    print(f"{'link':>10} {'algorithm':>10} {'time (ms)':>10} {'busbw (Gbit/s)':>15} "
          f"{'model (ms)':>11} {'measured/model':>15}")  # fmt: skip
    for rate, alg, _, t, busbw, model in rows:
        m = f"{model * 1e3:11.1f} {t / model:15.2f}" if model else f"{'-':>11} {'-':>15}"
        print(f"{rate:>10} {alg:>10} {t * 1e3:10.1f} {busbw:15.2f} {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
