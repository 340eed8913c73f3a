"""nftables inside the cluster: random loss per link, and per-flow byte counters.

Loss: this kernel has no ``netem``, so a link drops packets with ``numgen random`` in a
``netdev`` ingress chain on the receiving end of each direction (one chain per device,
with a counter). Flows: a dynamic set keyed by the TCP 5-tuple with a counter per element,
updated in each spine's forward hook (what really crossed that spine) and in each host's
output hook (what the host sent). Tables are named ``dlr_<cluster>``, so in the root
namespace (flat and two-tier links) they never touch another cluster's.
"""

from __future__ import annotations

import json

from dist_logreg.ops.cluster.state import in_ns, need_tool, sh

#: Loss resolution: parts per million.
PPM = 1_000_000
FLOW_KEY = "ip saddr . ip daddr . tcp sport . tcp dport"
FLOW_SET = (
    "  set flows {\n"
    "    type ipv4_addr . ipv4_addr . inet_service . inet_service\n"
    "    flags dynamic; counter; size 65536;\n"
    "  }\n"
)


def need_nft(why: str) -> str:
    return need_tool("nft", "nftables", why)


def table(cluster: str) -> str:
    return f"dlr_{cluster}"


def chain(dev: str) -> str:
    """The loss chain of device ``dev``."""
    return "in_" + dev.replace("-", "_")


def loss_rules(cluster: str, devices: dict[str, float]) -> str:
    """A ``netdev`` table dropping ``pct`` percent of what arrives on each device."""
    chains = []
    for dev, pct in sorted(devices.items()):
        chains.append(
            f"  chain {chain(dev)} {{\n"
            f'    type filter hook ingress device "{dev}" priority 0; policy accept;\n'
            f"    numgen random mod {PPM} < {round(pct / 100 * PPM)} counter drop\n"
            "  }\n"
        )
    return f"table netdev {table(cluster)} {{\n{''.join(chains)}}}\n"


def flow_rules(cluster: str, hook: str, oifname: str | None = None) -> str:
    """An ``inet`` table counting bytes per TCP 5-tuple at ``hook`` (forward or output)."""
    match = f'oifname "{oifname}" ' if oifname else ""
    return (
        f"table inet {table(cluster)} {{\n{FLOW_SET}"
        f"  chain count {{\n    type filter hook {hook} priority 0; policy accept;\n"
        f"    {match}meta l4proto tcp update @flows {{ {FLOW_KEY} }}\n  }}\n}}\n"
    )


def apply(ns: str, text: str) -> None:
    sh([*in_ns(ns), "nft", "-f", "-"], stdin=text)


def delete_tables(cluster: str, ns: str = "", families=("netdev", "inet")) -> None:
    """Remove this cluster's tables from namespace ``ns`` (the root one by default)."""
    for family in families:
        sh([*in_ns(ns), "nft", "delete", "table", family, table(cluster)], check=False)


def flush_flows(cluster: str, ns: str) -> None:
    sh([*in_ns(ns), "nft", "flush", "set", "inet", table(cluster), "flows"])


def read_flows(cluster: str, ns: str) -> dict[tuple[str, str, int, int], tuple[int, int]]:
    """``{(src, dst, sport, dport): (bytes, packets)}`` counted in namespace ``ns``."""
    r = sh([*in_ns(ns), "nft", "-j", "list", "set", "inet", table(cluster), "flows"])
    out = {}
    for item in json.loads(r.stdout)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            e = elem.get("elem", elem)
            src, dst, sport, dport = e["val"]["concat"]
            counter = e.get("counter", {"bytes": 0, "packets": 0})
            out[(src, dst, int(sport), int(dport))] = (counter["bytes"], counter["packets"])
    return out


def read_loss(cluster: str, ns: str) -> dict[str, tuple[int, int]]:
    """``{chain: (dropped bytes, dropped packets)}`` from the loss chains of ``ns``.

    Chains are named after their device (:func:`chain`): nft 1.0's JSON omits the device.
    """
    r = sh([*in_ns(ns), "nft", "-j", "list", "table", "netdev", table(cluster)], check=False)
    counts = {}
    for item in json.loads(r.stdout or '{"nftables": []}')["nftables"] if r.returncode == 0 else []:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                counter = expr["counter"]
                counts[item["rule"]["chain"]] = (counter["bytes"], counter["packets"])
    return counts
