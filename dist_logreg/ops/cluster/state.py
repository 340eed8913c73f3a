"""What a cluster is made of (``state.json``), and how its commands run.

Every name a cluster creates starts with ``<name>-`` (namespaces, and the links and bridges
of the root namespace); cluster names are lower-case letters and digits only, so the prefix
of one cluster is never the prefix of another (``cm1-`` is not a prefix of ``cm10-h0``).
``down`` finds its own objects by that prefix, also without a state file.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.files import read_json
from dist_logreg.units import rate_bits

STATE_ROOT = Path(os.environ.get("DIST_LOGREG_CLUSTER_STATE", "/run/dist-logreg"))
ALLOWED = ipaddress.ip_network("198.18.0.0/15")
#: Leaf-spine point-to-point links (one /31 each). They exist only inside the leaf and
#: spine namespaces, so every cluster may use the same ones.
P2P_NET = ipaddress.ip_network("198.18.64.0/18")
#: Linux limits interface names to 15 characters: ``<name>-l199u`` must fit.
NAME_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
TOPOLOGIES = ("flat", "two-tier", "leaf-spine")
HASHES = {"l3": 0, "l4": 1}  # net.ipv4.fib_multipath_hash_policy
#: IPv4 only inside the cluster: no IPv6 neighbour discovery in the link counters.
QUIET = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]


@dataclass
class Spec:
    """What the user asked ``up`` for (the ``cluster up`` flags)."""

    name: str = "dlr"
    hosts: int = 2
    subnet: str = "198.18.0.0/24"
    topology: str = "flat"
    rate: str | None = None
    uplink_rate: str | None = None
    delay_ms: float | None = None
    loss_pct: float | None = None
    loss_links: dict[str, float] = field(default_factory=dict)
    leaves: int = 2
    spines: int = 2
    hash: str = "l4"
    burst: int | None = None  # bytes; None: see shaping.py
    queue: int | None = None  # bytes; None: see shaping.py
    slurm: bool = False  # a controller and one slurmd per host (slurm.py)
    mtu: int = 1500  # bytes, every veth and bridge (``--mtu``)


@dataclass
class Link:
    """One emulated cable: ends ``a`` and ``b`` are ``[namespace or "", device, node]``."""

    id: str
    cls: str  # "host" or "uplink"
    a: list[str]
    b: list[str]

    def directions(self) -> list[tuple[str, list[str], list[str]]]:
        """``("h0>l0", sender end, receiver end)`` for both directions."""
        return [
            (f"{self.a[2]}>{self.b[2]}", self.a, self.b),
            (f"{self.b[2]}>{self.a[2]}", self.b, self.a),
        ]


@dataclass
class Cluster:
    """What ``up`` built, saved as ``state.json`` before each piece is created."""

    spec: Spec
    hosts: list[str] = field(default_factory=list)  # host namespaces, in rank order
    routers: list[str] = field(default_factory=list)  # leaf and spine namespaces
    root_links: list[str] = field(default_factory=list)  # devices in the root namespace
    bridges: list[str] = field(default_factory=list)  # bridges in the root namespace
    links: list[Link] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)  # host -> fabric address
    leaf_of: dict[str, int] = field(default_factory=dict)
    mpi_net: str = ""  # the hosts' fabric addresses (btl_tcp_if_include)
    oob_net: str = ""  # the launcher's control network (oob_tcp_if_include)
    burst: int = 0
    queue: int = 0
    nft: bool = False  # loss rules or flow counters installed
    calibration: dict = field(default_factory=dict)
    changes: list[dict] = field(default_factory=list)  # `cluster set`, in order (when, what)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.spec.name

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.state_dir / "state.json")

    def link(self, link_id: str) -> Link:
        for link in self.links:
            if link.id == link_id:
                return link
        raise KeyError(link_id)


def load(name: str, flag: str = "--name") -> Cluster:
    """The state of cluster ``name``; a clear error when it is not up."""
    check_name(name, flag)
    path = STATE_ROOT / name / "state.json"
    if not os.path.lexists(path):
        raise UsageError(f"cluster {name!r} is not up (no {path}); `dist-logreg cluster up` first")
    # a regular file of bounded size, read once (a FIFO hung, a link to /dev/zero was a
    # MemoryError: fifteenth attack, Q-H5)
    raw = read_json(path, f"cluster {name!r}: state")
    check_state(path, raw)
    known = {f.name for f in fields(Spec)}
    unknown = sorted(set(raw["spec"]) - known)
    if unknown:
        raise UsageError(f"{path}: spec: unknown key {unknown[0]!r}; expected {sorted(known)}")
    raw["spec"] = Spec(**raw["spec"])
    raw["links"] = [Link(**{k: x[k] for k in ("id", "cls", "a", "b")}) for x in raw["links"]]
    extra = sorted(set(raw) - {f.name for f in fields(Cluster)})
    if extra:
        raise UsageError(f"{path}: unknown key {extra[0]!r}; the state is damaged")
    return Cluster(**raw)


# --- state.json: checked before a field is used ------------------------------------

_SPEC_TYPES = {
    "name": str,
    "hosts": int,
    "subnet": str,
    "topology": str,
    "leaves": int,
    "spines": int,
    "hash": str,
}
_OPTIONAL = {"rate": str, "uplink_rate": str, "burst": int, "queue": int}


def check_state(path: Path, raw) -> None:
    """``UsageError`` naming the file, key and value unless ``raw`` is a ``state.json``."""

    def bad(key: str, expected: str, value) -> UsageError:
        return UsageError(
            f"{path}: {key}: expected {expected}, got {value!r:.60}; the state is damaged: "
            "`dist-logreg cluster down --name <name>` removes the cluster"
        )

    if not isinstance(raw, dict):
        raise bad("(top level)", "a JSON object", raw)
    spec = raw.get("spec")
    if not isinstance(spec, dict):
        raise bad("spec", "an object (the cluster up flags)", spec)
    for key, kind in _SPEC_TYPES.items():
        v = spec.get(key)
        if not isinstance(v, kind) or isinstance(v, bool):
            raise bad(f"spec.{key}", f"a {kind.__name__}", v)
    for key, kind in _OPTIONAL.items():
        v = spec.get(key)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            raise bad(f"spec.{key}", f"a {kind.__name__} or null", v)
    for key in ("rate", "uplink_rate"):
        if spec.get(key) is not None:
            try:
                ok = 0 < rate_bits(spec[key]) < float("inf")
            except (ValueError, UsageError):  # the units grammar names no file: we do
                ok = False
            if not ok:
                raise bad(f"spec.{key}", "a tc rate such as 300mbit", spec[key])
    if "mtu" in spec and (not isinstance(spec["mtu"], int) or isinstance(spec["mtu"], bool)):
        raise bad("spec.mtu", "an integer", spec["mtu"])
    for key in ("hosts", "routers", "root_links", "bridges"):
        v = raw.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad(key, "a list of names", v)
    links = raw.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(x, dict) and {"id", "cls", "a", "b"} <= set(x) for x in links
    ):
        raise bad("links", "a list of {id, cls, a, b}", links)
    for key in ("addresses", "leaf_of", "calibration", "loss_links"):
        v = raw.get(key, {}) if key != "loss_links" else spec.get(key, {})
        if not isinstance(v, dict):
            raise bad(key, "an object", v)
    for key in ("burst", "queue"):
        v = raw.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise bad(key, "an integer >= 0", v)
    classes = raw.get("calibration", {}).get("classes") or {}
    if not isinstance(classes, dict):
        raise bad("calibration.classes", "an object", classes)
    for cls, cal in classes.items():
        for key in ("one_way_Gbps", "bidir_Gbps"):
            v = cal.get(key) if isinstance(cal, dict) else None
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v < math.inf:
                # a NaN ceiling would make the max-min solver of `simulate` spin forever
                raise bad(f"calibration.classes.{cls}.{key}", "a number of Gbit/s > 0", v)
    if not isinstance(raw.get("changes", []), list):
        raise bad("changes", "a list", raw.get("changes"))


def check_name(name: str, flag: str = "--name") -> None:
    """``UsageError`` naming ``flag`` (``--fabric cluster:NAME`` names its own: W-M7)."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"{flag}: expected 1-8 lower-case letters and digits starting with a letter "
            f"(it prefixes every interface name, at most 15 characters), got {name!r}"
        )


def sh(
    args: list[str], check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run one command; a failure is a ``UsageError`` quoting the command and its error."""
    r = subprocess.run(args, capture_output=True, text=True, input=stdin)
    if check and r.returncode != 0:
        raise UsageError(f"`{' '.join(args)}` failed: {(r.stderr or r.stdout).strip()}")
    return r


#: Every long-running process a cluster command started (probes, iperf3, samplers): ended
#: by :func:`end_children` on every exit path, so none outlives the command.
CHILDREN: list[subprocess.Popen] = []


def spawn(args: list[str], **kw) -> subprocess.Popen:
    """Start ``args`` (stdout and stderr piped, text) and remember it for :func:`end_children`."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(args, text=True, **kw)
    CHILDREN.append(proc)
    return proc


def end_children(grace: float = 2.0) -> int:
    """Terminate (then kill) every process :func:`spawn` started that still runs; how many."""
    alive = [p for p in CHILDREN if p.poll() is None]
    for p in alive:
        p.terminate()
    for p in alive:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    CHILDREN.clear()
    return len(alive)


def in_ns(ns: str) -> list[str]:
    """The prefix that runs a command inside namespace ``ns`` ("" is the root namespace)."""
    return ["ip", "netns", "exec", ns] if ns else []


def need_tool(tool: str, package: str, why: str) -> str:
    """The path of ``tool``, or a ``UsageError`` naming the Debian package that has it."""
    path = shutil.which(tool)
    if path is None:
        raise UsageError(
            f"cluster: {why} needs the `{tool}` command, which is not installed: "
            f"`apt-get install {package}` (Debian/Ubuntu package {package})"
        )
    return path


def preflight() -> None:
    """Root, and the tools every topology needs; a clear message when something is missing."""
    if os.geteuid() != 0:
        raise UsageError("cluster: expected to run as root (network namespaces, veth links, tc)")
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("unshare", "util-linux")):
        need_tool(tool, package, "every emulated cluster")
