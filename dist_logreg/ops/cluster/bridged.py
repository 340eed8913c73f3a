"""The bridged topologies: ``flat`` (one bridge) and ``two-tier`` (leaf bridges, one spine).

Each host is a network namespace whose ``eth0`` is one end of a veth link; the other end,
``<name>-h<i>`` in the root namespace, is a port of a bridge. ``flat``: every host on the
bridge ``<name>-br``, which also holds the root namespace's address (``mpirun`` talks to
the launch agents through it). ``two-tier``: hosts under leaf bridges ``<name>-l<j>``,
each with one uplink (``<name>-l<j>u`` to ``<name>-l<j>s``) to the spine bridge
``<name>-br``, shaped to ``--uplink-rate``: an oversubscribed fabric without multipath.
"""

from __future__ import annotations

import ipaddress

from dist_logreg.ops.cluster.shaping import shape
from dist_logreg.ops.cluster.state import QUIET, Cluster, Link, in_ns, sh


def _root_dev(c: Cluster, dev: str, bridge: bool = False) -> None:
    """Record a root-namespace device before it is created (``down`` finds it by name)."""
    (c.bridges if bridge else c.root_links).append(dev)
    c.save()


def _bridge(c: Cluster, br: str) -> None:
    _root_dev(c, br, bridge=True)
    sh(["ip", "link", "add", br, "type", "bridge"])
    sh(["ip", "link", "set", br, "up"])


def build(c: Cluster) -> None:
    s, n = c.spec, c.spec.name
    net = ipaddress.ip_network(s.subnet)
    addrs = list(net.hosts())
    c.mpi_net = c.oob_net = str(net)
    spine = f"{n}-br"
    _bridge(c, spine)
    sh(["ip", "addr", "add", f"{addrs[-1]}/{net.prefixlen}", "dev", spine])
    attach = [(spine, "br")]
    if s.topology == "two-tier":
        attach = []
        for j in range(s.leaves):
            br, up_leaf, up_spine = f"{n}-l{j}", f"{n}-l{j}u", f"{n}-l{j}s"
            _bridge(c, br)
            _root_dev(c, up_leaf)
            c.links.append(Link(f"l{j}", "uplink", ["", up_leaf, f"l{j}"], ["", up_spine, "spine"]))
            sh(["ip", "link", "add", up_leaf, "type", "veth", "peer", "name", up_spine])
            sh(["ip", "link", "set", up_leaf, "master", br, "up"])
            sh(["ip", "link", "set", up_spine, "master", spine, "up"])
            for dev in (up_leaf, up_spine):  # both directions of the uplink
                shape("", dev, s.uplink_rate, c.burst, c.queue, mtu=s.mtu)
            attach.append((br, f"l{j}"))
    for h in range(s.hosts):
        ns = root_dev = f"{n}-h{h}"
        j = h * len(attach) // s.hosts
        c.hosts.append(ns)
        c.addresses[ns], c.leaf_of[ns] = str(addrs[h]), j
        _root_dev(c, root_dev)
        c.links.append(Link(f"h{h}", "host", [ns, "eth0", f"h{h}"], ["", root_dev, attach[j][1]]))
        sh(["ip", "netns", "add", ns])
        sh([*in_ns(ns), "sysctl", "-q", "-w", *QUIET])
        sh(["ip", "link", "add", root_dev, "type", "veth", "peer", "name", "eth0", "netns", ns])
        sh(["ip", "link", "set", root_dev, "master", attach[j][0], "up"])
        sh(["ip", "-n", ns, "addr", "add", f"{addrs[h]}/{net.prefixlen}", "dev", "eth0"])
        sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        shape(
            ns, "eth0", s.rate, c.burst, c.queue, s.delay_ms, nic=True, mtu=s.mtu
        )  # the host's egress
        shape(
            "", root_dev, s.rate, c.burst, c.queue, s.delay_ms, mtu=s.mtu
        )  # the switch port to it
