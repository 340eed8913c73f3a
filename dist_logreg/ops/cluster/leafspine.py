"""The routed leaf-spine fabric: hosts, leaf routers and spine routers, all namespaces.

::

    host h0 ─┐                ┌─ spine s0 ─┐                ┌─ host h2
             ├─ leaf l0 ──────┤            ├────── leaf l1 ─┤
    host h1 ─┘   (br0)        └─ spine s1 ─┘       (br0)    └─ host h3

Each host's ``eth0`` is a port of its leaf's bridge ``br0`` (the leaf's gateway address is
on the bridge); each leaf has a link ``s<k>`` to every spine; a leaf reaches another leaf's
hosts through one multipath route over all spines, hashed by
``net.ipv4.fib_multipath_hash_policy`` (``--hash l3``: addresses; ``l4``: the 5-tuple).
Spines know one route per leaf. The first half of ``--subnet`` holds the hosts (one equal
block per leaf), the second half a management network joined to the root namespace by a
bridge: ``mpirun`` and its launch agents talk over it, so only MPI's own traffic crosses
the fabric and its counters.
"""

from __future__ import annotations

import ipaddress

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import nft
from dist_logreg.ops.cluster.shaping import shape
from dist_logreg.ops.cluster.state import HASHES, P2P_NET, QUIET, Cluster, Link, in_ns, sh


def plan(subnet: str, leaves: int, hosts: int):
    """``(leaf blocks, fabric, management)`` networks for ``hosts`` hosts, ``leaves`` leaves."""
    net = ipaddress.ip_network(subnet)
    if net.prefixlen > 28:
        raise UsageError(f"--subnet: expected a /28 or larger for leaf-spine, got {subnet}")
    fabric, mgmt = net.subnets(1)
    bits = max(leaves - 1, 1).bit_length()
    if fabric.prefixlen + bits > 30:
        raise UsageError(f"--leaves: {leaves} leaves do not fit in {subnet}; use a larger --subnet")
    blocks = list(fabric.subnets(bits))[:leaves]
    most, room = -(-hosts // leaves), blocks[0].num_addresses - 3
    if most > room or hosts > mgmt.num_addresses - 3:
        raise UsageError(
            f"--hosts: {hosts} hosts ({most} per leaf) do not fit in {subnet} with {leaves} "
            f"leaves (at most {room} per leaf); use a larger --subnet"
        )
    return blocks, fabric, mgmt


def _p2p(leaf: int, spine: int, spines: int) -> tuple[str, str]:
    base = P2P_NET.network_address + 2 * (leaf * spines + spine)
    return str(base), str(base + 1)  # leaf side, spine side


def _namespace(c: Cluster, ns: str, router: bool) -> None:
    (c.routers if router else c.hosts).append(ns)
    c.save()
    sh(["ip", "netns", "add", ns])
    sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    sysctls = [*QUIET, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
    if router:
        sysctls.append("net.ipv4.ip_forward=1")
    sh([*in_ns(ns), "sysctl", "-q", "-w", *sysctls])
    if not router:
        # A leaf hashes a forwarded TCP packet by the hash its sending socket attached (it
        # survives the veth): random per connection, like a 5-tuple hash with fresh ports.
        # TCP draws a new one after a retransmission timeout, which would move the flow to
        # another spine; an IPv4 switch hashing headers never does that, so neither do we.
        sh([*in_ns(ns), "sysctl", "-q", "-w", "net.core.txrehash=0"], check=False)


def _veth(c: Cluster, link: Link, rate: str | None, delay_ms=None) -> None:
    """Create one cable between two namespaces, both ends shaped to ``rate``."""
    (ans, adev, _), (bns, bdev, _) = link.a, link.b
    c.links.append(link)
    c.save()
    sh(["ip", "-n", ans, "link", "add", adev, "type", "veth", "peer", "name", bdev, "netns", bns])
    for ns, dev in ((ans, adev), (bns, bdev)):
        nic = link.cls == "host" and dev == "eth0"
        shape(ns, dev, rate, c.burst, c.queue, delay_ms, nic=nic, mtu=c.spec.mtu)


def set_hash(c: Cluster, policy: str, seed: int | None = None) -> None:
    """ECMP hashing on every leaf: ``l3`` or ``l4``, and optionally a new hash seed.

    A new seed (``net.ipv4.fib_multipath_hash_seed``) moves flows as a different switch
    would: with ``l3`` it is the only way the same hosts get a different path.
    """
    c.spec.hash = policy
    c.save()
    for leaf in c.routers:
        if leaf.startswith(f"{c.name}-l"):
            args = [f"net.ipv4.fib_multipath_hash_policy={HASHES[policy]}"]
            if seed is not None:
                args.append(f"net.ipv4.fib_multipath_hash_seed={seed}")
            sh([*in_ns(leaf), "sysctl", "-q", "-w", *args])


def build(c: Cluster) -> None:
    s, n = c.spec, c.spec.name
    blocks, fabric, mgmt = plan(s.subnet, s.leaves, s.hosts)
    c.mpi_net, c.oob_net = str(fabric), str(mgmt)
    spines = [f"{n}-s{k}" for k in range(s.spines)]
    leaves = [f"{n}-l{j}" for j in range(s.leaves)]
    for ns in spines + leaves:
        _namespace(c, ns, router=True)
    for j, leaf in enumerate(leaves):
        gw = f"{blocks[j][-2]}/{blocks[j].prefixlen}"
        sh(["ip", "-n", leaf, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", leaf, "addr", "add", gw, "dev", "br0"])
        sh(["ip", "-n", leaf, "link", "set", "br0", "up"])
    mg = f"{n}-mg"
    c.bridges.append(mg)
    c.save()
    sh(["ip", "link", "add", mg, "type", "bridge"])
    sh(["ip", "addr", "add", f"{mgmt[-2]}/{mgmt.prefixlen}", "dev", mg])
    sh(["ip", "link", "set", mg, "up"])
    per_leaf = [0] * s.leaves
    for h in range(s.hosts):
        host, j = f"{n}-h{h}", h * s.leaves // s.hosts
        per_leaf[j] += 1
        addr = blocks[j][per_leaf[j]]
        _namespace(c, host, router=False)
        c.addresses[host], c.leaf_of[host] = str(addr), j
        _veth(
            c,
            Link(f"h{h}", "host", [host, "eth0", f"h{h}"], [leaves[j], f"h{h}", f"l{j}"]),
            s.rate,
            s.delay_ms,
        )
        sh(["ip", "-n", leaves[j], "link", "set", f"h{h}", "master", "br0", "up"])
        sh(["ip", "-n", host, "addr", "add", f"{addr}/{blocks[j].prefixlen}", "dev", "eth0"])
        sh(["ip", "-n", host, "link", "set", "eth0", "up"])
        sh(["ip", "-n", host, "route", "add", "default", "via", str(blocks[j][-2])])
        root_dev = f"{n}-m{h}"  # the management link
        c.root_links.append(root_dev)
        c.save()
        sh(["ip", "link", "add", root_dev, "type", "veth", "peer", "name", "mg0", "netns", host])
        sh(["ip", "link", "set", root_dev, "master", mg, "up"])
        sh(["ip", "-n", host, "addr", "add", f"{mgmt[h + 1]}/{mgmt.prefixlen}", "dev", "mg0"])
        sh(["ip", "-n", host, "link", "set", "mg0", "up"])
    for j, leaf in enumerate(leaves):
        for k, spine in enumerate(spines):
            link = Link(f"l{j}-s{k}", "uplink", [leaf, f"s{k}", f"l{j}"], [spine, f"l{j}", f"s{k}"])
            _veth(c, link, s.uplink_rate)
            mine, theirs = _p2p(j, k, s.spines)
            sh(["ip", "-n", leaf, "addr", "add", f"{mine}/31", "dev", f"s{k}"])
            sh(["ip", "-n", spine, "addr", "add", f"{theirs}/31", "dev", f"l{j}"])
            sh(["ip", "-n", leaf, "link", "set", f"s{k}", "up"])
            sh(["ip", "-n", spine, "link", "set", f"l{j}", "up"])
            sh(["ip", "-n", spine, "route", "add", str(blocks[j]), "via", mine, "dev", f"l{j}"])
    for j, leaf in enumerate(leaves):
        for j2 in range(s.leaves):
            if j2 != j:
                hops = []
                for k in range(s.spines):
                    hops += ["nexthop", "via", _p2p(j, k, s.spines)[1], "dev", f"s{k}"]
                sh(["ip", "-n", leaf, "route", "add", str(blocks[j2]), *hops])
    set_hash(c, s.hash)
    # What really crossed each spine, and what each host sent, per TCP 5-tuple.
    for spine in spines:
        nft.apply(spine, nft.flow_rules(n, "forward"))
    for host in c.hosts:
        nft.apply(host, nft.flow_rules(n, "output", "eth0"))
    c.nft = True
