"""The first answers of the flow simulator: 4096 ranks (4 per host) at 400G, 100 MiB.

    python benchmarks/bench_simulate_answers.py [--seeds 32] [--images docs/images]

(a) 2-tier leaf-spine at 1:1, 2:1, 4:1 against a 3-tier fat tree (k=16);
(b) L3 against L4 against spraying over the seeds (the ECMP tail), and polarized against
    per-switch hashing on the fat tree (how much of the core carries traffic);
(c) packed against random placement (cross-leaf bytes and time);
(d) 100/200/400/800G host links;
(e) --exact against phase-synchronous on a smaller job (64 ranks), where both can run.
Writes docs/images/sim-*.png and prints the numbers the docs page quotes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dist_logreg.collective.algorithms import HIERARCHICAL, scheduled  # noqa: E402
from dist_logreg.sim.fabric import parse_fabric  # noqa: E402
from dist_logreg.sim.runner import sweep  # noqa: E402

ALGS = [a for a in scheduled() if a != HIERARCHICAL.name]
P, K, S = 4096, 4, 100 << 20
FAT = "fat-tree:k=16,rate={rate}"
LEAF = "leaf-spine:leaves=32,spines=16,hosts-per-leaf=32,rate=400G,oversubscription={o}"


def run(spec, seeds, mode="packed", ranks=P, per_host=K, exact=False):
    fab = parse_fabric(spec)
    doc = sweep(
        fab, spec, [ranks], ALGS, [S], seeds=seeds, per_host=per_host, mode=mode, exact=exact
    )
    return {r["algorithm"]: r for r in doc["results"]}


def bars(ax, groups: dict, key, scale=1e3):
    width = 0.8 / len(groups)
    for i, (label, res) in enumerate(groups.items()):
        x = np.arange(len(ALGS)) + i * width
        ax.bar(x, [res[a][key] * scale for a in ALGS], width, label=label)
    ax.set_xticks(np.arange(len(ALGS)) + 0.4 - width / 2, ALGS, fontsize=8)


def answer_a(seeds, out):
    groups = {f"leaf-spine {o}:1": run(LEAF.format(o=o), seeds) for o in (1, 2, 4)}
    groups["fat tree k=16 (1:1)"] = run(FAT.format(rate="400G"), seeds)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars(ax, groups, "time_s")
    ax.set_ylabel("allreduce time, median over seeds (ms)")
    ax.set_title(f"{P} ranks, 400G, 100 MiB: 2-tier oversubscription vs 3-tier")
    ax.legend(fontsize=8)
    fig.tight_layout(), fig.savefig(out / "sim-tiers.png", dpi=110), plt.close(fig)
    return groups


def answer_b(seeds, out):
    groups = {h: run(FAT.format(rate="400G") + f",hash={h}", seeds) for h in ("l3", "l4", "spray")}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (h, res) in enumerate(groups.items()):
        for j, a in enumerate(ALGS):
            y = np.array(res[a]["time_s_seeds"]) * 1e3
            ax.scatter(
                np.full(y.size, j + i * 0.25) + np.linspace(-0.05, 0.05, y.size),
                y,
                s=6,
                color=f"C{i}",
                label=h if j == 0 else None,
            )
    ax.set_xticks(np.arange(len(ALGS)) + 0.25, ALGS)
    ax.set_ylabel("allreduce time per seed (ms)")
    ax.set_title(f"fat tree k=16, {P} ranks: ECMP hashing, {seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout(), fig.savefig(out / "sim-hashing.png", dpi=110), plt.close(fig)
    polar = {
        p: run(FAT.format(rate="400G") + f",hash=l4,hash-polarize={p}", min(seeds, 8))
        for p in ("no", "yes")
    }
    return groups, polar


def answer_c(seeds, out):
    groups = {m: run(FAT.format(rate="400G"), seeds, mode=m) for m in ("packed", "random")}
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    bars(axes[0], groups, "time_s")
    axes[0].set_ylabel("time, median (ms)")
    bars(axes[1], groups, "cross_leaf_bytes", 1 / 2**30)
    axes[1].set_ylabel("bytes crossing leaf uplinks (GiB)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"fat tree k=16, {P} ranks: packed vs random placement")
    fig.tight_layout(), fig.savefig(out / "sim-placement.png", dpi=110), plt.close(fig)
    return groups


def answer_d(seeds, out):
    rates = ("100G", "200G", "400G", "800G")
    groups = {r: run(FAT.format(rate=r), seeds) for r in rates}
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for a in ALGS:
        ax.plot([100, 200, 400, 800], [groups[r][a]["time_s"] * 1e3 for r in rates], "o-", label=a)
    ax.set_xscale("log", base=2), ax.set_yscale("log")
    ax.set_xlabel("host link rate (Gbit/s)"), ax.set_ylabel("time, median (ms)")
    ax.set_title(f"fat tree k=16, {P} ranks, 100 MiB")
    ax.legend(fontsize=8)
    fig.tight_layout(), fig.savefig(out / "sim-rates.png", dpi=110), plt.close(fig)
    return groups


def show(title, groups):
    print(f"\n{title}")
    for label, res in groups.items():
        cells = "  ".join(
            f"{a} {res[a]['time_s'] * 1e3:.2f} ms (worst {res[a]['time_s_worst'] * 1e3:.2f}, "
            f"x{res[a]['ratio_to_ideal']:.2f}, {res[a]['bottleneck']})"
            for a in ALGS
        )
        print(f"  {label:<22} {cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    args = ap.parse_args()
    args.images.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    show("(a) tiers", answer_a(max(args.seeds // 4, 1), args.images))
    hashing, polar = answer_b(args.seeds, args.images)
    show("(b) hashing", hashing)
    for p, res in polar.items():
        core = {a: res[a]["links"].get("core-down", {}) for a in ALGS}
        print(
            f"  polarize={p}: "
            + "  ".join(
                f"{a} {res[a]['time_s'] * 1e3:.2f} ms, core-down max util "
                f"{core[a].get('max_util', 0):.2f} mean {core[a].get('mean_util', 0):.3f}"
                for a in ALGS
            )
        )
    placement = answer_c(max(args.seeds // 4, 1), args.images)
    show("(c) placement", placement)
    for m, res in placement.items():
        print(
            f"  {m}: cross-leaf "
            + ", ".join(f"{a} {res[a]['cross_leaf_bytes'] / 2**30:.1f} GiB" for a in ALGS)
        )
    show("(d) host link rate", answer_d(max(args.seeds // 8, 1), args.images))
    small = "leaf-spine:leaves=4,spines=2,hosts-per-leaf=16,rate=400G,oversubscription=2"
    ex = run(small, 1, ranks=64, per_host=1, exact=True)
    print("\n(e) exact vs phase-synchronous, 64 ranks, leaf-spine 4x16, 2 spines, 2:1:")
    for a in ALGS:
        print(
            f"  {a}: exact {ex[a]['time_s'] * 1e3:.3f} ms, "
            f"phase-sync {ex[a]['phase_sync_s'] * 1e3:.3f} ms, "
            f"ratio {ex[a]['time_s'] / ex[a]['phase_sync_s']:.3f}"
        )
    with open("/proc/loadavg") as f:
        print(
            f"\nwall {time.perf_counter() - t0:.0f} s, "
            f"load average {' '.join(f.read().split()[:3])}"
        )


if __name__ == "__main__":
    main()
