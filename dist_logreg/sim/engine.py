"""The engine table: one record per simulator, read by the command line and the runner.

A record names the class as ``"module:Class"``, imported only by :func:`get_engine` (the
packet engine needs ns-3, an optional extra), and the option group it takes (``None``:
only the common options). Every engine implements :class:`~dist_logreg.sim.job.Engine`
(``run(job) -> Result``).

>>> from dist_logreg.sim import engine
>>> engine.names()
('flow', 'packet')
>>> get_engine("flow").run(Job(fab, place(8, fab), ALG, 1 << 20))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from dist_logreg.errors import UsageError
from dist_logreg.sim.job import Engine


@dataclass(frozen=True)
class EngineRecord:
    """``name`` (``--engine``), ``cls`` (``"module:Class"``), ``help`` (its ``--help``
    phrase), ``options`` (the module of its option group, or None), ``event_by_event``
    (always plays the dependency graph, as ``--exact`` does), ``extra`` (the pip extra its
    import needs)."""

    name: str
    cls: str
    help: str
    options: str | None = None
    event_by_event: bool = False
    extra: str = ""


#: The engine table (tests may add a record).
ENGINES = {
    e.name: e
    for e in (
        EngineRecord("flow", "dist_logreg.sim.flow:FlowEngine", "flow (default)"),
        EngineRecord(
            "packet",
            "dist_logreg.sim.packet:PacketEngine",
            "packet (ns-3)",
            options="dist_logreg.sim.packet_options",
            event_by_event=True,
            extra="packet",
        ),
    )
}


def names() -> tuple[str, ...]:
    return tuple(ENGINES)


def get(name: str) -> EngineRecord:
    if name not in ENGINES:
        raise UsageError(f"--engine: expected one of {' or '.join(ENGINES)}, got {name!r}")
    return ENGINES[name]


def get_engine(name: str) -> Engine:
    """A new engine of the record ``name``; without its extra a ``UsageError`` names it."""
    rec = get(name)
    module, _, cls = rec.cls.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(
            f"--engine {name} needs ns-3: pip install -e '.[{rec.extra}]' ({exc})"
        ) from None
    return getattr(mod, cls)()
