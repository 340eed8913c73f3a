"""The fabrics AI training runs on: rail-optimized against ToR-wired, PXN, planes, queue
pairs, placement. Flow engine, phase-synchronous; 8 GPUs and 8 x 400G NICs per host.

    python benchmarks/bench_rails.py [--seeds 2] [--images docs/images] [--skip-speed]

(speed) 16,384 GPUs (superpod-h100:units=64), three algorithms, 100 MiB, 8 seeds: wall
        time and peak memory (run first, so the peak is its own);
(a) rail-optimized (superpod-h100) against the same switches ToR-wired, 1024/4096/16384
    GPUs: time, busbw per NIC, bytes crossing the spines;
(b) PXN on against off (4096 GPUs);
(c) HPN's dual-ToR hosts: one plane against two, per-switch (salted) against polarized
    hashing (4096 GPUs);
(d) l4 against qp:2, qp:4, qp:8 and spray (4096 GPUs, ToR-wired: the spines carry the ring);
(e) a 1024-GPU job on 4 whole units against 128 hosts drawn anywhere in a 4096-GPU
    SuperPOD.
Every row also gives the scale-up share: the part of the time that an infinitely fast
scale-up domain without latency would save (the same sweep run again with it). Writes
docs/images/rails-*.png and prints the numbers docs/rails.md quotes.

``ALGS``: ring and Rabenseifner over all ranks in rank order, and the rail-aware
hierarchical-2d (reduce-scatter over the scale-up domain, an allreduce per rail across
hosts: a ring, or Rabenseifner's with ``hierarchical-2d:rabenseifner``; allgather inside;
its nodes are the hosts, ``Job.node_of``), packed placement (rank r on GPU r) unless the
case says otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dist_logreg.sim.fabric import parse_fabric  # noqa: E402
from dist_logreg.sim.runner import sweep  # noqa: E402

ALGS = ["ring", "rabenseifner", "hierarchical-2d", "hierarchical-2d:rabenseifner"]
SIZES = [100 << 20, 1 << 30]
UNITS = {1024: 4, 4096: 16, 16384: 64}
FREE_SCALEUP = "scaleup-rate=100TB/s,scaleup-latency=0"  # the most a spec takes (1e14 B/s)


def tor_of(units: int) -> str:
    """The SuperPOD's switches and cables, every NIC of a host on one leaf."""
    pods = ",units-per-pod=4,spines=32" if units > 8 else f",spines={4 * units}"
    return f"tor:hosts-per-unit=32,units={units},rails=8{pods}"  # scale-up: 450 GB/s


def sweep_of(spec, ranks, seeds, mode):
    doc = sweep(parse_fabric(spec), spec, [ranks], ALGS, SIZES, seeds=seeds, mode=mode)
    return {(r["algorithm"], r["bytes"]): r for r in doc["results"]}


def run(spec, ranks, seeds, mode="packed"):
    """Every algorithm and size on ``spec``; each row gains ``scaleup_share``: the part of
    its time an infinitely fast scale-up domain with no latency would save."""
    out = sweep_of(spec, ranks, seeds, mode)
    free = sweep_of(f"{spec},{FREE_SCALEUP}", ranks, seeds, mode)
    for key, r in out.items():
        r["scaleup_share"] = 1.0 - free[key]["time_s"] / r["time_s"]
    return out


def show(label: str, res: dict) -> None:
    for (alg, n), r in res.items():
        print(
            f"  {label:<34} {alg:<28} {n >> 20:>5} MiB {r['time_s'] * 1e3:9.2f} ms "
            f"(worst {r['time_s_worst'] * 1e3:8.2f})  busbw/NIC {r['busbw'] / 1e9:6.2f} GB/s  "
            f"spine bytes {r['cross_leaf_bytes'] / 2**30:9.1f} GiB  flows/uplink "
            f"{r['max_flows_per_uplink']:5.1f}  scale-up share {r['scaleup_share']:.2f}"
        )


def bars(ax, groups: dict, key, scale, size):
    width = 0.8 / len(groups)
    for i, (label, res) in enumerate(groups.items()):
        x = np.arange(len(ALGS)) + i * width
        ax.bar(x, [res[(a, size)][key] * scale for a in ALGS], width, label=label)
    ax.set_xticks(np.arange(len(ALGS)) + 0.4 - width / 2, ALGS, fontsize=7)


def figure(groups, key, ylabel, title, path, scale=1e3, size=SIZES[0]):
    fig, ax = plt.subplots(figsize=(7, 3.4))
    bars(ax, groups, key, scale, size)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout(), fig.savefig(path, dpi=110), plt.close(fig)


def speed() -> None:
    spec = "superpod-h100:units=64"
    t0 = time.perf_counter()
    doc = sweep(
        parse_fabric(spec),
        spec,
        [16384],
        ["ring", "rabenseifner", "recursive-doubling"],
        [100 << 20],
        seeds=8,
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"(speed) {spec}: 16384 GPUs, 3 algorithms, 100 MiB, 8 seeds: {wall:.1f} s wall, "
        f"peak RSS {peak:.0f} MiB, load average {os.getloadavg()[0]:.1f}"
    )
    for r in doc["results"]:
        print(f"  {r['algorithm']:<19} {r['time_s'] * 1e3:9.2f} ms  {r['bottleneck']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    args.images.mkdir(parents=True, exist_ok=True)
    t0, s = time.perf_counter(), args.seeds
    if not args.skip_speed:
        speed()
    print("(a) rail-optimized vs ToR-wired")
    groups = {}
    for gpus, units in UNITS.items():
        for name, spec in (("rail", f"superpod-h100:units={units}"), ("tor", tor_of(units))):
            groups[f"{name} {gpus}"] = res = run(spec, gpus, s)
            show(f"{name} {gpus} GPUs", res)
    figure(
        groups,
        "busbw",
        "busbw per NIC (GB/s)",
        "rail vs ToR wiring, 100 MiB, 400G",
        args.images / "rails-a-wiring.png",
        scale=1e-9,
    )
    print("(b) PXN")
    groups = {}
    for pxn in ("yes", "no"):
        groups[f"pxn={pxn}"] = res = run(f"superpod-h100:units=16,pxn={pxn}", 4096, s)
        show(f"pxn={pxn}", res)
    figure(
        groups,
        "time_s",
        "time (ms)",
        "PXN on/off, 4096 GPUs, 100 MiB",
        args.images / "rails-b-pxn.png",
    )
    answers_cde(args.images, s)
    print(f"total {time.perf_counter() - t0:.0f} s wall, load average {os.getloadavg()}")


def answers_cde(images: Path, s: int) -> None:
    print("(c) planes and polarization (HPN hosts, 4096 GPUs)")
    groups = {}
    for planes in (1, 2):
        for pol in ("no", "yes"):
            spec = f"hpn:units=4,planes={planes},hash-polarize={pol}"
            groups[f"{planes} plane(s), polarize={pol}"] = res = run(spec, 4096, 2 * s)
            show(f"planes={planes} polarize={pol}", res)
    figure(
        groups,
        "time_s",
        "time (ms)",
        "HPN hosts: planes and hashing, 100 MiB",
        images / "rails-c-planes.png",
    )
    print("(d) queue pairs (ToR-wired, 4096 GPUs)")
    groups = {}
    for h in ("l4", "qp:2", "qp:4", "qp:8", "spray"):
        groups[h] = res = run(f"{tor_of(16)},hash={h}", 4096, 2 * s)
        show(f"hash={h}", res)
    figure(
        groups,
        "time_s",
        "time (ms)",
        "hash: l4, queue pairs, spray; 100 MiB",
        images / "rails-d-qps.png",
    )
    print("(e) 1024 GPUs on whole units vs scattered hosts (4096-GPU SuperPOD)")
    groups = {}
    for mode in ("packed", "scatter"):
        groups[mode] = res = run("superpod-h100:units=16", 1024, 2 * s, mode=mode)
        show(mode, res)
    figure(
        groups,
        "time_s",
        "time (ms)",
        "placement: whole units vs scattered hosts, 100 MiB",
        images / "rails-e-placement.png",
    )


if __name__ == "__main__":
    main()
