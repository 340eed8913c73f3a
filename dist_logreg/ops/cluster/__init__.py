"""``dist-logreg cluster``: an emulated multi-host network on one Linux machine.

Each emulated host is a network namespace with an address in 198.18.0.0/15 (the range
reserved for network benchmarking). Three topologies: ``flat`` (every host on one bridge),
``two-tier`` (leaf bridges with one slow uplink each to a spine bridge) and ``leaf-spine``
(leaf and spine routers in their own namespaces, multipath routes over every spine: real
ECMP). Links are shaped with ``tc`` (``tbf``; delay only where the kernel has ``netem``),
lose packets through ``nftables`` rules, and are counted per link and per flow.

``mpirun`` runs in the root namespace and starts ranks inside the hosts through a launch
agent (instead of ssh) that runs its command with ``ip netns exec HOST unshare --uts`` and
gives each host its own hostname, so Open MPI sees distinct nodes. MPI's TCP traffic and
the launcher's control traffic are pinned to the emulated networks.

Everything created is recorded in a state directory (``/run/dist-logreg/<name>``) before it
is created, and named ``<name>-...``, so ``down`` removes it all, also after a crash; ``up``
rolls back on any failure or Ctrl-C.

===============  ==========================================================================
``state``        what a cluster is made of (``state.json``), names, running commands
``shaping``      ``tbf`` rate, burst and queue; ``netem`` delay
``nft``          loss rules and per-flow counters (nftables)
``bridged``      the ``flat`` and ``two-tier`` builders
``leafspine``    the routed ``leaf-spine`` builder (ECMP)
``lifecycle``    ``up`` (checks, rollback) and ``down``
``status``       ``cluster status``
``counters``     link and TCP counters, the baseline ``cluster status`` counts from
``flows``        the flow map: which spine each TCP flow took
``calibrate``    one-way and bidirectional TCP ceilings per link class
``probe``        the built-in TCP probe that runs inside the namespaces
``jobs``         ``cluster run``: the ``mpirun`` line, snapshots, the fabric files
``postprocess``  the fabric block, busbw against the ceiling, the printed summary
``fabricfiles``  the schema of ``links.json`` and ``flows.json``: written and read here
``attribution``  flows tied to lossy links and retransmissions; collisions, imbalance
``tcpinfo``      per-connection TCP counters (``ss -tin``) sampled during a job
``change``       ``cluster set``: rates, buckets, queues, loss, hashing in place
``validate``     the link values of ``up`` and ``set`` against what tc and nft accept
``slurm``        ``up --slurm``: munged, slurmctld, one slurmd per host; sbatch/srun
===============  ==========================================================================
"""

from dist_logreg.ops.cluster.lifecycle import down, up
from dist_logreg.ops.cluster.state import STATE_ROOT, Cluster, Spec, load, preflight
from dist_logreg.ops.cluster.status import status
from dist_logreg.units import rate_bits

__all__ = [
    "STATE_ROOT",
    "Cluster",
    "Spec",
    "down",
    "load",
    "preflight",
    "rate_bits",
    "status",
    "up",
]
