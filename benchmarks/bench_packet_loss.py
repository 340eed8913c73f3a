"""Question 1, loss taken for a failure: allreduce time p50/p99 against link loss.

Run:  python benchmarks/bench_packet_loss.py [--seeds 12] [--hosts 8]

Ring allreduce of 1 MiB (the trainer's gradient of 2^18 float32) on flat:hosts=H at 10G,
cubic, loss 0, 0.01, 0.1, 1 % on every link, min RTO 200 ms (Linux) and 5 ms; each seed a
new loss pattern (one allreduce = one step's communication). Prints p50/p99 per case and
which --comm-timeout (1, 5, 30 s) the p99 would trip; draws docs/images/packet-loss.png.
Scaled down from 16-64 hosts to run in minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from packet_bench import IMAGES, job, pyplot, row, start

LOSSES = (0.0, 0.01, 0.1, 1.0)
RTOS = ("200ms", "5ms")
TIMEOUTS = (1.0, 5.0, 30.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    _, pkt = start()
    spec = f"flat:hosts={args.hosts},rate=10G"
    out = []
    for rto in RTOS:
        for loss in LOSSES:
            runs = [
                row(pkt.run(job(spec, "ring", 1 << 20, s, loss=str(loss), min_rto=rto)))
                for s in range(args.seeds)
            ]
            t = np.array([r["time_s"] for r in runs])
            p50, p99 = np.percentile(t, 50), np.percentile(t, 99)
            trips = [x for x in TIMEOUTS if p99 > x]
            out.append(
                {
                    "min_rto": rto,
                    "loss_pct": loss,
                    "p50_s": p50,
                    "p99_s": p99,
                    "timeouts": int(sum(r["timeouts"] for r in runs)),
                    "retransmissions": int(sum(r["retransmissions"] for r in runs)),
                    "trips_comm_timeout": trips,
                }
            )
            print(
                f"min-rto {rto:>5}  loss {loss:5.2f} %  p50 {p50 * 1e3:9.3f} ms  p99 "
                f"{p99 * 1e3:9.3f} ms  RTOs {out[-1]['timeouts']:4d}  retx "
                f"{out[-1]['retransmissions']:5d}  trips --comm-timeout {trips or 'none'}",
                flush=True,
            )
    print(f"loadavg at end {os.getloadavg()}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for rto in RTOS:
        mine = [r for r in out if r["min_rto"] == rto]
        x = [max(r["loss_pct"], 0.003) for r in mine]
        ax.plot(x, [r["p50_s"] * 1e3 for r in mine], "o--", label=f"p50, min RTO {rto}")
        ax.plot(x, [r["p99_s"] * 1e3 for r in mine], "s-", label=f"p99, min RTO {rto}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("loss per link (%; 0 drawn at 0.003)")
    ax.set_ylabel("allreduce time (ms)")
    ax.set_title(f"ring 1 MiB, {args.hosts} hosts at 10G, cubic ({args.seeds} seeds)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMAGES / "packet-loss.png", dpi=110)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
