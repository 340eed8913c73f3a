"""``dist-logreg cluster``: an emulated multi-host network on one Linux machine.

Each emulated host is a network namespace joined by a veth link to a bridge, with an
address in 198.18.0.0/15 (the range reserved for network benchmarking). Links can be shaped
with ``tc`` (rate with ``tbf``; delay and loss with ``netem`` where the kernel has it). In the
``two-tier`` topology, hosts hang under leaf bridges whose uplinks to a spine bridge are
shaped slower than the host links: an oversubscribed fabric, where cross-leaf traffic costs
more.

``mpirun`` runs in the root namespace and starts ranks inside the hosts through a launch
agent (instead of ssh) that runs its command with ``ip netns exec HOST unshare --uts`` and
gives each host its own hostname, so Open MPI sees distinct nodes. MPI's TCP traffic and
PRRTE's control traffic are pinned to the emulated subnet.

Everything created is recorded in a state directory (``/run/dist-logreg/<name>``) before it
is created, so ``down`` removes it all, also after a crash; ``up`` rolls back on any failure
or Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.units import rate_bits

STATE_ROOT = Path(os.environ.get("DIST_LOGREG_CLUSTER_STATE", "/run/dist-logreg"))
ALLOWED = ipaddress.ip_network("198.18.0.0/15")
AGENT = """#!/bin/sh
# Open MPI launch agent for emulated host $1 (a network namespace): used instead of ssh.
# unshare --uts gives the host its own hostname, so Open MPI sees one node per namespace.
ns="$1"; shift
exec ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$1"; shift; exec /bin/sh -c "$*"' \\
    sh "$ns" "$@"
"""


@dataclass
class Cluster:
    """What ``up`` built (saved as ``state.json``); ``links`` are root-side interface names."""

    name: str
    hosts: int
    subnet: str
    topology: str = "flat"
    rate: str | None = None
    uplink_rate: str | None = None
    delay_ms: float | None = None
    loss_pct: float | None = None
    namespaces: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)
    leaf_of: dict[str, int] = field(default_factory=dict)
    gateway: str = ""

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "state.json").write_text(json.dumps(asdict(self), indent=2))


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise UsageError(f"`{' '.join(args)}` failed: {(r.stderr or r.stdout).strip()}")
    return r


def preflight() -> None:
    """Root, and the tools; a clear message when something is missing."""
    if os.geteuid() != 0:
        raise UsageError("cluster: expected to run as root (network namespaces, veth links, tc)")
    for tool in ("ip", "tc", "unshare"):
        if shutil.which(tool) is None:
            raise UsageError(f"cluster: expected the `{tool}` command (iproute2 / util-linux)")


def netem_available(namespace: str) -> bool:
    """Try a netem qdisc on the loopback of ``namespace`` (removed again)."""
    r = _run(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
        ],
        check=False,
    )
    if r.returncode == 0:
        _run(
            ["ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", "lo", "root"],
            check=False,
        )
    return r.returncode == 0


def _shape(
    where: list[str], dev: str, rate: str | None, delay_ms: float | None, loss_pct: float | None
) -> None:
    """Shape the egress of ``dev`` (in the namespace ``where`` enters): netem above tbf."""
    parent = ["root"]
    if delay_ms or loss_pct:
        netem = ["netem"]
        if delay_ms:
            netem += ["delay", f"{delay_ms}ms"]
        if loss_pct:
            netem += ["loss", f"{loss_pct}%"]
        _run([*where, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", *netem])
        parent = ["parent", "1:"]
    if rate:
        # burst: about 10 ms of traffic (at least 32 KiB) keeps tbf accurate at high rates.
        burst = max(32 * 1024, int(rate_bits(rate) / 8 / 100))
        _run(
            [
                *where,
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                *parent,
                "handle",
                "2:",
                "tbf",
                "rate",
                rate,
                "burst",
                str(burst),
                "latency",
                "50ms",
            ]
        )


def up(
    name: str,
    hosts: int,
    subnet: str,
    topology: str,
    rate: str | None,
    uplink_rate: str | None,
    delay_ms: float | None,
    loss_pct: float | None,
    leaves: int = 2,
    say=print,
) -> Cluster:
    """Build the cluster; on any failure (or Ctrl-C) remove what was built and re-raise."""
    preflight()
    net = ipaddress.ip_network(subnet, strict=False)
    if not net.subnet_of(ALLOWED):
        raise UsageError(
            f"--subnet: expected a subnet of {ALLOWED} (reserved for network "
            f"benchmarking), got {subnet}"
        )
    if not 1 <= hosts <= min(net.num_addresses - 3, 200):
        raise UsageError(f"--hosts: expected 1..{min(net.num_addresses - 3, 200)}, got {hosts}")
    if delay_ms is not None and delay_ms < 0:
        raise UsageError(f"--delay: expected milliseconds >= 0, got {delay_ms}")
    if loss_pct is not None and not 0 <= loss_pct <= 100:
        raise UsageError(f"--loss: expected a percentage in [0, 100], got {loss_pct}")
    if topology not in ("flat", "two-tier"):
        raise UsageError(f"--topology: expected flat or two-tier, got {topology!r}")
    if topology == "two-tier" and not 2 <= leaves <= hosts:
        raise UsageError(f"--leaves: expected 2..{hosts} (the number of hosts), got {leaves}")
    if (STATE_ROOT / name / "state.json").exists():
        raise UsageError(
            f"cluster {name!r} is already up: `dist-logreg cluster down --name {name}` first"
        )
    if topology == "two-tier" and uplink_rate is None:
        uplink_rate = f"{rate_bits(rate) / 2 / 1e6:g}mbit" if rate else "1gbit"
    c = Cluster(name, hosts, str(net), topology, rate, uplink_rate, delay_ms, loss_pct)
    addrs = list(net.hosts())
    c.gateway = str(addrs[-1])
    prefix = net.prefixlen
    try:
        c.save()
        spine = f"{name}-br"
        c.bridges.append(spine)
        c.save()
        _run(["ip", "link", "add", spine, "type", "bridge"])
        _run(["ip", "link", "set", spine, "up"])
        _run(["ip", "addr", "add", f"{c.gateway}/{prefix}", "dev", spine])
        attach = [spine]
        if topology == "two-tier":
            attach = []
            for leaf in range(leaves):
                br, up_leaf, up_spine = f"{name}-l{leaf}", f"{name}-l{leaf}u", f"{name}-l{leaf}s"
                c.bridges.append(br)
                c.links.append(up_leaf)
                c.save()
                _run(["ip", "link", "add", br, "type", "bridge"])
                _run(["ip", "link", "set", br, "up"])
                _run(["ip", "link", "add", up_leaf, "type", "veth", "peer", "name", up_spine])
                _run(["ip", "link", "set", up_leaf, "master", br, "up"])
                _run(["ip", "link", "set", up_spine, "master", spine, "up"])
                for dev in (up_leaf, up_spine):  # both directions of the uplink
                    _shape([], dev, uplink_rate, None, None)
                attach.append(br)
        netem_checked = False
        for h in range(hosts):
            ns = link = f"{name}-h{h}"
            c.namespaces.append(ns)
            c.links.append(link)
            c.addresses[ns] = str(addrs[h])
            c.leaf_of[ns] = h * len(attach) // hosts
            c.save()
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns])
            _run(["ip", "link", "set", link, "master", attach[c.leaf_of[ns]], "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{addrs[h]}/{prefix}", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            if (delay_ms or loss_pct) and not netem_checked:
                if not netem_available(ns):
                    raise UsageError(
                        "--delay/--loss need the kernel's netem qdisc (sch_netem), "
                        "which this kernel does not have; --rate still works"
                    )
                netem_checked = True
            _shape(["ip", "netns", "exec", ns], "eth0", rate, delay_ms, loss_pct)  # egress
            _shape([], link, rate, delay_ms, loss_pct)  # the host's ingress
        (c.state_dir / "agent").write_text(AGENT)
        (c.state_dir / "agent").chmod(0o755)
        (c.state_dir / "hostfile").write_text("".join(f"{ns}\n" for ns in c.namespaces))
        c.save()
    except BaseException:
        say(f"dist-logreg cluster: setting up {name!r} failed; removing what was created")
        down(name, say=lambda *_: None)
        raise
    return c


def load(name: str) -> Cluster:
    path = STATE_ROOT / name / "state.json"
    try:
        return Cluster(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise UsageError(
            f"cluster {name!r} is not up (no {path}); `dist-logreg cluster up` first"
        ) from None


def _leftovers(name: str) -> tuple[list[str], list[str]]:
    """Namespaces and links named after the cluster (found even without a state file)."""
    r = _run(["ip", "netns", "list"], check=False)
    spaces = [line.split()[0] for line in r.stdout.splitlines() if line.startswith(f"{name}-h")]
    r = _run(["ip", "-o", "link", "show"], check=False)
    links = []
    for line in r.stdout.splitlines():
        parts = line.split(": ")
        if len(parts) > 1:
            dev = parts[1].split("@")[0]
            if dev.startswith(f"{name}-"):
                links.append(dev)
    return spaces, links


def down(name: str, say=print) -> int:
    """Remove everything of cluster ``name``; safe to run twice or after a crash."""
    preflight()
    spaces, links = _leftovers(name)
    bridges = [
        x
        for x in links
        if x == f"{name}-br" or (x.startswith(f"{name}-l") and x[len(name) + 2 :].isdigit())
    ]
    for dev in links:
        if dev not in bridges:
            _run(["ip", "link", "del", dev], check=False)  # deletes the peer too
    for ns in spaces:
        _run(["ip", "netns", "del", ns], check=False)
    for br in bridges:
        _run(["ip", "link", "del", br], check=False)
    state = STATE_ROOT / name
    if state.exists():
        shutil.rmtree(state)
    left_spaces, left_links = _leftovers(name)
    if left_spaces or left_links:
        raise UsageError(f"cluster down: could not remove {left_spaces + left_links}")
    say(f"dist-logreg cluster: {name!r} is down ({len(spaces)} hosts, {len(links)} links removed)")
    return len(spaces)


def status(name: str) -> str:
    """Hosts, addresses, links and their queueing disciplines, as text."""
    c = load(name)
    lines = [
        f"cluster {c.name}: {c.hosts} hosts, {c.topology}, subnet {c.subnet}, "
        f"rate {c.rate or 'unshaped'}"
        + (f", uplinks {c.uplink_rate}" if c.topology == "two-tier" else "")
        + (f", delay {c.delay_ms} ms" if c.delay_ms else "")
        + (f", loss {c.loss_pct}%" if c.loss_pct else "")
    ]
    for ns in c.namespaces:
        alive = _run(["ip", "netns", "exec", ns, "true"], check=False).returncode == 0
        leaf = f" leaf {c.leaf_of[ns]}" if c.topology == "two-tier" else ""
        lines.append(f"  {ns:<14} {c.addresses[ns]:<15}{leaf} {'up' if alive else 'MISSING'}")
    qd = _run(["tc", "qdisc", "show"], check=False).stdout
    lines += [f"  tc {line}" for line in qd.splitlines() if f"{c.name}-" in line]
    return "\n".join(lines)


def mpirun_command(
    c: Cluster, ranks_per_host: int, program: list[str], tcp_links: int
) -> list[str]:
    """The mpirun line that runs ``program`` with ``ranks_per_host`` ranks on every host."""
    mpirun = Path(sys.executable).parent / "mpirun"
    exe = str(mpirun) if mpirun.exists() else (shutil.which("mpirun") or "mpirun")
    env = [
        "PATH",
        "OMPI_MCA_mpi_yield_when_idle",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "DIST_LOGREG_ATTEMPT",
        "DIST_LOGREG_STATUS",
    ]
    cmd = [
        exe,
        "--hostfile",
        str(c.state_dir / "hostfile"),
        "-n",
        str(c.hosts * ranks_per_host),
        "--map-by",
        f"ppr:{ranks_per_host}:node",
        "--bind-to",
        "none",
        "--prtemca",
        "plm_ssh_agent",
        str(c.state_dir / "agent"),
        "--prtemca",
        "oob_tcp_if_include",
        c.subnet,
        "--mca",
        "btl",
        "self,sm,tcp",
        "--mca",
        "btl_tcp_if_include",
        c.subnet,
        "--mca",
        "btl_tcp_links",
        str(tcp_links),
    ]
    for var in env:
        if var in os.environ:
            cmd += ["-x", var]
    return [*cmd, *program]


def run(name: str, ranks_per_host: int, program: list[str], tcp_links: int = 4, say=print) -> int:
    """Run ``dist-logreg train|bench ...`` across the cluster; returns mpirun's exit status."""
    preflight()
    c = load(name)
    if ranks_per_host < 1:
        raise UsageError(f"--ranks-per-host: expected an integer >= 1, got {ranks_per_host}")
    if not program or program[0] not in ("train", "bench"):
        raise UsageError("cluster run: expected `-- train ARGS...` or `-- bench ARGS...`")
    exe = Path(sys.executable).parent / "dist-logreg"
    prog = [str(exe) if exe.exists() else "dist-logreg", *program]
    os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")  # emulated hosts share cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cmd = mpirun_command(c, ranks_per_host, prog, tcp_links)
    say(f"dist-logreg cluster: {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, 15)
        proc.wait()
        return 130
