"""The algorithm table: one record per collective algorithm, read by every other module.

Pure (numpy, no MPI). A record names the class that runs it as ``"module:Class"``, imported
only on MPI ranks (:func:`dist_logreg.comm.registry.make_allreduce`), after mpi4py's
``bench.py`` table of commands. The command line, validation, the schedules, the closed
forms, the cost-model fit, ``scale``, the what-if tables and the tests read this table; an
algorithm's name is a string literal here only (a layout test checks it), elsewhere a
constant (``RING.name``). Adding an algorithm is one module and one record
(``docs/design.md``). ``hierarchical-2d:rabenseifner`` names hierarchical-2d with another
algorithm across nodes (:data:`INTER_SPELLINGS`; :func:`get` makes its record):

>>> import dist_logreg.collective.algorithms as table
>>> [a.name for a in table.of("allreduce")][:2]
['mpi', 'ring']
>>> table.get("ring").closed_form(4)
(6.0, 1.5, 0.75)

A record says which collective it implements (``allreduce`` by default): records of other
collectives sit in the same table; :func:`of` lists one collective's, in registration order.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dist_logreg.collective import halves, steps
from dist_logreg.collective.steps import Phase

#: The collective a record implements unless it says otherwise.
ALLREDUCE = "allreduce"

#: ``(a, b, c)`` of ``a(p) alpha + b(p) n beta + c(p) n gamma`` on ``p >= 2`` ranks.
ClosedForm = Callable[[int], tuple[float, float, float]]
#: The steps on ``p >= 2`` ranks; ``node_of[rank]`` for a topology-aware algorithm.
Schedule = Callable[[int, "np.ndarray | None"], list[Phase]]


@dataclass(frozen=True)
class Algorithm:
    """One algorithm of one collective: what runs it and what it costs.

    ``runner``: ``"module:Class"``, the class that runs it on MPI (imported on demand);
    ``phases``: its step-by-step schedule, or None where it cannot be observed (``why``
    says so); ``closed_form``: its coefficients, or None (``why`` says why not);
    ``formula``: the one line the cost-model fit prints; ``help``: its ``--help`` phrase;
    ``wire_factor(p)``: bytes one rank sends per payload byte (the estimate of traffic);
    ``library``: the MPI library's own (``--mpi-algorithm`` applies); ``topology_aware``:
    it groups ranks into nodes (``--ranks-per-node`` applies).
    """

    name: str
    runner: str
    help: str
    formula: str
    phases: Schedule | None
    closed_form: ClosedForm | None
    why: str = ""
    wire_factor: Callable[[int], float] | None = None
    library: bool = False
    topology_aware: bool = False
    collective: str = ALLREDUCE
    #: keyword arguments the runner's constructor takes besides the communicator (and
    #: ``ranks_per_node``): ``(("inter", "ring"),)`` for hierarchical-2d (:func:`variant`)
    params: tuple[tuple[str, str], ...] = ()

    def runner_class(self) -> type:
        """The class that runs this algorithm (imports its module: MPI, on the MPI side)."""
        module, _, cls = self.runner.partition(":")
        return getattr(importlib.import_module(module), cls)

    def wire_bytes_factor(self, p: int) -> float:
        """Bytes one rank sends per payload byte (default: bandwidth-optimal ``2(p-1)/p``)."""
        if p <= 1:
            return 0.0
        return self.wire_factor(p) if self.wire_factor else 2.0 * (p - 1) / p


_FOLD_NOTE = "(+ fold-in/out when p is not a power of two)"

MPI = Algorithm(
    name="mpi",
    runner="dist_logreg.comm.base:MPIAllreduce",
    help="the MPI library's own",
    formula="GENERIC: the library's choice is not observable; ceil(lg p) alpha + "
    "2n(p-1)/p beta + n(p-1)/p gamma per size segment (of the payload)",
    phases=None,
    closed_form=halves.generic_ar_form,
    why="the MPI library's choice is not observable: the cost model takes a generic shape "
    "(ceil(lg p) messages, a ring's bandwidth-optimal load)",
    library=True,
)
RING = Algorithm(
    name="ring",
    runner="dist_logreg.comm.p2p:Ring",
    help="reduce-scatter then allgather around a ring, 2(p-1) steps",
    formula="2(p-1) alpha + 2n(p-1)/p beta + n(p-1)/p gamma",
    phases=lambda p, node_of: steps.ring_phases(np.arange(p)),
    closed_form=halves.ring_ar_form,
)
RECURSIVE_DOUBLING = Algorithm(
    name="recursive-doubling",
    runner="dist_logreg.comm.p2p:RecursiveDoubling",
    help="whole buffers at distance 1, 2, 4, ..., lg p steps",
    formula=f"lg p alpha + n lg p beta + n lg p gamma {_FOLD_NOTE}",
    phases=lambda p, node_of: steps.recursive_doubling_phases(p),
    closed_form=halves.doubling_ar_form,
    wire_factor=math.log2,
)
RABENSEIFNER = Algorithm(
    name="rabenseifner",
    runner="dist_logreg.comm.p2p:Rabenseifner",
    help="reduce-scatter by recursive halving from distance 1, allgather by recursive "
    "doubling back (MPICH's order: the largest halves between neighbours)",
    formula=f"2 lg p alpha + 2n(p-1)/p beta + n(p-1)/p gamma {_FOLD_NOTE}",
    phases=lambda p, node_of: steps.rabenseifner_phases(p),
    closed_form=halves.rabenseifner_ar_form,
)
RABENSEIFNER_FAR = Algorithm(
    name="rabenseifner-far",
    runner="dist_logreg.comm.p2p:RabenseifnerFar",
    help="Rabenseifner's halving from distance p/2, doubling back from 1 (the largest "
    "halves at the farthest distance; the order before MPICH's became the default)",
    formula=f"2 lg p alpha + 2n(p-1)/p beta + n(p-1)/p gamma {_FOLD_NOTE}",
    phases=lambda p, node_of: steps.rabenseifner_far_phases(p),
    closed_form=halves.rabenseifner_ar_form,
)
HIERARCHICAL = Algorithm(
    name="hierarchical",
    runner="dist_logreg.comm.p2p:Hierarchical",
    help="reduce inside each node, ring among node leaders, broadcast back",
    formula="intra-node linear reduce + inter-node ring among leaders + intra-node "
    "linear broadcast, separate intra/inter alpha and beta",
    phases=lambda p, node_of: steps.hierarchical_phases(
        np.arange(p) if node_of is None else node_of
    ),
    closed_form=None,
    why="its cost depends on how the ranks sit on nodes, with separate intra- and "
    "inter-node alpha and beta (closed_form.hierarchical_coefficients; or fit a model.json "
    "with `dist-logreg model fit`)",
    topology_aware=True,
)
#: The flat algorithms hierarchical-2d can run across nodes (``inter``), and its default.
INTER_CHOICES = (RING.name, RECURSIVE_DOUBLING.name, RABENSEIFNER.name, RABENSEIFNER_FAR.name)
INTER_DEFAULT = RING.name


def _two_d_schedule(inter: str) -> Schedule:
    flat = {a.name: a.phases for a in (RING, RECURSIVE_DOUBLING, RABENSEIFNER, RABENSEIFNER_FAR)}
    if inter not in flat:
        raise ValueError(f"hierarchical-2d: expected inter one of {INTER_CHOICES}, got {inter!r}")
    return steps.two_d_schedule(flat[inter])


def variant(inter: str, name: str = "hierarchical-2d") -> Algorithm:
    """The hierarchical-2d record running ``inter`` (one of :data:`INTER_CHOICES`) among
    the ranks of the same place on every node (``get("hierarchical-2d:" + inter)``)."""
    return Algorithm(
        name=name,
        runner="dist_logreg.comm.hierarchical_2d:Hierarchical2D",
        help="ring reduce-scatter inside each node, an allreduce per rail across nodes "
        f"({inter}), ring allgather inside (Horovod's hierarchical allreduce)",
        formula=f"intra-node ring reduce-scatter + inter-node {inter} of n/k per rail + "
        "intra-node ring allgather, separate intra/inter alpha and beta",
        phases=_two_d_schedule(inter),
        closed_form=None,
        why="its cost depends on how the ranks sit on nodes, with separate intra- and "
        "inter-node alpha and beta (closed_form.hierarchical_2d_coefficients; or fit a "
        "model.json with `dist-logreg model fit`)",
        topology_aware=True,
        params=(("inter", inter),),
    )


HIERARCHICAL_2D = variant(INTER_DEFAULT)
#: ``hierarchical-2d:rabenseifner``: the name that picks hierarchical-2d's inter algorithm.
INTER_SPELLINGS = tuple(f"{HIERARCHICAL_2D.name}:{i}" for i in INTER_CHOICES)
_VARIANTS: dict[str, Algorithm] = {}


def _variant_of(name: str) -> Algorithm | None:
    """The record of ``hierarchical-2d:INTER`` (made once, named so), else None."""
    base, sep, inter = name.partition(":")
    if sep and base == HIERARCHICAL_2D.name:
        if inter not in INTER_CHOICES:
            raise ValueError(f"{name!r}: expected {' or '.join(INTER_SPELLINGS)}")
        return _VARIANTS.setdefault(name, variant(inter, name))
    return None


#: Every record, in registration order.
_TABLE: list[Algorithm] = [
    MPI,
    RING,
    RECURSIVE_DOUBLING,
    RABENSEIFNER,
    RABENSEIFNER_FAR,
    HIERARCHICAL_2D,
    HIERARCHICAL,  # last: tests take the last scheduled record as the leader-based one
]
#: The default ``--allreduce``.
DEFAULT = MPI.name


def of(collective: str = ALLREDUCE) -> list[Algorithm]:
    """The records of one collective, in registration order."""
    return [a for a in _TABLE if a.collective == collective]


def names(collective: str = ALLREDUCE) -> tuple[str, ...]:
    """The names of one collective's algorithms (the ``--allreduce`` choices)."""
    return tuple(a.name for a in of(collective))


def scheduled(collective: str = ALLREDUCE) -> tuple[str, ...]:
    """The names of the algorithms with a step-by-step schedule (written here, counted)."""
    return tuple(a.name for a in of(collective) if a.phases is not None)


def known(name: str) -> bool:
    """Whether :func:`get` knows ``name`` (``hierarchical-2d:rabenseifner`` too)."""
    with contextlib.suppress(ValueError):
        return bool(get(name))
    return False


def scheduled_keys() -> tuple[str, ...]:
    """Every record with a schedule, as :func:`key` names it: the allreduce algorithms, then
    ``reduce-scatter/ring`` and the like (what the simulator can replay)."""
    return tuple(key(a) for a in _TABLE if a.phases is not None)


def get(name: str, collective: str = ALLREDUCE) -> Algorithm:
    """The record of ``name``; a ``ValueError`` names the choices.

    ``"reduce-scatter/ring"`` names a record of another collective (how a fitted model and
    its samples key the algorithms beyond allreduce: :func:`key`).
    """
    if "/" in name:
        collective, name = name.split("/", 1)
    if collective == ALLREDUCE and (two_d := _variant_of(name)):
        return two_d
    for a in of(collective):
        if a.name == name:
            return a
    raise ValueError(
        f"unknown {collective} algorithm {name!r}; expected one of {', '.join(names(collective))}"
    )


def key(record: Algorithm) -> str:
    """The name a fit and a prediction use: ``ring``, or ``reduce-scatter/ring`` beyond
    allreduce (so that the two rings of one sweep are fitted apart)."""
    return record.name if record.collective == ALLREDUCE else f"{record.collective}/{record.name}"


def register(record: Algorithm) -> None:
    """Add a record (a ``ValueError`` if its collective already has that name)."""
    if record.name in names(record.collective):
        raise ValueError(f"{record.collective} algorithm {record.name!r} is already registered")
    _TABLE.append(record)


@contextlib.contextmanager
def registered(record: Algorithm) -> Iterator[Algorithm]:
    """Register ``record`` for the duration of a ``with`` block (tests, experiments)."""
    register(record)
    try:
        yield record
    finally:
        _TABLE.remove(record)


#: The compressors ``--compress`` offers (the wrappers in :mod:`dist_logreg.comm.wrappers`).
COMPRESSORS = ("none", "fp16")
#: The MPI library's own allreduce algorithms that --mpi-algorithm can force, with their
#: settings: Open MPI's coll_tuned algorithm number, MPICH's CVAR value (None: not offered).
MPI_ALGORITHMS = {
    "linear": (1, None),
    "reduce-bcast": (2, None),
    "recursive-doubling": (3, "recursive_doubling"),
    "ring": (4, "ring"),
    "segmented-ring": (5, None),
    "rabenseifner": (6, "reduce_scatter_allgather"),
}


#: The collectives ``bench --collective`` measures; the gradient path is the first.
COLLECTIVES = (ALLREDUCE, "reduce-scatter", "allgather", "broadcast", "alltoall")
#: nccl-tests' bus-bandwidth factor of each collective (busbw = algbw * factor; S = the
#: total size: the allreduce buffer, the reduce-scatter input, the allgather output, the
#: alltoall send buffer, the broadcast buffer).
BUSBW_FACTORS = {
    ALLREDUCE: lambda p: 2.0 * (p - 1) / p,
    "reduce-scatter": lambda p: (p - 1) / p,
    "allgather": lambda p: (p - 1) / p,
    "alltoall": lambda p: (p - 1) / p,
    "broadcast": lambda p: 1.0,
}
_NOT_OBSERVABLE = (
    "the MPI library's choice is not observable: the cost model takes a generic shape "
    "(closed form: collective/halves.py)"
)


def _mpi(collective: str, cls: str, form, formula: str, wire) -> Algorithm:
    return Algorithm(
        name=MPI.name,
        runner=f"dist_logreg.comm.collectives:{cls}",
        help="the MPI library's own",
        formula=f"GENERIC: {formula}",
        phases=None,
        closed_form=form,
        why=_NOT_OBSERVABLE,
        wire_factor=wire,
        library=True,
        collective=collective,
    )


_HALF = halves.one_minus_one_over
_TABLE += [
    _mpi(
        "reduce-scatter",
        "MPIReduceScatter",
        halves.generic_rs_form,
        "ceil(lg p) alpha + n(p-1)/p beta + n(p-1)/p gamma",
        _HALF,
    ),
    Algorithm(
        name=RING.name,
        runner="dist_logreg.comm.collectives:RingReduceScatter",
        help="p-1 steps around a ring (the first half of the ring allreduce)",
        formula="(p-1) alpha + n(p-1)/p beta + n(p-1)/p gamma",
        phases=lambda p, node_of: halves.ring_reduce_scatter_phases(p),
        closed_form=halves.ring_rs_form,
        wire_factor=_HALF,
        collective="reduce-scatter",
    ),
    Algorithm(
        name="recursive-halving",
        runner="dist_logreg.comm.collectives:HalvingReduceScatter",
        help="exchanges of halving size at distance p/2, p/4, ... (Rabenseifner's first half)",
        formula=f"lg p alpha + n(p-1)/p beta + n(p-1)/p gamma {_FOLD_NOTE}",
        phases=lambda p, node_of: halves.halving_phases(p),
        closed_form=halves.halving_form,
        wire_factor=_HALF,
        collective="reduce-scatter",
    ),
    _mpi(
        "allgather",
        "MPIAllgather",
        halves.generic_ag_form,
        "ceil(lg p) alpha + n(p-1)/p beta",
        _HALF,
    ),
    Algorithm(
        name=RING.name,
        runner="dist_logreg.comm.collectives:RingAllgather",
        help="p-1 steps around a ring (the second half of the ring allreduce)",
        formula="(p-1) alpha + n(p-1)/p beta",
        phases=lambda p, node_of: halves.ring_allgather_phases(p),
        closed_form=halves.ring_ag_form,
        wire_factor=_HALF,
        collective="allgather",
    ),
    Algorithm(
        name=RECURSIVE_DOUBLING.name,
        runner="dist_logreg.comm.collectives:DoublingAllgather",
        help="exchanges of doubling size at distance 1, 2, 4, ... (Rabenseifner's second half)",
        formula=f"lg p alpha + n(p-1)/p beta {_FOLD_NOTE}",
        phases=lambda p, node_of: halves.doubling_allgather_phases(p),
        closed_form=halves.doubling_ag_form,
        wire_factor=_HALF,
        collective="allgather",
    ),
    _mpi(
        "broadcast",
        "MPIBroadcast",
        halves.generic_bcast_form,
        "ceil(lg p) alpha + n beta",
        lambda p: 1.0,
    ),
    _mpi(
        "alltoall",
        "MPIAlltoall",
        halves.generic_alltoall_form,
        "(p-1) alpha + n(p-1)/p beta (pairwise exchange)",
        _HALF,
    ),
]
#: Recursive halving's name (the reduce-scatter half of Rabenseifner's allreduce).
RECURSIVE_HALVING = get("recursive-halving", "reduce-scatter").name
#: Every collective's implementations, in registration order (bench --collective runs them).
IMPLEMENTATIONS = {c: names(c) for c in COLLECTIVES[1:]}
