"""The C++ half of the packet engine: compiles its files once per process with cppyy.

The C++ lives in files shipped with the package (``pyproject.toml``'s package data), so
it can be formatted, linted and compiled on its own:

================================  ==========================================================
``sim/ns3driver.h``               ``dlr::Transport``: what a transport implements
``sim/pfc.cc``                    ``dlr::PfcQueue``: a switch port's queue, PFC and RED/ECN
``sim/switch.cc``                 ``dlr::TableRouting``: forwarding by table lookup, O(1) a
                                  packet: pinned paths, per-flow ECMP hash salted per switch
                                  (or polarized), per-packet spraying
``sim/ns3driver.cc``              ``dlr::Reset`` and ``dlr::Net``: the network, the routes,
                                  the messages and their dependencies (transport-agnostic)
``sim/transports/<name>.cc``      a transport's own class (``dlr::TcpTransport``); each
                                  record of :mod:`.transports.table` lists its files
================================  ==========================================================

:func:`load` imports ns-3 (about 20 s; ``from ns import ns`` includes every ns-3 module's
header in cppyy) and compiles the driver the first time it is called in a process; later
calls compile only the files of transports registered since (a file is compiled once) and
return the same namespace. ``ns3net.run`` calls it on every run (so the first run pays the
import); the tests and the benchmarks call it up front to pay it before timing anything.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The driver's own files, in the order they are compiled.
DRIVER = ("ns3driver.h", "pfc.cc", "switch.cc", "ns3driver.cc")

_LOADED: dict = {}


@contextlib.contextmanager
def _in_wheel_dir():
    """The working directory is the ns3 wheel's own folder while ns-3 loads.

    The wheel's loader globs every shared library under the working directory, recursively:
    from ``/`` that walks the whole file system, and from a folder holding another ns-3 tree
    it finds two builds of each module ("multiple build profiles"). Its own folder is
    searched anyway, so nothing is lost.
    """
    spec = importlib.util.find_spec("ns3")
    where = list(spec.submodule_search_locations or []) if spec else []
    if not where:
        yield
        return
    here = os.getcwd()
    os.chdir(where[0])
    try:
        yield
    finally:
        os.chdir(here)


def sources(extra=()) -> list[Path]:
    """The C++ files :func:`load` compiles: the driver's, then every registered transport's."""
    from dist_logreg.sim.transports import table

    names = list(DRIVER) + [s for t in table.all_records() for s in t.sources] + list(extra)
    return [HERE / n for n in dict.fromkeys(names)]


def load(extra=()):
    """Import ns-3 and compile every file of :func:`sources` not compiled yet in this process.

    ``extra``: more files (paths relative to ``sim/``). Returns the ``cppyy.gbl`` namespace
    holding ``ns3`` and ``dlr``.
    """
    with _without_cling_notices():
        if "gbl" not in _LOADED:
            import cppyy

            with _in_wheel_dir():
                from ns import ns  # noqa: F401  (loads every ns-3 module into cppyy)

            cppyy.add_include_path(str(HERE))
            _LOADED.update(gbl=cppyy.gbl, cppyy=cppyy, done=set())
        done, cppyy = _LOADED["done"], _LOADED["cppyy"]
        for path in sources(extra):
            if path not in done:
                if not path.is_file():
                    raise FileNotFoundError(f"packet engine: the C++ file {path} is missing")
                cppyy.include(str(path))
                done.add(path)
    return _LOADED["gbl"]


#: What cling prints on every load of the ns-3 wheel although nothing failed: its JIT
#: cannot materialise a few static initialisers of ns-3's headers that the libraries
#: already ran. Dropped from standard error; every other line is kept.
CLING_NOTICE = "[runStaticInitializersOnce]: Failed to materialize symbols"


@contextlib.contextmanager
def _without_cling_notices():
    """Standard error (file descriptor 2, where cling writes) into a temporary file while
    ns-3 loads, then back, with every line but :data:`CLING_NOTICE`'s written on."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no standard error to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().splitlines(True) if CLING_NOTICE.encode() not in ln]
            if kept:
                os.write(2, b"".join(kept))
