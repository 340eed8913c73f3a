"""Question 4, endpoint bandwidth: faster hosts under fixed uplinks, where the bottleneck moves.

Run:  python benchmarks/bench_packet_endpoint.py [--bytes 4M]

Leaf-spine 4 leaves x 2 spines x 4 hosts, 10G uplinks; host links at 2.5, 5 and 10G: the
100/200/400G hosts under 2 x 400G uplinks per leaf of the question, scaled down by 40 so
that ns-3 runs in minutes (the ratios, and so where the bottleneck sits, are the same; the
latencies are not scaled). Random placement (a scheduler that ignores the topology), ring
and rabenseifner, cubic, 1 MiB port buffers; the packet engine and the flow engine (exact),
the bottleneck link class the flow engine names, and busbw as a fraction of the host rate.
Draws docs/images/packet-endpoint.png.
"""

from __future__ import annotations

import argparse
import json
import os

from packet_bench import IMAGES, job, pyplot, row, start

from dist_logreg.units import parse_bytes

RATES = (2.5, 5.0, 10.0)
SPEC = "leaf-spine:leaves=4,spines=2,hosts-per-leaf=4,rate={r}G,uplink-rate=10G"


def _busbw(nb: int, t: float, gbit: float) -> float:
    """busbw of 16 ranks as a fraction of the host link rate."""
    return nb / t * 2 * 15 / 16 / (gbit * 1e9 / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="4M")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    flow, pkt = start()
    nb = parse_bytes(args.bytes)
    out = []
    for alg in ("ring", "rabenseifner"):
        for r in RATES:
            j = job(SPEC.format(r=r), alg, nb, seed=1, mode="random")
            f, p = flow.run(j), row(pkt.run(j))
            rec = {
                "algorithm": alg,
                "host_gbit": r,
                "packet_s": p["time_s"],
                "flow_s": f.time_s,
                "bottleneck": f.bottleneck,
                "packet_busbw_frac": _busbw(nb, p["time_s"], r),
                "flow_busbw_frac": _busbw(nb, f.time_s, r),
                "drops": p["drops"],
                "retransmissions": p["retransmissions"],
                "wall_s": p["wall_s"],
            }
            out.append(rec)
            print(
                f"{alg:13s} host {r:4.1f}G  packet {p['time_s'] * 1e3:8.3f} ms  flow "
                f"{f.time_s * 1e3:8.3f} ms  busbw/host rate packet "
                f"{rec['packet_busbw_frac']:.2f} flow {rec['flow_busbw_frac']:.2f}  bottleneck "
                f"{f.bottleneck}  drops {p['drops']}  wall {p['wall_s']:.1f} s",
                flush=True,
            )
    print(f"loadavg at end {os.getloadavg()}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for alg in ("ring", "rabenseifner"):
        mine = [x for x in out if x["algorithm"] == alg]
        ax.plot(RATES, [x["packet_busbw_frac"] for x in mine], "o-", label=f"{alg} packet")
        ax.plot(RATES, [x["flow_busbw_frac"] for x in mine], "s--", label=f"{alg} flow")
    ax.set_xticks(RATES, ["2.5G (100G)", "5G (200G)", "10G (400G)"])
    ax.set_xlabel("host link (the unscaled question's rate)")
    ax.set_ylabel("busbw / host link rate")
    ax.set_ylim(0, 1.1)
    ax.set_title(
        f"{nb / 2**20:g} MiB, 16 hosts, 4 per leaf, 2 x 10G uplinks, random placement", fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMAGES / "packet-endpoint.png", dpi=110)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
