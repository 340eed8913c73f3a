"""Tie drops and retransmissions to flows, name collisions, and say it in one line each.

Per flow: the links it crossed (its hosts' links and, across leaves, the two uplinks of the
spine it took), which of them were lossy, and its retransmissions (the sender's
``ss -tin`` counters, :mod:`dist_logreg.ops.cluster.tcpinfo`). Per leaf and direction:
the uplink load imbalance (max/mean bytes over its uplinks) and collisions: an uplink
carrying elephants of two or more host pairs while a sibling uplink of the same leaf and
direction carries at most half its bytes.
"""

from __future__ import annotations

from dist_logreg.ops.cluster.state import Cluster

#: A sibling uplink carrying at most this share of a loaded uplink's bytes makes a collision.
SIBLING_SHARE = 0.5


def crossed(c: Cluster, src: str, dst: str, spine: str | None) -> list[str]:
    """Link ids a flow from host ``src`` to ``dst`` (short names, ``h0``) crossed."""
    a, b = c.leaf_of[f"{c.name}-{src}"], c.leaf_of[f"{c.name}-{dst}"]
    middle: list[str] = []
    if a != b and c.spec.topology == "two-tier":
        middle = [f"l{a}", f"l{b}"]
    elif a != b and c.spec.topology == "leaf-spine" and spine and spine != "unseen":
        middle = [f"l{a}-{spine}", f"l{b}-{spine}"]
    return [src, *middle, dst]


def loss_of(c: Cluster, link_id: str) -> float:
    return c.spec.loss_links.get(link_id, c.spec.loss_pct) or 0.0


def annotate(c: Cluster, flows: list[dict], tcp: dict | None) -> None:
    """Add ``links``, ``lossy_links`` and ``retransmits`` (None: not sampled) to each flow."""
    by_addr = {short: c.addresses[f"{c.name}-{short}"] for short in _shorts(c)}
    for f in flows:
        f["links"] = crossed(c, f["src"], f["dst"], f.get("spine"))
        f["lossy_links"] = {k: loss_of(c, k) for k in f["links"] if loss_of(c, k)}
        key = (by_addr[f["src"]], by_addr[f["dst"]], f["sport"], f["dport"])
        f["retransmits"] = None if tcp is None else tcp.get(key, {}).get("retransmits", 0)


def connections(c: Cluster, tcp: dict) -> list[dict]:
    """Flows as ``ss`` saw them (no flow map: flat and two-tier), between cluster hosts."""
    host_of = {addr: ns[len(c.name) + 1 :] for ns, addr in c.addresses.items()}
    out = []
    for (src, dst, sport, dport), v in sorted(tcp.items()):
        if src in host_of and dst in host_of:
            out.append(
                {
                    "src": host_of[src],
                    "dst": host_of[dst],
                    "sport": sport,
                    "dport": dport,
                    "bytes": v["bytes_sent"],
                    "spine": None,
                }
            )
    annotate(c, out, tcp)
    return out


def _shorts(c: Cluster) -> list[str]:
    return [h[len(c.name) + 1 :] for h in c.hosts]


def uplink_loads(c: Cluster, flows: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    """``{(leaf, ">" or "<"): {spine: bytes}}`` of the cross-leaf flows, per direction."""
    spines = [f"s{k}" for k in range(c.spec.spines)]
    loads = {(f"l{j}", w): dict.fromkeys(spines, 0) for j in range(c.spec.leaves) for w in "><"}
    for f in flows:
        if f.get("spine") in spines:
            loads[(f["src_leaf"], ">")][f["spine"]] += f["bytes"]
            loads[(f["dst_leaf"], "<")][f["spine"]] += f["bytes"]
    return loads


def _link(leaf: str, way: str, spine: str) -> str:
    return f"{leaf}>{spine}" if way == ">" else f"{spine}>{leaf}"


def imbalance(c: Cluster, flows: list[dict]) -> dict[str, float | None]:
    """Per leaf and direction (``l0>``: leaving l0, ``l0<``: entering): max/mean uplink load."""
    out = {}
    for (leaf, way), by in uplink_loads(c, flows).items():
        total = sum(by.values())
        out[f"{leaf}{way}"] = max(by.values()) / (total / len(by)) if total else None
    return out


def collisions(c: Cluster, flows: list[dict]) -> list[dict]:
    """Uplinks with elephants of two or more host pairs while a sibling carries <= half."""
    found = []
    loads = uplink_loads(c, flows)
    for (leaf, way), by in loads.items():
        side = "src_leaf" if way == ">" else "dst_leaf"
        for spine, nbytes in by.items():
            fl = [f for f in flows if f["elephant"] and f[side] == leaf and f["spine"] == spine]
            light = [s for s, b in by.items() if s != spine and b <= SIBLING_SHARE * nbytes]
            if len({(f["src"], f["dst"]) for f in fl}) >= 2 and light:
                found.append(
                    {
                        "link": _link(leaf, way, spine),
                        "elephants": len(fl),
                        "bytes": nbytes,
                        "siblings": {_link(leaf, way, s): by[s] for s in light},
                        "idle": [_link(leaf, way, s) for s in light if by[s] == 0],
                        "flows": [f"{f['src']}:{f['sport']}>{f['dst']}:{f['dport']}" for f in fl],
                    }
                )
    return found


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def loss_lines(flows: list[dict], latency: dict | None, most: int = 8) -> list[str]:
    """``h0>h3 crossed l0-s1 (1% loss): 54 retransmissions, p99 +184 ms`` per lossy flow.

    ``p99 +X``: the job's allreduce p99 latency above its median (the tail loss adds).
    """
    tail = ""
    if latency and latency.get("p99") is not None and latency.get("p50") is not None:
        tail = f", p99 +{_ms(latency['p99'] - latency['p50'])}"
    lossy = [f for f in flows if f.get("lossy_links")]
    lossy.sort(key=lambda f: -(f.get("retransmits") or 0))
    lines = []
    for f in lossy[:most]:
        where = ", ".join(f"{k} ({v:g}% loss)" for k, v in f["lossy_links"].items())
        n = f["retransmits"]
        rt = (
            "retransmissions not sampled"
            if n is None
            else (f"{n} retransmission{'' if n == 1 else 's'}")
        )
        lines.append(f"  loss            {f['src']}>{f['dst']} crossed {where}: {rt}{tail}")
    if len(lossy) > most:
        lines.append(f"  ... {len(lossy) - most} more lossy flows in flows.json")
    return lines


def collision_lines(found: list[dict], imbalance_by: dict[str, float | None]) -> list[str]:
    lines = []
    for leaf_way, ratio in sorted(imbalance_by.items()):
        if ratio is not None:
            lines.append(f"  imbalance       {leaf_way} uplinks max/mean {ratio:.2f}")
    for col in found:
        sib = ", ".join(f"{k} {v:,} B" for k, v in col["siblings"].items())
        lines.append(
            f"  collision       {col['link']} carried {col['elephants']} elephant flows "
            f"({', '.join(col['flows'])}; {col['bytes']:,} B) while {sib}"
        )
    return lines
