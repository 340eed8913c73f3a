"""A training step at scale, per scenario: step time and exposed communication against ranks.

    python benchmarks/bench_step_scale.py [--ranks 16,64,256,512] [--images docs/images]

The flow engine (phase-synchronous), the bert-large preset (340M fp32 parameters in 25 MiB
buckets, 40 ms forward, 80 ms backward per rank, overlap on), ranks placed at random
(a scheduler blind to the topology) on a 2-tier leaf-spine of 16 leaves x 32 hosts and
8 spines, 400G, 2:1 oversubscribed, l4 hashing, for the ring and Rabenseifner, under:
none, a straggler 1.2x slower, one spine failed, one leaf-spine cable at 1/4 of its rate,
30% of every link taken by background traffic. Writes docs/images/step-scale.png (step
time and exposed communication against ranks, one line per scenario) and
docs/images/step-timeline.png (one step's buckets at the most ranks, no scenario), and
prints the numbers docs/step-at-scale.md quotes, with the load average (shared machine).

A neighbour (``--neighbour-ranks 16,64,256``): the same step in the dependency graph
(``--exact``), the first job on whole hosts drawn at random from the fabric (``scatter``),
alone and beside a second job of as many ranks placed at random on the hosts it leaves
free, running the same buckets' collectives from the same instant;
writes docs/images/step-neighbour.png (step time alone and with the neighbour, and the
slowdown, against ranks).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dist_logreg.collective.algorithms import RABENSEIFNER, RING  # noqa: E402
from dist_logreg.sim.fabric import parse_fabric  # noqa: E402
from dist_logreg.sim.runner import sweep  # noqa: E402
from dist_logreg.sim.scenario import apply_fabric, apply_workload, parse_scenario  # noqa: E402
from dist_logreg.sim.step import step_doc  # noqa: E402
from dist_logreg.sim.workload import collectives, parse_workload  # noqa: E402

FABRIC = "leaf-spine:leaves=16,spines=8,hosts-per-leaf=32,oversubscription=2,rate=400G"
WORKLOAD = "bert-large"
SCENARIOS = [
    "none",
    "straggler:factor=1.2",
    "fail:spine=0",
    "degrade:factor=4,link=leaf0-spine0",
    "background:fraction=0.3",
]
ALGS = [RING.name, RABENSEIFNER.name]


def run(ranks: list[int], scenario: str) -> dict:
    sc = parse_scenario(scenario)
    fab = apply_fabric(sc, parse_fabric(FABRIC))
    w = parse_workload(WORKLOAD)
    algs = [c for a in ALGS for c in collectives(w, a)]
    doc = sweep(fab, FABRIC, ranks, algs, sorted(set(w.sizes())), mode="random")
    return step_doc(apply_workload(sc, w, min(ranks)), doc["results"])


def with_neighbour(ranks: list[int]) -> dict:
    """``{alg: [(ranks, step alone, step with the neighbour)]}``, event by event."""
    fab, w = parse_fabric(FABRIC), parse_workload(WORKLOAD)
    out: dict = {a: [] for a in ALGS}
    for p in ranks:
        sc = parse_scenario(f"neighbour:ranks={p},placement=random")
        algs = [c for a in ALGS for c in collectives(w, a)]
        doc = sweep(
            fab, FABRIC, [p], algs, sorted(set(w.sizes())), mode="scatter", exact=True, neighbour=sc
        )
        alone = [{**r, "time_s": r["alone_s"]} for r in doc["results"]]
        both, solo = step_doc(w, doc["results"]), step_doc(w, alone)
        for a, b in zip(solo["rows"], both["rows"], strict=True):
            out[a["algorithm"]].append((p, a["step_s"], b["step_s"]))
    return out


def neighbour_figure(points: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (alg, rows) in enumerate(points.items()):
        x = [r[0] for r in rows]
        axes[0].plot(x, [r[1] * 1e3 for r in rows], "o-", color=f"C{i}", label=f"{alg}, alone")
        axes[0].plot(
            x, [r[2] * 1e3 for r in rows], "s--", color=f"C{i}", label=f"{alg}, with a neighbour"
        )
        axes[1].plot(x, [r[2] / r[1] for r in rows], "o-", color=f"C{i}", label=alg)
    for ax, what in zip(axes, ("step time (ms)", "slowdown (with / alone)"), strict=True):
        ax.set_xscale("log", base=2), ax.set_xlabel("ranks (each job)"), ax.set_ylabel(what)
        ax.set_xticks(x, [str(r) for r in x]), ax.legend(fontsize=7)
    fig.suptitle(
        f"{WORKLOAD}, --exact, on a 2:1 leaf-spine: alone and beside a job of as many ranks "
        "(both on hosts drawn at random)",
        fontsize=9,
    )
    fig.tight_layout(), fig.savefig(path, dpi=110), plt.close(fig)


def figure(steps: dict, ranks: list[int], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, step) in enumerate(steps.items()):
        for alg, style in zip(ALGS, ("o-", "s--"), strict=True):
            rows = [r for r in step["rows"] if r["algorithm"] == alg]
            x = [r["ranks"] for r in rows]
            label = f"{name}, {alg}" if alg == ALGS[0] else None
            axes[0].plot(x, [r["step_s"] * 1e3 for r in rows], style, color=f"C{i}", label=label)
            axes[1].plot(x, [r["exposed_s"] * 1e3 for r in rows], style, color=f"C{i}")
    for ax, what in zip(axes, ("step time (ms)", "exposed communication (ms)"), strict=True):
        ax.set_xscale("log", base=2), ax.set_xlabel("ranks"), ax.set_ylabel(what, fontsize=8)
        ax.set_xticks(ranks, [str(r) for r in ranks])
    axes[0].legend(fontsize=6, title=f"solid {ALGS[0]}, dashed {ALGS[1]}", title_fontsize=6)
    fig.suptitle(f"{WORKLOAD} on a 2:1 leaf-spine, random placement, per scenario", fontsize=9)
    fig.tight_layout(), fig.savefig(path, dpi=110), plt.close(fig)


def timeline(step: dict, path: Path) -> None:
    tl, w = step["timeline"], step["workload"]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.axvspan(0, w["forward_s"] * 1e3, color="0.85", label="forward")
    ax.axvspan(
        w["forward_s"] * 1e3,
        (w["forward_s"] + w["backward_s"]) * 1e3,
        color="0.7",
        label="backward",
    )
    for i, b in enumerate(tl["buckets"]):
        ax.plot([b["start_s"] * 1e3, b["end_s"] * 1e3], [i, i], color="C0", lw=1)
    ax.plot([], [], color="C0", label=f"{tl['algorithm']} allreduce of a bucket")
    ax.invert_yaxis(), ax.set_xlabel("time in the step (ms)"), ax.set_ylabel("bucket")
    ax.set_title(f"One step of {WORKLOAD} at {tl['ranks']} ranks", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout(), fig.savefig(path, dpi=110), plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", default="16,64,256,512")
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    ap.add_argument("--neighbour-ranks", default="16,32,64,128,256")
    ap.add_argument("--only-neighbour", action="store_true", help="only the neighbour figure")
    args = ap.parse_args()
    args.images.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    points = with_neighbour([int(x) for x in args.neighbour_ranks.split(",")])
    for alg, rows in points.items():
        for p, alone, both in rows:
            print(
                f"neighbour {alg:<13} {p:>5} ranks each: step alone {alone * 1e3:8.2f} ms, with "
                f"the neighbour {both * 1e3:8.2f} ms, slowdown {both / alone:.3f}"
            )
    neighbour_figure(points, args.images / "step-neighbour.png")
    print(f"neighbour: wall {time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.2f}")
    if args.only_neighbour:
        return
    ranks = [int(x) for x in args.ranks.split(",")]
    args.images.mkdir(parents=True, exist_ok=True)
    t0, steps = time.perf_counter(), {}
    for name in SCENARIOS:
        steps[name] = run(ranks, name)
        for r in steps[name]["rows"]:
            alone = next(
                x
                for x in steps["none"]["rows"]
                if x["ranks"] == r["ranks"] and x["algorithm"] == r["algorithm"]
            )
            print(
                f"{name:<36} {r['algorithm']:<13} {r['ranks']:>5} ranks: step "
                f"{r['step_s'] * 1e3:8.1f} ms, compute {r['compute_s'] * 1e3:6.1f} ms, comm "
                f"{r['comm_s'] * 1e3:8.1f} ms, exposed {r['exposed_s'] * 1e3:8.1f} ms "
                f"({100 * r['comm_fraction']:4.1f}%), efficiency {r['efficiency']:.2f}, "
                f"slowdown {r['step_s'] / alone['step_s']:.3f}"
            )
    figure(steps, ranks, args.images / "step-scale.png")
    timeline(steps["none"], args.images / "step-timeline.png")
    print(
        f"wall {time.perf_counter() - t0:.1f} s, load average {os.getloadavg()[0]:.2f} "
        f"(the machine is shared)"
    )


if __name__ == "__main__":
    main()
