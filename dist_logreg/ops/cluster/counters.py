"""What crossed which link: counters before and after a job, and ``links.json``.

Per link and direction: the bytes and packets the sending end transmitted, the packets its
shaper dropped (``tbf`` queue full) and the packets the loss rule dropped at the receiving
end. Per host: the kernel's TCP counters (``/proc/net/snmp`` inside the namespace), so a
lossy fabric shows up as retransmitted segments.
"""

from __future__ import annotations

import json
import time

from dist_logreg.ops.cluster import nft
from dist_logreg.ops.cluster.state import Cluster, in_ns, sh

TCP_KEYS = ("OutSegs", "RetransSegs", "InSegs")


def _devices(ns: str) -> dict[str, dict]:
    """``{device: {"tx_bytes", "tx_packets", "rx_bytes", "rx_packets"}}`` in namespace ``ns``."""
    r = sh(["ip", *(["-n", ns] if ns else []), "-s", "-j", "link", "show"])
    out = {}
    for d in json.loads(r.stdout or "[]"):
        s = d.get("stats64", {})
        out[d["ifname"]] = {
            f"{way}_{what}": s.get(way, {}).get(what, 0)
            for way in ("tx", "rx")
            for what in ("bytes", "packets")
        }
    return out


def _shaper_drops(ns: str) -> dict[str, int]:
    r = sh([*in_ns(ns), "tc", "-s", "-j", "qdisc", "show"], check=False)
    drops: dict[str, int] = {}
    for q in json.loads(r.stdout or "[]"):
        if q.get("kind") in ("tbf", "netem"):
            drops[q["dev"]] = drops.get(q["dev"], 0) + q.get("drops", 0)
    return drops


def _tcp(host: str) -> dict[str, int]:
    """The ``Tcp:`` counters of ``/proc/net/snmp`` as seen inside namespace ``host``."""
    text = sh([*in_ns(host), "cat", "/proc/net/snmp"]).stdout.splitlines()
    rows = [line.split() for line in text if line.startswith("Tcp:")]
    values = dict(zip(rows[0][1:], rows[1][1:], strict=True))
    return {k: int(values[k]) for k in TCP_KEYS}


def snapshot(c: Cluster) -> dict:
    """Every counter of the cluster, at one moment (a few dozen ``ip``/``tc`` calls)."""
    spaces = sorted({end[0] for link in c.links for end in (link.a, link.b)})
    snap = {"time": time.monotonic(), "dev": {}, "shaper": {}, "loss": {}, "tcp": {}}
    for ns in spaces:
        snap["dev"][ns] = _devices(ns)
        snap["shaper"][ns] = _shaper_drops(ns)
        snap["loss"][ns] = nft.read_loss(c.name, ns) if c.nft else {}
    for host in c.hosts:
        snap["tcp"][host] = _tcp(host)
    return snap


def save_baseline(c: Cluster, snap: dict) -> None:
    """The counters at the end of the last job (or at ``up``/``set``), for ``cluster status``."""
    (c.state_dir / "counters.json").write_text(json.dumps(snap, default=list))


def load_baseline(c: Cluster) -> dict | None:
    path = c.state_dir / "counters.json"
    try:
        snap = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for ns, chains in snap.get("loss", {}).items():  # JSON turned the tuples into lists
        snap["loss"][ns] = {k: tuple(v) for k, v in chains.items()}
    return snap


def _delta(after: dict, before: dict, ns: str, dev: str, key: str) -> int:
    return after["dev"][ns].get(dev, {}).get(key, 0) - before["dev"][ns].get(dev, {}).get(key, 0)


def link_table(c: Cluster, before: dict, after: dict) -> list[dict]:
    """Per link: its class and, per direction ``"a>b"``, what crossed it during the job."""
    seconds = max(after["time"] - before["time"], 1e-9)
    rows = []
    for link in c.links:
        directions = {}
        for way, (name, (sns, sdev, _), (rns, rdev, _)) in zip(
            ("up", "down"), link.directions(), strict=True
        ):
            sent = _delta(after, before, sns, sdev, "tx_bytes")
            lost = [
                snap["loss"].get(rns, {}).get(nft.chain(rdev), (0, 0))[1]
                for snap in (after, before)
            ]
            shaped = [snap["shaper"].get(sns, {}).get(sdev, 0) for snap in (after, before)]
            directions[name] = {
                "way": way,
                "bytes": sent,
                "packets": _delta(after, before, sns, sdev, "tx_packets"),
                "shaper_drops": shaped[0] - shaped[1],
                "loss_drops": lost[0] - lost[1],
                "Gbps": sent * 8 / seconds / 1e9,
            }
        rows.append({"id": link.id, "class": link.cls, "directions": directions})
    return rows


def tcp_table(before: dict, after: dict) -> dict:
    """Per host and in total: TCP segments sent and retransmitted during the job."""
    per = {
        host: {k: after["tcp"][host][k] - before["tcp"][host][k] for k in TCP_KEYS}
        for host in after["tcp"]
    }
    total = {k: sum(v[k] for v in per.values()) for k in TCP_KEYS}
    total["retrans_pct"] = (
        100 * total["RetransSegs"] / total["OutSegs"] if total["OutSegs"] else 0.0
    )
    return {"hosts": per, "total": total}


def uplink_summary(c: Cluster, links: list[dict]) -> dict:
    """Balance of the uplinks: max/mean load and each spine's share of cross-leaf bytes."""
    loads = [
        d["bytes"] for row in links if row["class"] == "uplink" for d in row["directions"].values()
    ]
    out: dict = {"uplink_max_over_mean": None, "spine_share": {}}
    if not loads or not sum(loads):
        out["line"] = "uplinks: no cross-leaf traffic" if loads else "no uplinks (flat topology)"
        return out
    out["uplink_max_over_mean"] = max(loads) / (sum(loads) / len(loads))
    line = f"uplinks: max/mean load {out['uplink_max_over_mean']:.2f}"
    if c.spec.topology == "leaf-spine":
        into = {}  # bytes the leaves sent into each spine: every cross-leaf byte, once
        for row in links:
            if row["class"] == "uplink":
                spine = row["id"].split("-")[1]
                into[spine] = (
                    into.get(spine, 0)
                    + row["directions"][f"{row['id'].split('-')[0]}>{spine}"]["bytes"]
                )
        total = sum(into.values()) or 1
        out["spine_share"] = {k: v / total for k, v in sorted(into.items())}
        top = max(out["spine_share"], key=out["spine_share"].get)
        line += f"; spine {top} carried {100 * out['spine_share'][top]:.0f}% of cross-leaf bytes"
    out["line"] = line
    return out
