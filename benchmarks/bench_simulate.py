"""Speed of the flow simulator: 4096 ranks on a k=16 fat tree, 32 seeds; 16384 ranks, one seed.

    python benchmarks/bench_simulate.py            # both cases (minutes on a loaded machine)
    python benchmarks/bench_simulate.py --quick    # 1024 ranks, 4 seeds

Goals (issue 19): 4096 ranks (fat tree k=16, 4 ranks per host), ring, Rabenseifner and
recursive doubling, 100 MiB, 32 seeds in <= 30 s; 16384 ranks, one seed, <= 120 s. Prints
wall time, peak memory (ru_maxrss) and the load average before and after each case.
"""

from __future__ import annotations

import argparse
import resource
import time

from dist_logreg.collective.algorithms import HIERARCHICAL, scheduled
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep

ALGS = [a for a in scheduled() if a != HIERARCHICAL.name]  # ring, recursive doubling, Rabenseifner


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def case(spec: str, ranks: int, seeds: int) -> None:
    fab = parse_fabric(spec)
    before = loadavg()
    t0 = time.perf_counter()
    doc = sweep(fab, spec, [ranks], ALGS, [100 << 20], seeds=seeds, per_host=4)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{spec}: {ranks} ranks x 4/host, {', '.join(ALGS)}, 100 MiB, {seeds} seed(s): "
        f"{wall:.1f} s wall, peak RSS {peak:.0f} MiB, load average {before} -> {loadavg()}"
    )
    for r in doc["results"]:
        print(
            f"  {r['algorithm']:<19} median {r['time_s'] * 1e3:9.2f} ms  worst "
            f"{r['time_s_worst'] * 1e3:9.2f} ms  x ideal {r['ratio_to_ideal']:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1024 ranks, 4 seeds only")
    args = ap.parse_args()
    if args.quick:
        case("fat-tree:k=10,rate=400G", 1000, 4)
        return
    case("fat-tree:k=16,rate=400G", 4096, 32)
    case("fat-tree:k=26,rate=400G", 16384, 1)


if __name__ == "__main__":
    main()
