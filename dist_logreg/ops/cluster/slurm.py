"""Slurm on the emulated hosts: ``munged`` and ``slurmctld`` in the root namespace, one
``slurmd`` in each host namespace under its own hostname (``cluster up --slurm``).

Everything lives in the cluster's state directory (``<state>/slurm``: ``slurm.conf``, a
fresh munge key, spool and state directories, logs) and every daemon's pid is recorded in
``pids`` before ``up`` returns, so ``down`` ends exactly the daemons it started (by pid).
Slurm talks over the management network (leaf-spine) or the hosts' bridge (flat,
two-tier): the controller listens on the root namespace's address there. ``cluster run
-- sbatch|srun ARGS`` runs the client with ``SLURM_CONF`` pointing at this cluster.
Debian 12 packages: ``slurm-wlm`` (22.05) and ``munge``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import leafspine
from dist_logreg.ops.cluster.state import STATE_ROOT, Cluster, need_tool

CTLD_PORT, SLURMD_PORT = 6817, 6818
#: The Slurm commands `cluster run -- ...` runs against the cluster's controller.
CLIENTS = ("sbatch", "srun", "sinfo", "squeue", "scontrol", "scancel")
CONF = """\
ClusterName={name}
SlurmctldHost={name}ctl({ctl})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.sock
SlurmUser=root
MailProg=/bin/true
SlurmdUser=root
StateSaveLocation={dir}/ctld
SlurmdSpoolDir={dir}/spool-%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/linear
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
DebugFlags=NO_CONF_HASH
MessageTimeout=60
{nodes}
PartitionName=emu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def slurm_dir(name: str) -> Path:
    return STATE_ROOT / name / "slurm"


def addresses(c: Cluster) -> tuple[str, dict[str, str]]:
    """``(controller address, {host: address})`` on the network Slurm talks over."""
    if c.spec.topology == "leaf-spine":
        _, _, mgmt = leafspine.plan(c.spec.subnet, c.spec.leaves, len(c.hosts))
        return str(mgmt[-2]), {h: str(mgmt[i + 1]) for i, h in enumerate(c.hosts)}
    net = ipaddress.ip_network(c.spec.subnet)
    return str(list(net.hosts())[-1]), dict(c.addresses)


def node(c: Cluster, host: str) -> str:
    """The Slurm node name (and hostname) of host namespace ``host``: ``<name>-h0``."""
    return host


def config(c: Cluster, d: Path) -> str:
    ctl, addr = addresses(c)
    cpus = os.cpu_count() or 1
    nodes = "\n".join(
        f"NodeName={node(c, h)} NodeAddr={addr[h]} CPUs={cpus} Sockets=1 CoresPerSocket={cpus} "
        "ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN"
        for h in c.hosts
    )
    return CONF.format(
        name=c.name, ctl=ctl, dir=d, nodes=nodes, ctld_port=CTLD_PORT, slurmd_port=SLURMD_PORT
    )


def _daemon(d: Path, args: list[str], log: str) -> int:
    """Start a daemon in its own session (it outlives ``up``); record its pid at once."""
    with open(d / log, "ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with open(d / "pids", "a") as fh:
        fh.write(f"{proc.pid}\n")
    return proc.pid


def start(c: Cluster, say=print, timeout: float = 60.0) -> None:
    """Key, config, munged, slurmctld, one slurmd per host; wait until every node is idle."""
    for tool, pkg in (
        ("munged", "munge"),
        ("slurmctld", "slurm-wlm"),
        ("slurmd", "slurm-wlm"),
        ("sinfo", "slurm-wlm"),
    ):
        need_tool(tool, pkg, "--slurm")
    d = slurm_dir(c.name)
    (d / "ctld").mkdir(parents=True, exist_ok=True)
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (d / "slurm.conf").write_text(config(c, d))
    munged = ["munged", "-F", "--force", f"--socket={d}/munge.sock", f"--key-file={key}"]
    munged += [f"--{k}-file={d}/munged.{k[:4]}" for k in ("pid", "log", "seed")]
    _daemon(d, munged, "munged.out")
    _wait(lambda: (d / "munge.sock").exists(), timeout, "munged did not create its socket", d)
    env = ["env", f"SLURM_CONF={d}/slurm.conf"]
    ctl = f'hostname "{c.name}ctl"; exec "$@"'  # SlurmctldHost's name, in its own UTS
    ctld = ["unshare", "--uts", "/bin/sh", "-c", ctl, "sh", *env, "slurmctld", "-D", "-i"]
    _daemon(d, [*ctld, "-f", f"{d}/slurm.conf"], "slurmctld.out")
    for h in c.hosts:
        _start_slurmd(c, d, h, env)
    _wait(lambda: _idle(c, d) == len(c.hosts), timeout, "not every slurmd registered", d)
    say(
        f"  slurm           controller {addresses(c)[0]}:{CTLD_PORT}, {len(c.hosts)} nodes "
        f"idle (partition emu); SLURM_CONF={d}/slurm.conf"
    )


def _start_slurmd(c: Cluster, d: Path, h: str, env: list[str]) -> None:
    """The slurmd of emulated host ``h``, in its namespace, with its own hostname and TmpFS."""
    n = node(c, h)
    (d / f"spool-{n}").mkdir(exist_ok=True)
    (d / f"tmp-{n}").mkdir(exist_ok=True)
    # Its own TmpFS: nodes on one machine would share PMIx's directories under /tmp
    # (spmix_appdir_<uid>_<job>.<step>) and the second node's step would fail.
    conf = d / f"slurm-{n}.conf"
    conf.write_text(config(c, d) + f"TmpFS={d}/tmp-{n}\n")
    script = f'hostname "{n}"; exec "$@"'
    # nsenter, not `ip netns exec`: that one mounts a fresh /sys, hiding the cgroup
    # file systems slurmd needs; unshare --uts gives the node its own hostname.
    enter = ["nsenter", f"--net=/run/netns/{h}", "unshare", "--uts", "/bin/sh", "-c", script]
    _daemon(d, [*enter, "sh", *env, "slurmd", "-D", "-N", n, "-f", str(conf)], f"slurmd-{n}.out")


def status_line(c: Cluster) -> str:
    """``cluster status``: how many of the daemons ``start`` recorded still run."""
    d = slurm_dir(c.name)
    path = d / "pids"
    pids = [int(x) for x in path.read_text().split() if x.isdigit()] if path.exists() else []
    alive = sum(_alive(p) and str(d) in _cmdline(p) for p in pids)
    return (
        f"  slurm           {alive} of {len(pids)} daemons running (munged, slurmctld, one "
        f"slurmd per host); SLURM_CONF={d}/slurm.conf"
    )


def _idle(c: Cluster, d: Path) -> int:
    r = client(c.name, ["sinfo", "-h", "-N", "-o", "%N %t"], check=False)
    return sum(1 for line in r.stdout.splitlines() if line.split()[-1:] == ["idle"])


def _wait(ready, timeout: float, what: str, d: Path) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.5)
    logs = sorted(d.glob("*.log")) + sorted(d.glob("*.out"))
    tail = "; ".join(f"{p.name}: {p.read_text(errors='replace').strip()[-300:]}" for p in logs)
    raise UsageError(f"--slurm: {what} within {timeout:.0f} s ({tail})")


def client(name: str, args: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """A Slurm client command (sinfo, sbatch, srun) against cluster ``name``'s controller."""
    env = {**os.environ, "SLURM_CONF": str(slurm_dir(name) / "slurm.conf")}
    r = subprocess.run(args, env=env, text=True, capture_output=kw.pop("capture", True), **kw)
    if check and r.returncode != 0:
        raise UsageError(f"`{' '.join(args)}` failed: {(r.stderr or '').strip()[-500:]}")
    return r


def submit(c: Cluster, program: list[str], say=print) -> int:
    """``cluster run -- sbatch|srun ARGS``: the client, against this cluster (no fabric files)."""
    if not c.spec.slurm:
        raise UsageError(
            f"cluster run -- {program[0]}: cluster {c.name!r} has no Slurm; "
            "`cluster up --slurm` starts it"
        )
    # What mpirun gets from `cluster run` on the command line, as the environment srun and
    # sbatch pass on (--export=ALL): MPI's TCP over the fabric, one BLAS thread, yielding.
    os.environ.update(
        {
            "OMPI_MCA_btl": "self,sm,tcp",
            "OMPI_MCA_btl_tcp_if_include": c.mpi_net,
            "OMPI_MCA_mpi_yield_when_idle": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
    )
    say(f"dist-logreg cluster: SLURM_CONF={slurm_dir(c.name)}/slurm.conf {' '.join(program)}")
    return client(c.name, program, check=False, capture=False).returncode


def stop(name: str) -> int:
    """End every daemon ``start`` recorded for cluster ``name`` (by pid); how many."""
    path = slurm_dir(name) / "pids"
    if not path.exists():
        return 0
    d = str(slurm_dir(name))
    pids = [int(x) for x in path.read_text().split() if x.isdigit()]
    pids = [p for p in pids if d in _cmdline(p)]  # still ours: its command names our dir
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if _alive(p)]
        for p in alive:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 5
        while time.monotonic() < end and any(_alive(p) for p in alive):
            time.sleep(0.1)
    path.unlink()
    return len(pids)


def _alive(pid: int) -> bool:
    """Running and not a zombie (a daemon whose parent, ``up``, has exited is reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""
