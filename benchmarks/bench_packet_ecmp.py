"""Question 3, elephants against ECMP: per-flow hashing against spraying, over 20 seeds.

Run:  python benchmarks/bench_packet_ecmp.py [--seeds 20] [--bytes 4M]

Leaf-spine 4 leaves x 2 spines x 2 hosts at 10G, 10G uplinks (1:1, non-blocking when the
flows spread evenly), one rank per host, spread placement (every ring neighbour under
another leaf), ring and recursive doubling, cubic. For each hash seed: the packet engine
with the l4 hash (each connection pinned to the spine its hash picks) and with hash=spray
(ns-3's random next hop per packet), and the flow engine (exact) with the same paths.
Spraying costs reordering: cubic sees duplicate ACKs and retransmits. Draws
docs/images/packet-ecmp.png. Scaled down from 16-64 hosts.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from packet_bench import IMAGES, job, pyplot, row, start

from dist_logreg.units import parse_bytes

SPEC = (
    "leaf-spine:leaves=4,spines=2,hosts-per-leaf=2,rate=10G,uplink-rate=10G,hash={h},hash-seed={s}"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--bytes", default="4M")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    flow, pkt = start()
    nb = parse_bytes(args.bytes)
    out = []
    for alg in ("ring", "recursive-doubling"):
        for s in range(args.seeds):
            rec = {"algorithm": alg, "seed": s}
            for h in ("l4", "spray"):
                j = job(SPEC.format(h=h, s=s), alg, nb, mode="spread")
                r = row(pkt.run(j))
                rec[f"packet_{h}_s"], rec[f"retx_{h}"] = r["time_s"], r["retransmissions"]
                rec[f"flow_{h}_s"] = flow.run(j).time_s
            out.append(rec)
            print(
                f"{alg:18s} seed {s:2d}  l4: packet {rec['packet_l4_s'] * 1e3:7.3f} ms flow "
                f"{rec['flow_l4_s'] * 1e3:7.3f} ms retx {rec['retx_l4']:4d} | spray: packet "
                f"{rec['packet_spray_s'] * 1e3:7.3f} ms flow {rec['flow_spray_s'] * 1e3:7.3f} ms "
                f"retx {rec['retx_spray']:4d}",
                flush=True,
            )
    print(f"loadavg at end {os.getloadavg()}")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    for ax, alg in zip(axes, ("ring", "recursive-doubling"), strict=True):
        mine = [r for r in out if r["algorithm"] == alg]
        data = [
            [r[k] * 1e3 for r in mine]
            for k in ("packet_l4_s", "flow_l4_s", "packet_spray_s", "flow_spray_s")
        ]
        ax.boxplot(data)
        ax.set_xticks(
            [1, 2, 3, 4], ["l4 packet", "l4 flow", "spray packet", "spray flow"], fontsize=8
        )
        ax.set_title(f"{alg}, {nb / 2**20:g} MiB, {args.seeds} seeds", fontsize=9)
        ax.set_ylabel("allreduce time (ms)")
    fig.tight_layout()
    fig.savefig(IMAGES / "packet-ecmp.png", dpi=110)
    for alg in ("ring", "recursive-doubling"):
        mine = [r for r in out if r["algorithm"] == alg]
        for k in (
            "packet_l4_s",
            "flow_l4_s",
            "packet_spray_s",
            "flow_spray_s",
            "retx_l4",
            "retx_spray",
        ):
            v = np.array([r[k] for r in mine], dtype=float)
            print(f"{alg:18s} {k:15s} median {np.median(v):.6g} worst {v.max():.6g}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
