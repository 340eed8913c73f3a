"""Flow engine (--exact) against packet engine (ns-3) on the same jobs: the agreement table.

Run:  python benchmarks/bench_packet_agreement.py [--bytes 16M] [--small 1K,16K]

Bandwidth-bound: every algorithm at --bytes (16 MiB: at least 1 MiB per message on 16
ranks) on flat:hosts=16 and on leaf-spine 4 leaves x 2 spines x 4 hosts, 10G links, one
rank per host, 8 MiB port buffers (no drops: "queues large enough"), cubic, no loss,
the same ECMP paths (l4 hash, seed 0).
Latency-bound: the same at --small sizes; there the difference divided by the messages on
the critical path (the steps) is the packet engine's per-message TCP/IP cost.
Prints a markdown table; --json writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os

from dist_logreg.collective.algorithms import scheduled
from dist_logreg.sim import ns3driver
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job, job_phases
from dist_logreg.sim.placement import place
from dist_logreg.units import parse_bytes

FABRICS = {
    "flat 16": "flat:hosts=16,rate=10G",
    "leaf-spine 4x2x4": "leaf-spine:leaves=4,spines=2,hosts-per-leaf=4,rate=10G,uplink-rate=10G",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="16M")
    ap.add_argument("--small", default="1K,16K")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ns3driver.load()
    flow, pkt = get_engine("flow"), get_engine("packet")
    sizes = [parse_bytes(x) for x in [args.bytes, *args.small.split(",")]]
    rows = []
    print(f"loadavg {os.getloadavg()}")
    print(
        "| fabric | algorithm | bytes | flow exact | packet | packet/flow | "
        "per-message cost | wall |\n|---|---|---|---|---|---|---|---|"
    )
    for label, spec in FABRICS.items():
        fab = parse_fabric(spec)
        for alg in scheduled():
            for nb in sizes:
                host_of = place(fab.hosts, fab)
                job = Job(fab, host_of, alg, nb, exact=True, options={"queue": "8M"})
                f, p = flow.run(job), pkt.run(job)
                steps = sum(ph.repeat for ph in job_phases(job))
                per_msg = (p.time_s - f.time_s) / steps
                row = {
                    "fabric": label,
                    "algorithm": alg,
                    "bytes": nb,
                    "flow_s": f.time_s,
                    "packet_s": p.time_s,
                    "ratio": p.time_s / f.time_s,
                    "steps": steps,
                    "per_message_s": per_msg,
                    "wall_s": p.extra["packet"]["wall_s"],
                    "retransmissions": p.extra["packet"]["retransmissions"],
                    "drops": p.extra["packet"]["drops"],
                }
                rows.append(row)
                print(
                    f"| {label} | {alg} | {nb} | {f.time_s * 1e3:.3f} ms | "
                    f"{p.time_s * 1e3:.3f} ms | {row['ratio']:.3f} | {per_msg * 1e6:.1f} us | "
                    f"{row['wall_s']:.1f} s |",
                    flush=True,
                )
    print(f"loadavg {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
