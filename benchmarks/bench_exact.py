"""How fast ``simulate --exact`` plays the dependency graph (issue 30, 3): one process, e.g.

    python benchmarks/bench_exact.py            # the 1024-rank goals, then 4096 ranks
    python benchmarks/bench_exact.py --quick    # the 1024-rank goals only
    python benchmarks/bench_exact.py --modes    # exact / phase-sync on the docs' answers

Goals (wall time of one ``--exact`` run through the flow engine, the phase-synchronous
pass it also makes included; compiled with numba, the ``fast`` extra):

- ring of 1 MiB, 1024 ranks on one switch (``flat:hosts=1024``): <= 3 s (SMPI: 26.8 s);
- recursive doubling and Rabenseifner at 1024 ranks: <= 1 s each (SMPI: 0.25-0.6 s), on a
  k=16 fat tree and a 32 x 32 leaf-spine, 1 MiB and 100 MiB;
- the three at 4096 ranks on a k=16 fat tree (4 ranks per host), 100 MiB, one seed:
  <= 60 s together.

The first job compiles the kernels (or loads them from numba's cache): timed apart. The
load average is printed before and after: on a shared machine these are loaded numbers.
Also printed: the event-driven time over the phase-synchronous one (how far the modes
part) and the messages that waited for their receiver (rendezvous, Open MPI's limits).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.jit import AVAILABLE
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

MiB = 1 << 20
FAT16 = "fat-tree:k=16"
LS32 = "leaf-spine:leaves=32,spines=32,hosts-per-leaf=32"
GOALS_1024 = [("flat:hosts=1024", 1, "ring", MiB, 3.0)] + [
    (fab, 1, alg, size, 1.0)
    for alg in ("recursive-doubling", "rabenseifner")
    for fab in (FAT16, LS32)
    for size in (MiB, 100 * MiB)
]
#: The headline answers of docs/simulation.md (bench_simulate_answers.py): 4096 ranks, 4 per
#: host, 100 MiB, seed 0; (label, spec, placement).
FAT = "fat-tree:k=16,rate={rate}"
LEAF = "leaf-spine:leaves=32,spines=16,hosts-per-leaf=32,rate=400G,oversubscription={o}"
ANSWERS = (
    [(f"(a) leaf-spine {o}:1", LEAF.format(o=o), "packed") for o in (1, 2, 4)]
    + [("(a) fat tree k=16", FAT.format(rate="400G"), "packed")]
    + [(f"(b) hash {h}", FAT.format(rate="400G") + f",hash={h}", "packed") for h in ("l3", "spray")]
    + [("(b) polarized", FAT.format(rate="400G") + ",hash=l4,hash-polarize=yes", "packed")]
    + [("(c) random placement", FAT.format(rate="400G"), "random")]
    + [(f"(d) {r}", FAT.format(rate=r), "packed") for r in ("100G", "800G")]
)
GOALS_4096 = [
    (FAT16, 4, alg, 100 * MiB, None) for alg in ("ring", "recursive-doubling", "rabenseifner")
]


def one(spec: str, ranks: int, per_host: int, alg: str, nbytes: int, mode="packed") -> dict:
    fab = parse_fabric(spec)
    job = Job(fab, place(ranks, fab, per_host, mode), alg, nbytes, exact=True)
    t0 = time.perf_counter()
    r = get_engine("flow").run(job)
    wall = time.perf_counter() - t0
    return {
        "fabric": spec,
        "ranks": ranks,
        "algorithm": alg,
        "bytes": nbytes,
        "wall_s": wall,
        "time_s": r.time_s,
        "exact_over_phase_sync": r.time_s / r.extra["phase_sync_s"],
        "messages": r.extra["message_count"],
        "rendezvous": r.extra["rendezvous"],
    }


def show(row: dict, goal: float | None) -> None:
    verdict = "" if goal is None else ("  ok" if row["wall_s"] <= goal else f"  OVER {goal:g} s")
    print(
        f"{row['algorithm']:>19} {row['ranks']:5d} {row['bytes'] / MiB:6.0f} MiB "
        f"{row['fabric']:<48} {row['wall_s']:7.2f} s  exact/sync "
        f"{row['exact_over_phase_sync']:.3f}  msgs {row['messages']:>9,} "
        f"rdv {row['rendezvous']:>9,}{verdict}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the 1024-rank goals")
    ap.add_argument("--modes", action="store_true", help="only exact / phase-sync, answers")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(
        f"numba: {'yes' if AVAILABLE else 'NO (plain Python)'}; cpus {os.cpu_count()}; "
        f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
    )
    t0 = time.perf_counter()
    one("flat:hosts=4", 4, 1, "ring", 4096)
    print(f"compile or cache load: {time.perf_counter() - t0:.2f} s")
    rows = []
    if args.modes:
        return modes()
    for spec, per, alg, size, goal in GOALS_1024:
        rows.append(one(spec, 1024, per, alg, size))
        show(rows[-1], goal)
    if not args.quick:
        total = 0.0
        for spec, per, alg, size, _ in GOALS_4096:
            rows.append(one(spec, 4096, per, alg, size))
            total += rows[-1]["wall_s"]
            show(rows[-1], None)
        print(
            f"4096 ranks, the three together: {total:.1f} s (goal 60 s): "
            f"{'ok' if total <= 60 else 'OVER'}"
        )
    load1 = os.getloadavg()
    print(
        f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (loaded numbers "
        f"where these exceed the cpu count)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"load_before": load0, "load_after": load1, "rows": rows}, fh, indent=1)


def modes() -> None:
    """Event-driven (rendezvous at Open MPI's limits) over phase-synchronous time on the
    configurations of the docs' headline answers: recursive doubling and Rabenseifner."""
    for label, spec, mode in ANSWERS:
        for alg in ("recursive-doubling", "rabenseifner"):
            r = one(spec, 4096, 4, alg, 100 * MiB, mode)
            print(
                f"{label:<22} {alg:>19}: exact {r['time_s'] * 1e3:8.2f} ms, exact/sync "
                f"{r['exact_over_phase_sync']:.3f} ({r['wall_s']:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
