"""Where a run came from: the ``run`` block of ``summary.json`` and of the bench JSON.

One small collective at start-up (every rank's host name, gathered by :func:`collect`);
everything else is read on rank 0 from this process: the time, the version, the command
line, the MPI library, numpy, the BLAS library and its threads, and on an emulated cluster
its topology and link settings, which the cluster launcher passes in the environment
variable :data:`~dist_logreg.protocol.CLUSTER_INFO_VAR` as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from datetime import UTC, datetime

from dist_logreg import __version__
from dist_logreg.protocol import CLUSTER_INFO_VAR

#: Environment variables that decide BLAS threads (reported when threadpoolctl is missing).
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: The key of the run block that names the MPI library (the library, not an algorithm).
MPI_KEY = "mpi"


def collect(comm, tag: str | None, argv: list[str] | None = None) -> dict | None:
    """Collective: the ``run`` block on rank 0 (None elsewhere).

    Call it at start-up, so ``started_utc`` is when the run started.
    """
    from mpi4py import MPI  # only MPI processes call this; the report never does

    started = datetime.now(UTC)
    hosts = comm.gather(socket.gethostname(), root=0)
    if comm.Get_rank() != 0:
        return None
    return describe(hosts, MPI.Get_library_version(), tag, argv, started)


def describe(
    hosts: list[str],
    library_version: str,
    tag: str | None,
    argv: list[str] | None = None,
    started: datetime | None = None,
    environ: dict | None = None,
) -> dict:
    """The ``run`` block from rank ``r``'s host name ``hosts[r]`` and what this process sees."""
    import numpy as np

    env = os.environ if environ is None else environ
    argv = list(sys.argv if argv is None else argv)
    per_host: dict[str, list[int]] = {}
    for rank, host in enumerate(hosts):
        per_host.setdefault(host, []).append(rank)
    lines = library_version.strip("\x00 \n").splitlines() or [""]
    return {
        "tag": tag,
        "started_utc": (started or datetime.now(UTC)).isoformat(timespec="seconds"),
        "dist_logreg_version": __version__,
        "command_line": argv,
        "world_size": len(hosts),
        "hosts": [{"name": h, "ranks": r} for h, r in per_host.items()],
        "ranks_per_host": sorted({len(r) for r in per_host.values()}),
        MPI_KEY: {"library": lines[0].strip(), "mpi4py": _version_of("mpi4py")},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(env),
        "cluster": cluster_info(env),
    }


def _version_of(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def blas_info(env) -> dict:
    """BLAS library and thread count: threadpoolctl when installed, else numpy's build info."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            keys = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
            return {
                "source": "threadpoolctl",
                "libraries": [{k: p.get(k) for k in keys} for p in pools],
            }
    import numpy as np

    build = {}
    try:
        build = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    except (TypeError, ValueError):  # numpy < 1.26 has no mode="dicts"
        pass
    return {
        "source": "numpy build configuration and environment (threadpoolctl not installed)",
        "libraries": [{"internal_api": build.get("name"), "version": build.get("version")}],
        "thread_vars": {v: env[v] for v in THREAD_VARS if v in env},
    }


def cluster_info(env) -> dict | None:
    """The emulated cluster's description from the launcher, or None outside one.

    A value that is not a JSON object is kept as text with the reason, never fatal: the
    record of where a run came from must not stop the run.
    """
    raw = env.get(CLUSTER_INFO_VAR)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {"unreadable": raw, "error": f"{CLUSTER_INFO_VAR}: not JSON ({exc})"}
    if not isinstance(doc, dict):
        return {"unreadable": raw, "error": f"{CLUSTER_INFO_VAR}: expected a JSON object"}
    return doc
