"""``up`` (check, build, roll back on failure) and ``down`` (remove it all, also after a crash)."""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import threading

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import bridged, change, counters, leafspine, nft, slurm
from dist_logreg.ops.cluster.shaping import frame, netem_available
from dist_logreg.ops.cluster.state import (
    ALLOWED,
    HASHES,
    STATE_ROOT,
    TOPOLOGIES,
    Cluster,
    Spec,
    check_name,
    end_children,
    preflight,
    sh,
)
from dist_logreg.ops.cluster.validate import check_link_values, check_mtu, overlapping, tc_dry_run
from dist_logreg.units import rate_bits

AGENT = """#!/bin/sh
# Open MPI launch agent for emulated host $1 (a network namespace): used instead of ssh.
# unshare --uts gives the host its own hostname, so Open MPI sees one node per namespace.
ns="$1"; shift
exec ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$1"; shift; exec /bin/sh -c "$*"' \\
    sh "$ns" "$@"
"""


def link_ids(s: Spec) -> list[str]:
    """The names of the links ``up`` will build (``--loss-link`` takes them)."""
    ids = [f"h{h}" for h in range(s.hosts)]
    if s.topology == "two-tier":
        ids += [f"l{j}" for j in range(s.leaves)]
    elif s.topology == "leaf-spine":
        ids += [f"l{j}-s{k}" for j in range(s.leaves) for k in range(s.spines)]
    return ids


DELAY_REFUSED = (
    "--delay: this kernel has no netem (sch_netem), so the emulated fabric cannot delay "
    "packets; link delay is an option of the packet-level simulator (`dist-logreg simulate "
    '--engine packet`, see docs/emulated-fabric.md, "Delay"); --rate and --loss still work'
)

#: The most hosts one cluster has (each is a namespace and a few processes on one machine).
MOST_HOSTS = 200


def _check_hosts(hosts: int, net) -> None:
    """``hosts`` fit in ``net``: network, broadcast and the bridge's address are taken."""
    if not 1 <= hosts <= MOST_HOSTS:
        raise UsageError(f"--hosts: expected 1..{MOST_HOSTS}, got {hosts}")
    room = net.num_addresses - 3
    if hosts > room:
        prefix = 32 - (hosts + 3 - 1).bit_length()  # the longest prefix with room enough
        raise UsageError(
            f"--subnet: {net} has {net.num_addresses} addresses, room for "
            f"{max(room, 0)} hosts (network, broadcast and the bridge's own address are "
            f"taken); {hosts} hosts need a /{prefix} or larger"
        )


def check(s: Spec) -> list:
    """Every ``up`` argument, before anything is built; the shapers for ``tc_dry_run``."""
    check_name(s.name)
    try:
        net = ipaddress.ip_network(s.subnet, strict=False)
    except ValueError:
        raise UsageError(
            f"--subnet: expected an IPv4 network such as 198.18.0.0/24, got {s.subnet!r}"
        ) from None
    if not net.subnet_of(ALLOWED):
        raise UsageError(
            f"--subnet: expected a subnet of {ALLOWED} (reserved for network "
            f"benchmarking), got {s.subnet}"
        )
    s.subnet = str(net)
    if s.topology not in TOPOLOGIES:
        raise UsageError(f"--topology: expected one of {', '.join(TOPOLOGIES)}, got {s.topology!r}")
    _check_hosts(s.hosts, net)
    if s.topology != "flat" and not 2 <= s.leaves <= min(s.hosts, 64):
        raise UsageError(
            f"--leaves: expected 2..{min(s.hosts, 64)} (the number of hosts), got {s.leaves}"
        )
    if s.topology == "leaf-spine":
        if not 1 <= s.spines <= 64:
            raise UsageError(f"--spines: expected 1..64, got {s.spines}")
        leafspine.plan(s.subnet, s.leaves, s.hosts)
    if s.hash not in HASHES:
        raise UsageError(f"--hash: expected l3 or l4, got {s.hash!r}")
    if s.delay_ms is not None and s.delay_ms < 0:
        raise UsageError(f"--delay: expected milliseconds >= 0, got {s.delay_ms}")
    check_mtu(s.mtu)
    if s.topology == "two-tier" and s.uplink_rate is None:
        s.uplink_rate = f"{rate_bits(s.rate) / 2 / 1e6:g}mbit" if s.rate else "1gbit"
    if s.topology == "leaf-spine" and s.uplink_rate is None:
        s.uplink_rate = s.rate
    shapers = check_link_values(
        rates={"--rate": s.rate, "--uplink-rate": s.uplink_rate},
        loss_pct=s.loss_pct,
        loss_links=s.loss_links,
        link_ids=link_ids(s),
        burst=s.burst,
        queue=s.queue,
        mtu=s.mtu,
    )
    _need_nft(s)
    return shapers


def _need_nft(s: Spec) -> None:
    if s.topology == "leaf-spine":
        nft.need_nft("the leaf-spine flow map (per-flow counters in each spine)")
    if s.loss_pct or any(s.loss_links.values()):
        nft.need_nft("--loss without netem (an nftables drop rule)")


def up(s: Spec, say=print, calibrate=None) -> Cluster:
    """Build the cluster; on any failure (or Ctrl-C) remove what was built and re-raise.

    ``calibrate`` (a function of the built cluster) runs inside the same guard.
    """
    preflight()
    shapers = check(s)
    if (STATE_ROOT / s.name / "state.json").exists():
        raise UsageError(
            f"cluster {s.name!r} is already up: `dist-logreg cluster down --name {s.name}` first"
        )
    other = overlapping(s.name, s.subnet)
    if other:
        raise UsageError(
            f"--subnet {s.subnet}: overlaps cluster {other[0]!r} (subnet {other[1]}), which is "
            f"up: its routes would break; expected another subnet of {ALLOWED}, or "
            f"`dist-logreg cluster down --name {other[0]}` first"
        )
    tc_dry_run(shapers, frame(s.mtu))
    c = Cluster(s, burst=s.burst or 0, queue=s.queue or 0)
    previous = _on_sigterm(_interrupted)
    try:
        c.save()
        if s.delay_ms:
            probe = f"{s.name}-netem"
            sh(["ip", "netns", "add", probe])
            ok = netem_available(probe)
            sh(["ip", "netns", "del", probe])
            if not ok:
                raise UsageError(DELAY_REFUSED)
        say(f"dist-logreg cluster: building {s.name!r} ({s.hosts} hosts, {s.topology})")
        (leafspine if s.topology == "leaf-spine" else bridged).build(c)
        set_mtu(c)
        (c.state_dir / "agent").write_text(AGENT)
        (c.state_dir / "agent").chmod(0o755)
        (c.state_dir / "hostfile").write_text("".join(f"{ns}\n" for ns in c.hosts))
        c.save()
        lossy = bool(s.loss_pct or any(s.loss_links.values()))
        if calibrate:  # the clean fabric: loss would lower the ceiling runs are held against
            say(
                "dist-logreg cluster: calibrating"
                + (" the clean fabric, before the loss is applied" if lossy else "")
            )
            c.calibration = {**calibrate(c), "before_loss": lossy}
            c.save()
        if lossy:
            say("dist-logreg cluster: applying the loss rules")
        change.install_loss(c)
        c.save()
        if s.slurm:
            say("dist-logreg cluster: starting Slurm (a controller and one slurmd per host)")
            slurm.start(c, say=say)
        counters_baseline(c)
    except BaseException:
        end_children()
        say(f"dist-logreg cluster: setting up {s.name!r} failed; removing what was created")
        down(s.name, say=lambda *_: None)
        raise
    finally:
        _on_sigterm(previous)
    return c


def set_mtu(c: Cluster) -> None:
    """``--mtu`` on every interface of the cluster: veth ends in its namespaces, its links and
    bridges in the root namespace (the bridges last: a bridge takes its ports' smallest)."""
    if c.spec.mtu == 1500:  # the kernel's default for veth and bridges
        return
    mtu = str(c.spec.mtu)
    for ns in [*c.hosts, *c.routers]:
        devs = json.loads(sh(["ip", "-n", ns, "-j", "link", "show"]).stdout or "[]")
        for dev in (d["ifname"] for d in devs if d["ifname"] != "lo"):
            sh(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", mtu])
    for dev in [*c.root_links, *c.bridges]:
        sh(["ip", "link", "set", "dev", dev, "mtu", mtu])


def counters_baseline(c: Cluster) -> None:
    """Save every counter now: ``cluster status`` shows what changed since (the last job)."""
    counters.save_baseline(c, counters.snapshot(c))


def _interrupted(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _on_sigterm(handler):
    """Let ``kill`` roll back a half-built cluster as Ctrl-C does (main thread only)."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _leftovers(name: str) -> tuple[list[str], list[str], list[str]]:
    """Namespaces, links and bridges named ``<name>-...`` (found even without a state file)."""
    r = sh(["ip", "netns", "list"], check=False)
    spaces = [line.split()[0] for line in r.stdout.splitlines() if line.startswith(f"{name}-")]
    links = [x["ifname"] for x in json.loads(sh(["ip", "-j", "link", "show"]).stdout or "[]")]
    bridges = [
        x["ifname"]
        for x in json.loads(sh(["ip", "-j", "link", "show", "type", "bridge"]).stdout or "[]")
    ]
    mine = [x for x in links if x.startswith(f"{name}-")]
    return spaces, [x for x in mine if x not in bridges], [x for x in mine if x in bridges]


def down(name: str, say=print) -> int:
    """Remove everything of cluster ``name`` (only its own); safe to run twice or after a crash."""
    preflight()
    check_name(name)
    spaces, links, bridges = _leftovers(name)
    slurm.stop(name)  # every daemon it started, by the pids it recorded
    for dev in links:
        sh(["ip", "link", "del", dev], check=False)  # deletes the peer too
    for ns in spaces:
        sh(["ip", "netns", "del", ns], check=False)  # and every link inside
    for br in bridges:
        sh(["ip", "link", "del", br], check=False)
    if shutil.which("nft"):
        nft.delete_tables(name)  # flat and two-tier loss rules live in the root namespace
    state = STATE_ROOT / name
    if state.exists():
        shutil.rmtree(state)
    left = [x for group in _leftovers(name) for x in group]
    if left:
        raise UsageError(f"cluster down: could not remove {left}")
    hosts = sum(1 for ns in spaces if ns.startswith(f"{name}-h"))
    say(
        f"dist-logreg cluster: {name!r} is down ({hosts} hosts, {len(spaces)} namespaces, "
        f"{len(links) + len(bridges)} root links and bridges removed)"
    )
    return len(spaces)
