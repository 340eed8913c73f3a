"""The flow map of a leaf-spine fabric: which spine each TCP flow really took.

Each spine counts the bytes of every TCP 5-tuple it forwards, and each host the bytes of
every 5-tuple it sends (``nft`` dynamic sets, flushed before a job). A flow's spine is the
one that saw it: measured where the packets go, not predicted from a hash (``ip route get``
with the flow's ports disagreed with the real path for 3 of 4 flows here). A flow is one
direction of a TCP connection; the two directions of one connection are hashed apart.
"""

from __future__ import annotations

from dist_logreg.ops.cluster import nft
from dist_logreg.ops.cluster.state import Cluster

#: An elephant carries at least this share of the largest flow's bytes, and ELEPHANT_MIN.
ELEPHANT_SHARE = 0.1
ELEPHANT_MIN = 64 * 1024


def short(c: Cluster, ns: str) -> str:
    return ns[len(c.name) + 1 :]


def reset(c: Cluster) -> None:
    """Forget the flows counted so far (before a job)."""
    for ns in c.hosts + spines(c):
        nft.flush_flows(c.name, ns)


def spines(c: Cluster) -> list[str]:
    return [ns for ns in c.routers if ns.startswith(f"{c.name}-s")]


def read(c: Cluster) -> tuple[dict, dict]:
    """``(sent per host, forwarded per spine)``: ``{ns: {5-tuple: (bytes, packets)}}``."""
    return (
        {h: nft.read_flows(c.name, h) for h in c.hosts},
        {s: nft.read_flows(c.name, s) for s in spines(c)},
    )


def ranks(host_index: int, per_host: int) -> list[int]:
    return list(range(host_index * per_host, (host_index + 1) * per_host))


def flow_map(c: Cluster, sent: dict, forwarded: dict, per_host: int) -> list[dict]:
    """One record per TCP flow between hosts, largest first."""
    host_of = {addr: ns for ns, addr in c.addresses.items()}
    flows = []
    for ns, table in sent.items():
        for (src, dst, sport, dport), (nbytes, packets) in table.items():
            if dst not in host_of:
                continue
            a, b = short(c, ns), short(c, host_of[dst])
            seen = {
                short(c, s): f[(src, dst, sport, dport)][0]
                for s, f in forwarded.items()
                if (src, dst, sport, dport) in f
            }
            same = c.leaf_of[ns] == c.leaf_of[host_of[dst]]
            flows.append(
                {
                    "src": a,
                    "dst": b,
                    "sport": sport,
                    "dport": dport,
                    "src_ranks": ranks(int(a[1:]), per_host),
                    "dst_ranks": ranks(int(b[1:]), per_host),
                    "src_leaf": f"l{c.leaf_of[ns]}",
                    "dst_leaf": f"l{c.leaf_of[host_of[dst]]}",
                    "bytes": nbytes,
                    "packets": packets,
                    "spine_bytes": seen,
                    "spine": None if same else (max(seen, key=seen.get) if seen else "unseen"),
                }
            )
    flows.sort(key=lambda f: (-f["bytes"], f["src"], f["dst"], f["sport"]))
    biggest = flows[0]["bytes"] if flows else 0
    for f in flows:
        f["elephant"] = f["bytes"] >= max(ELEPHANT_MIN, ELEPHANT_SHARE * biggest)
    return flows


def pairs(flows: list[dict]) -> list[dict]:
    """Per host pair: what the source host sent and what each spine forwarded of it."""
    out: dict[tuple[str, str], dict] = {}
    for f in flows:
        p = out.setdefault(
            (f["src"], f["dst"]),
            {
                "src": f["src"],
                "dst": f["dst"],
                "same_leaf": f["spine"] is None,
                "sent_bytes": 0,
                "spine_bytes": {},
            },
        )
        p["sent_bytes"] += f["bytes"]
        for s, n in f["spine_bytes"].items():
            p["spine_bytes"][s] = p["spine_bytes"].get(s, 0) + n
    return sorted(out.values(), key=lambda p: (p["src"], p["dst"]))


def _ranks(r: list[int]) -> str:
    return str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}"


def table(flows: list[dict], most: int = 16) -> list[str]:
    """The flow map as text: rank pair, ports, bytes, spine (largest flows first)."""
    lines = [f"  {'ranks':<9} {'hosts':<9} {'ports':<13} {'bytes':>12}  spine"]
    for f in flows[:most]:
        lines.append(
            f"  {_ranks(f['src_ranks']) + '>' + _ranks(f['dst_ranks']):<9} "
            f"{f['src'] + '>' + f['dst']:<9} {str(f['sport']) + '>' + str(f['dport']):<13} "
            f"{f['bytes']:>12,}  {f['spine'] or '(same leaf)'}"
            + ("  elephant" if f["elephant"] else "")
        )
    if len(flows) > most:
        lines.append(f"  ... {len(flows) - most} smaller flows in flows.json")
    return lines
