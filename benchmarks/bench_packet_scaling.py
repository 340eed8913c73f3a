"""How the packet engine's wall time grows with hosts and bytes (sets the refusal estimate).

Run:  python benchmarks/bench_packet_scaling.py [--hosts 4,8,16] [--bytes 4M,16M]
          [--tcp-timestamps on|off]

Ring allreduce on a flat 10G fabric, one rank per host. Prints per case the simulated
time, the wall time of the ns-3 run alone (not the 20 s import), the packet-hops it moved
(data segments x hops) and the wall seconds per packet-hop, which is what
``packet.WALL_PER_PACKET_HOP`` estimates with. Note the load average next to it. On a
shared machine compare the CPU seconds instead (``cpu``: this process's, over the whole
engine run, its Python set-up included), which other processes inflate far less.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from dist_logreg.sim import ns3driver
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.transports.tcp import Tcp
from dist_logreg.units import parse_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="4,8,16")
    ap.add_argument("--bytes", default="4M,16M")
    ap.add_argument("--algorithm", default="ring")
    ap.add_argument("--fabric", default="flat:hosts={h},rate=10G")
    ap.add_argument("--tcp-timestamps", default=None, choices=("on", "off"), help="TCP's option")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    t = time.perf_counter()
    ns3driver.load()
    print(
        f"ns-3 import + driver compile: {time.perf_counter() - t:.1f} s; loadavg {os.getloadavg()}"
    )
    eng, rows = get_engine("packet"), []
    for h in [int(x) for x in args.hosts.split(",")]:
        fab = parse_fabric(args.fabric.format(h=h))
        for nb in [parse_bytes(x) for x in args.bytes.split(",")]:
            opts = {"tcp_timestamps": args.tcp_timestamps} if args.tcp_timestamps else {}
            job = Job(fab, place(h, fab), args.algorithm, nb, options=opts)
            _, _, tr, g, est = eng.prepare(job)
            cpu = time.process_time()
            r = eng.run(job)
            cpu = time.process_time() - cpu
            seg = fab.mtu - Tcp(**opts).header_bytes
            hops = np.array([len(p) if p is not None else 2 for p in tr.conn_path])[tr.msg_conn]
            ph = float((np.ceil(g.nbytes / seg) * hops).sum())
            wall = r.extra["packet"]["wall_s"]
            row = {
                "hosts": h,
                "bytes": nb,
                "sim_s": r.time_s,
                "wall_s": wall,
                "packet_hops": ph,
                "wall_per_packet_hop_s": wall / ph,
                "cpu_s": cpu,
                "cpu_per_packet_hop_s": cpu / ph,
                "estimate_s": est,
                "loadavg": os.getloadavg()[0],
            }
            rows.append(row)
            print(
                f"hosts {h:3d} bytes {nb:>10d}  sim {r.time_s * 1e3:8.3f} ms  wall "
                f"{row['wall_s']:7.2f} s  packet-hops {ph:10.0f}  "
                f"{row['wall_per_packet_hop_s'] * 1e6:6.2f} us/packet-hop  "
                f"cpu {cpu * 1e6 / ph:6.2f} us/packet-hop  "
                f"estimate {est:7.2f} s  load {row['loadavg']:.2f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
