"""The engine interface every simulator implements, and the flow engine.

Public names (the contract with the packet engine, which implements the same ``Engine``):

- ``Job(fabric, host_of, algorithm, nbytes, seed=0, exact=False, options={})``: one
  allreduce of ``nbytes`` payload bytes per rank on ``host_of.size`` ranks; ``seed`` is the
  seed the fabric's hash and the placement were drawn with (for the record).
- ``Result``: ``time_s``, ``ideal_s`` (non-blocking fabric: only host links finite),
  ``bottleneck`` (link class name), ``max_flows_per_uplink``, ``collisions`` (flows on
  uplinks beyond an even spread, summed over steps), ``links`` (``{class: {"max_util",
  "mean_util"}}``), ``messages`` (per-message arrival times in s, exact mode only),
  ``extra`` (engine-specific).
- ``Engine``: ``name`` and ``run(job) -> Result``; ``get_engine("flow" | "packet")``.
  ``"packet"`` imports ``dist_logreg.sim.packet`` and calls its
  ``PacketEngine()`` only then; without ns3 a ``UsageError`` names the extra (exit 2). Its
  command-line options come from ``dist_logreg.sim.packet_options``
  (``add_packet_arguments(parser)``, called by ``cli/simulate.py`` when that module exists;
  every option it adds reaches the engine in ``Job.options``, keyed by its dest).

Example::

    >>> fab = parse_fabric("flat:hosts=8,rate=100G,link-latency=0")
    >>> r = get_engine("flow").run(Job(fab, place(8, fab), ALG, 1 << 20))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dist_logreg.collective.schedule import phases
from dist_logreg.sim import exact as exact_mode
from dist_logreg.sim import flow
from dist_logreg.sim.fabric import Fabric
from dist_logreg.errors import UsageError


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

    @property
    def ranks(self) -> int:
        return int(np.asarray(self.host_of).size)


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
        return phases(job.algorithm, job.ranks, np.asarray(job.host_of))
    except ValueError:
        raise UsageError(f"--algorithm: no step-by-step schedule for {job.algorithm!r}") from None


class FlowEngine:
    """Max-min fair flows; phase-synchronous, or event by event with ``Job.exact``."""

    name = "flow"

    def __init__(self):
        self.cache = flow.StepCache()

    def run(self, job: Job) -> Result:
        host_of = np.asarray(job.host_of, dtype=np.int64)
        steps = job_phases(job)
        out = flow.simulate(job.fabric, host_of, steps, float(job.nbytes), self.cache)
        arrivals = None
        if job.exact:
            sync_time = out["time_s"]
            out.update(exact_mode.simulate(job.fabric, host_of, job.algorithm, job.nbytes))
            arrivals = out.pop("arrivals")
            out["phase_sync_s"] = sync_time
        extra = {k: out.pop(k) for k in list(out) if k not in Result.__dataclass_fields__}
        return Result(**out, messages=arrivals, extra=extra)


def get_engine(name: str) -> Engine:
    """``"flow"`` (this module) or ``"packet"`` (ns-3, an optional extra, loaded here)."""
    if name == "flow":
        return FlowEngine()
    if name == "packet":
        try:
            mod = importlib.import_module("dist_logreg.sim.packet")
        except ImportError as exc:
            raise UsageError(
                f"--engine packet needs ns-3: pip install -e '.[packet]' ({exc})"
            ) from None
        return mod.PacketEngine()
    raise UsageError(f"--engine: expected flow or packet, got {name!r}")
