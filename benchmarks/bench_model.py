"""Is the cost model right? Fit it on emulated hosts, predict what was held out, measure that.

Run as root (network namespaces):  .venv/bin/python benchmarks/bench_model.py [--json FILE]

1. Held out: fit on 2 and 4 emulated hosts (1 rank each, flat, every link ``--rate``,
   default 300 Mbit/s) from 64 KiB to 4 MiB; predict 8 and 16 MiB there (goal: within 15%),
   4 hosts from a fit at 2 (within 20%), and 1-16 MiB on 3 hosts (a rank count the fit
   never saw, and not a power of two; within 15%). ``--held-out-only``: just the first two.
2. What-if: the same fit, predicted at 200 Mbit/s (``--link-rate``), measured at 200 Mbit/s.
   Goal: within 20%.
3. Two-tier: 4 hosts under 2 leaves, uplinks at 2:1 and 4:1 oversubscription; the predicted
   cross-leaf slowdown (two-tier time / flat time) of each algorithm against the measured
   one. Goal: within 25%.

Every measurement is `dist-logreg cluster up/run -- bench/down` (mpi, ring, recursive
doubling, Rabenseifner); the fit and predictions are the library's own (``model fit`` and
``model predict`` do the same). Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dist_logreg.collective.benchfit import fit_records, format_fit, placement_of
from dist_logreg.collective.costfile import predict
from dist_logreg.collective.schedule import Placement
from dist_logreg.units import rate_bits

BIN = Path(sys.executable).parent
NAME, SUBNET = "cmmodel", "198.18.41.0/24"  # a valid --name: letters and digits
ALGS = "mpi,ring,recursive-doubling,rabenseifner"
GOALS = {
    "held-out size": 0.15,
    "held-out ranks": 0.15,
    "2 -> 4 hosts": 0.20,
    "what-if": 0.20,
    "two-tier": 0.25,
}


def dl(*args: str) -> None:
    subprocess.run([str(BIN / "dist-logreg"), *args], check=True, stdout=subprocess.DEVNULL)


def measure(hosts: int, lo: str, hi: str, rate: str, factor: int = 2, uplink: str = "") -> list:
    """Bring a cluster up, bench every algorithm from ``lo`` to ``hi``, bring it down."""
    tier = ["--topology", "two-tier", "--leaves", "2", "--uplink-rate", uplink] if uplink else []
    out = Path(tempfile.mkdtemp()) / "bench.json"
    dl(
        "cluster",
        "up",
        "--hosts",
        str(hosts),
        "--rate",
        rate,
        "--name",
        NAME,
        "--subnet",
        SUBNET,
        *tier,
    )
    try:
        dl(
            "cluster",
            "run",
            "--name",
            NAME,
            "--",
            "bench",
            "--allreduce",
            ALGS,
            "--min-bytes",
            lo,
            "--max-bytes",
            hi,
            "--factor",
            str(factor),
            "--iters",
            "10",
            "--warmup",
            "2",
            "--out",
            str(out),
        )
    finally:
        dl("cluster", "down", "--name", NAME)
    recs = json.loads(out.read_text())["records"]
    print(
        f"# measured {hosts} hosts at {rate}{' uplinks ' + uplink if uplink else ''}: "
        f"{len(recs)} records",
        flush=True,
    )
    return recs


def row(kind: str, rec: dict, pred: float, what: str, measured: float | None = None) -> dict:
    m = rec["time_s"] if measured is None else measured
    return {
        "check": kind,
        "algorithm": rec["algorithm"],
        "hosts": rec["world_size"],
        "bytes": rec["bytes"],
        "what": what,
        "measured": m,
        "predicted": pred,
        "ratio": m / pred,
        "ok": abs(m / pred - 1) <= GOALS[kind],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="FILE", help="also write the measurements and rows")
    ap.add_argument("--again", metavar="FILE", help="re-fit the measurements of a --json file")
    ap.add_argument("--segments", type=int, help="as `model fit --segments`")
    ap.add_argument(
        "--rate",
        default="300mbit",
        help="every link (default 300mbit: where shaping holds on 2 cores)",
    )
    ap.add_argument(
        "--held-out-only",
        action="store_true",
        help="only the held-out sizes and 2 -> 4 hosts (flat, 64 KiB-16 MiB)",
    )
    args = ap.parse_args()
    t0 = time.time()
    rate = args.rate
    if args.again:
        m = json.loads(Path(args.again).read_text())["measured"]
    else:
        m = {f"flat{h}": measure(h, "64K", "16M", rate) for h in (2, 4)}
        if not args.held_out_only:
            m["three"] = measure(3, "1M", "16M", rate, factor=4)
            m["slow"] = measure(4, "1M", "16M", "200mbit", factor=4)
            for x in (2, 4):
                up = f"{rate_bits(rate) * 2 / x / 1e6:g}mbit"  # 2 hosts per leaf: x:1
                m[f"tier{x}"] = measure(4, "4M", "16M", rate, 4, up)
    flat = {h: m[f"flat{h}"] for h in (2, 4)}
    three, slow = m.get("three", []), m.get("slow", [])
    tiers = {x: m[f"tier{x}"] for x in (2, 4) if f"tier{x}" in m}
    train = [r for h in (2, 4) for r in flat[h] if r["bytes"] <= 4 << 20]
    model = fit_records(train, segments=args.segments, link_rate=rate)
    print("\n".join(format_fit(model)))
    two = fit_records(
        [r for r in flat[2] if r["bytes"] <= 4 << 20], segments=args.segments, link_rate=rate
    )

    def pred(rec: dict, place=None, rate=None) -> float:
        place = place or placement_of(rec)
        return predict(model, rec["algorithm"], rec["bytes"], place, rate)["time_s"]

    rows = [
        row("held-out size", r, pred(r), "fit <= 4 MiB")
        for h in (2, 4)
        for r in flat[h]
        if r["bytes"] > 4 << 20
    ]
    rows += [
        row(
            "2 -> 4 hosts",
            r,
            predict(two, r["algorithm"], r["bytes"], placement_of(r))["time_s"],
            "fit at 2 hosts",
        )
        for r in flat[4]
    ]
    rows += [row("held-out ranks", r, pred(r), "3 hosts") for r in three]
    rows += [row("what-if", r, pred(r, rate=200e6), f"fit {rate}, at 200M") for r in slow]
    base = {(r["algorithm"], r["bytes"]): r for r in flat[4]}
    for x, recs in tiers.items():
        for r in recs:
            flat_rec = base[(r["algorithm"], r["bytes"])]
            tier = Placement.blocks(4, 1, hosts_per_leaf=2, oversubscription=x)
            slowdown = pred(r, tier) / pred(flat_rec)
            rows.append(
                row("two-tier", r, slowdown, f"{x}:1 slowdown", r["time_s"] / flat_rec["time_s"])
            )
    print(
        f"\n{'check':>15} {'algorithm':>19} {'hosts':>5} {'bytes':>9} {'what':>16} "
        f"{'measured':>10} {'predicted':>10} {'meas/pred':>9}  goal"
    )
    for r in rows:
        unit = 1 if r["check"] == "two-tier" else 1e3  # slowdowns are ratios, times in ms
        print(
            f"{r['check']:>15} {r['algorithm']:>19} {r['hosts']:>5} {r['bytes']:>9} "
            f"{r['what']:>16} {r['measured'] * unit:>10.3f} {r['predicted'] * unit:>10.3f} "
            f"{r['ratio']:>9.2f}  {'met' if r['ok'] else 'MISSED'} "
            f"(within {100 * GOALS[r['check']]:.0f}%)"
        )
    print("\n# goals met per check and algorithm (rows within the goal / rows):")
    for kind in GOALS:
        for alg in ALGS.split(","):
            mine = [r for r in rows if r["check"] == kind and r["algorithm"] == alg]
            if mine:
                print(f"  {kind:>15} {alg:>19}: {sum(r['ok'] for r in mine)}/{len(mine)}")
    print(f"# {time.time() - t0:.0f} s; times (ms) and slowdowns measured on a shared machine")
    if args.json:
        doc = {"measured": m, "model": model, "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
