"""What every engine takes and gives: ``Job``, ``Result``, the ``Engine`` protocol.

- ``Job(fabric, host_of, algorithm, nbytes, seed=0, exact=False, options={})``: one
  allreduce of ``nbytes`` payload bytes per rank on ``host_of.size`` ranks; ``host_of[r]``
  is the endpoint rank ``r`` sits on: a host's NIC on the Clos topologies (one per host), a
  GPU on the rail family (the topology routes it over its scale-up switch and its rail's
  NIC); ``seed`` is the seed the fabric's hash and the placement were drawn with
  (for the record); ``options``: the engine's own options, opaque here; ``start_s``
  (optional): each rank's start offset in s (a late rank), read by ``--exact``.
- ``Result``: ``time_s``, ``ideal_s`` (non-blocking fabric: only the endpoints' links
  finite), ``bottleneck`` (link class name), ``max_flows_per_uplink``, ``collisions``
  (flows beyond an even spread over a switch's equal-cost next hops, summed over steps),
  ``links`` (``{class: {"max_util", "mean_util"}}``), ``messages`` (per-message arrival
  times in s, exact mode and packet engine only), ``extra`` (engine-specific).
- ``Engine``: ``name`` and ``run(job) -> Result``; the engines are a table,
  :mod:`dist_logreg.sim.engine`.
- The bounds every engine's result is held to: :mod:`.bounds`.

Example::

    >>> fab = parse_fabric("flat:hosts=8,rate=100G,link-latency=0")
    >>> r = get_engine("flow").run(Job(fab, place(8, fab), ALG, 1 << 20))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dist_logreg.collective.schedule import phases
from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import Fabric


@dataclass
class Job:
    fabric: Fabric
    host_of: np.ndarray
    algorithm: str
    nbytes: int
    seed: int = 0
    exact: bool = False
    # the engine's typed options (packet: a PacketOptions), or a mapping it parses
    options: object = field(default_factory=dict)
    # per-rank start offsets in s (a straggler's late start; None: every rank at 0). The
    # flow engine's --exact starts no message of rank r before start_s[r] (a rendezvous
    # one, nor before its receiver's); the phase-synchronous mode cannot (its phases start
    # together) and the packet engine does not read it
    start_s: np.ndarray | None = None

    @property
    def ranks(self) -> int:
        return int(np.asarray(self.host_of).size)

    def node_of(self) -> np.ndarray:
        """The host of each rank: the nodes of a topology-aware (hierarchical) algorithm."""
        return self.fabric.topology.locality("host")[np.asarray(self.host_of, dtype=np.int64)]


@dataclass
class Result:
    time_s: float
    ideal_s: float
    bottleneck: str
    max_flows_per_uplink: float
    collisions: float
    links: dict
    messages: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def run(self, job: Job) -> Result: ...


def job_phases(job: Job) -> list:
    """The algorithm's phases on the job's ranks (hierarchical: the hosts are its nodes)."""
    try:
        return phases(job.algorithm, job.ranks, job.node_of())
    except ValueError:
        raise UsageError(f"--algorithm: no step-by-step schedule for {job.algorithm!r}") from None
