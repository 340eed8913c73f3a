"""``cluster status``: what is up, its addresses, link shaping and calibration, as text."""

from __future__ import annotations

from dist_logreg.ops.cluster import counters, slurm
from dist_logreg.ops.cluster.shaping import default_burst, default_queue
from dist_logreg.ops.cluster.state import Cluster, in_ns, load, sh


def describe(c: Cluster) -> str:
    """One line: topology, rates, shaping, loss, hashing."""
    s = c.spec
    parts = [f"cluster {c.name}: {s.hosts} hosts, {s.topology}"]
    if s.topology == "leaf-spine":
        parts[0] += f" ({s.leaves} leaves x {s.spines} spines, --hash {s.hash})"
    parts.append(f"subnet {s.subnet}")
    parts.append(f"mtu {s.mtu}")
    parts.append(f"rate {s.rate or 'unshaped'}")
    if s.topology != "flat":
        parts.append(f"uplinks {s.uplink_rate or 'unshaped'}")
    if s.rate or s.uplink_rate:
        rate = s.rate or s.uplink_rate
        burst, queue = c.burst or default_burst(rate, c.spec.mtu), c.queue or default_queue(rate)
        parts.append(f"burst {burst:,} B, switch queues {queue:,} B")
    if s.delay_ms:
        parts.append(f"delay {s.delay_ms} ms")
    if s.loss_pct:
        parts.append(f"loss {s.loss_pct}% per link and direction")
    if s.loss_links:
        parts.append("loss " + ", ".join(f"{k} {v}%" for k, v in sorted(s.loss_links.items())))
    return ", ".join(parts)


def status(name: str) -> str:
    """Hosts, addresses, routers, calibration and the queueing disciplines, as text."""
    c = load(name)
    lines = [describe(c)]
    for ns in c.hosts:
        alive = sh([*in_ns(ns), "true"], check=False).returncode == 0
        leaf = f" leaf {c.leaf_of[ns]}" if c.spec.topology != "flat" else ""
        lines.append(f"  {ns:<14} {c.addresses[ns]:<15}{leaf} {'up' if alive else 'MISSING'}")
    for ns in c.routers:
        alive = sh([*in_ns(ns), "true"], check=False).returncode == 0
        lines.append(f"  {ns:<14} {'router':<15} {'up' if alive else 'MISSING'}")
    for cls, cal in sorted(c.calibration.get("classes", {}).items()):
        lines.append(
            f"  calibrated {cls:<7} one-way {cal['one_way_Gbps']:.3f} Gbit/s, "
            f"bidirectional {cal['bidir_Gbps']:.3f} Gbit/s per direction "
            f"({c.calibration['tool']}, {cal['between']})"
        )
    if c.spec.slurm:
        lines.append(slurm.status_line(c))
    for change in c.changes:
        lines.append(f"  changed {change['utc']}: {change['what']}")
    lines += live_lines(c)
    for ns in ["", *c.routers, *(c.hosts if c.spec.topology == "leaf-spine" else [])]:
        qd = sh([*in_ns(ns), "tc", "qdisc", "show"], check=False).stdout
        where = f"[{ns}] " if ns else ""
        for line in qd.splitlines():
            if (" tbf " in line or " netem " in line) and (ns or f"{c.name}-" in line):
                lines.append(f"  tc {where}{line}")
    return "\n".join(lines)


def live_lines(c: Cluster) -> list[str]:
    """Per link and direction: bytes and drops since the last job (or ``up``/``set``)."""
    before = counters.load_baseline(c)
    if before is None:
        return ["  counters        no baseline saved (a cluster from an older version)"]
    rows = counters.link_table(c, before, counters.snapshot(c))
    out = [
        "  counters since the last job (bytes sent; shaper drops: queue full; loss drops: "
        "the loss rule):"
    ]
    for row in rows:
        parts = [
            f"{name} {d['bytes']:,} B, {d['shaper_drops']:,} + {d['loss_drops']:,} dropped"
            for name, d in row["directions"].items()
        ]
        out.append(f"    {row['id']:<7} {row['class']:<6} " + "; ".join(parts))
    return out
