"""Question 2, ECN that reacts late: DCTCP at K = 20, 65, 200 KB against cubic on drop-tail.

Run:  python benchmarks/bench_packet_ecn.py [--bytes 4M]

Leaf-spine 2 leaves x 1 spine x 4 hosts at 10G, 10G uplinks (4:1 oversubscribed, so the
cross-leaf steps queue at the leaf uplink), 512 KiB per-port buffers, one rank per host,
spread placement (ring neighbours under different leaves). Recursive halving
(rabenseifner: its first step is a many-to-one burst at the uplink) and the ring. Per
case: allreduce time, peak and mean queue of the busiest ports, marks, drops,
retransmissions. Draws docs/images/packet-ecn.png. Scaled down from 16-64 hosts.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from packet_bench import IMAGES, job, pyplot, row, start

from dist_logreg.units import parse_bytes

CASES = (
    ("cubic drop-tail", {"tcp": "cubic"}),
    ("dctcp K=20K", {"tcp": "dctcp", "ecn": "20K"}),
    ("dctcp K=65K", {"tcp": "dctcp", "ecn": "65K"}),
    ("dctcp K=200K", {"tcp": "dctcp", "ecn": "200K"}),
)
SPEC = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4,rate=10G,uplink-rate=10G"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="4M")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    _, pkt = start()
    nb = parse_bytes(args.bytes)
    out = []
    for alg in ("rabenseifner", "ring"):
        for label, opts in CASES:
            r = row(pkt.run(job(SPEC, alg, nb, mode="spread", queue="512K", **opts)))
            out.append({"algorithm": alg, "case": label, **r})
            print(
                f"{alg:13s} {label:16s} time {r['time_s'] * 1e3:8.3f} ms  peak queue "
                f"{r['peak_queue_bytes'] / 1024:6.1f} KiB  mean "
                f"{r['mean_queue_bytes'] / 1024:6.1f} KiB  marks {r['ecn_marks']:6d}  drops "
                f"{r['drops']:5d}  retx "
                f"{r['retransmissions']:5d}  wall {r['wall_s']:.1f} s",
                flush=True,
            )
    print(f"loadavg at end {os.getloadavg()}")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    x = np.arange(len(CASES))
    for k, alg in enumerate(("rabenseifner", "ring")):
        mine = [r for r in out if r["algorithm"] == alg]
        axes[0].bar(x + 0.38 * k, [r["time_s"] * 1e3 for r in mine], 0.38, label=alg)
        axes[1].bar(x + 0.38 * k, [r["peak_queue_bytes"] / 1024 for r in mine], 0.38, label=alg)
    for ax, yl in zip(axes, ("allreduce time (ms)", "peak queue (KiB)"), strict=True):
        ax.set_xticks(x + 0.19, [c for c, _ in CASES], rotation=20, fontsize=8)
        ax.set_ylabel(yl)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{nb / 2**20:g} MiB allreduce, 2 leaves x 4 hosts, 4:1 uplink, 512 KiB buffers", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(IMAGES / "packet-ecn.png", dpi=110)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
