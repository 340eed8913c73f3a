"""What ``bench`` records for the cost model, and the model's columns in its table.

Next to each allreduce size: where the ranks sat (host names, rank -> host), the MPI library,
and the local reduction time of that size (``np.add`` of two buffers: ``gamma``, which the
allreduce times alone cannot separate from ``beta``). ``--model`` adds the predicted time and
measured/predicted; ``--fit`` fits a model right after the sweep.
"""

from __future__ import annotations

import json
from time import perf_counter_ns

import numpy as np
from mpi4py import MPI

from dist_logreg.collective import costfile
from dist_logreg.collective.benchfit import fit_records, format_fit, placement_of, record_key
from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import write_output

#: Above this size, fewer reduction iterations (as for the allreduces).
LARGE = 1 << 20
HEADER = f" {'pred(us)':>10} {'meas/pred':>9}"


def host_names(comm) -> tuple[list[str], list[int]]:
    """Collective: the distinct host names in order of first rank, and each rank's host."""
    names = comm.allgather(MPI.Get_processor_name())
    hosts = list(dict.fromkeys(names))
    return hosts, [hosts.index(n) for n in names]


def where(comm, ranks_per_node: int | None) -> dict:
    """Collective: the keys every bench record gets about where it ran."""
    hosts, host_of = host_names(comm)
    return {
        "hosts": hosts,
        "host_of_rank": host_of,
        "ranks_per_node": ranks_per_node,
        "mpi_library": MPI.Get_library_version().splitlines()[0].strip(),
    }


def measure_reduce(comm, nbytes: int, dtype, iters: int) -> float:
    """Collective: mean seconds of ``np.add(a, b, out=a)`` on ``nbytes``, averaged over ranks."""
    dtype = np.dtype(dtype)
    count = max(1, nbytes // dtype.itemsize)
    a, b = np.ones(count, dtype=dtype), np.ones(count, dtype=dtype)
    if nbytes > LARGE:
        iters = max(3, int(iters * LARGE / nbytes))
    np.add(a, b, out=a)  # warm: first touch of the pages
    t0 = perf_counter_ns()
    for _ in range(iters):
        np.add(a, b, out=a)
    mean = (perf_counter_ns() - t0) * 1e-9 / iters
    return float(np.mean(comm.allgather(mean)))


def load_model(path: str | None, algorithms: list[str]) -> dict | None:
    """``--model FILE`` for bench: the model, which must fit at least one benched algorithm."""
    if not path:
        return None
    model = costfile.load(path)
    if not set(algorithms) & set(model["algorithms"]):
        raise UsageError(
            f"--model {path}: expected a fit of one of {', '.join(algorithms)}, "
            f"got fits of {', '.join(model['algorithms'])}"
        )
    return model


def compare(model: dict, rec: dict) -> dict:
    """``predicted_s`` and ``measured_over_predicted`` of one bench record (None: no fit)."""
    name = record_key(rec)  # reduce-scatter/ring beyond allreduce
    if name not in model["algorithms"] or rec["world_size"] < 2:
        return {"predicted_s": None, "measured_over_predicted": None}
    pred = costfile.predict(model, name, rec["bytes"], placement_of(rec))["time_s"]
    return {
        "predicted_s": pred,
        "measured_over_predicted": rec["time_s"] / pred if pred > 0 else None,
    }


def format_cols(rec: dict) -> str:
    if rec.get("predicted_s") is None:
        return f" {'-':>10} {'-':>9}"
    return f" {rec['predicted_s'] * 1e6:>10.2f} {rec['measured_over_predicted']:>9.2f}"


def fit_after_sweep(comm, records: list[dict], path: str, say, force: bool = False) -> None:
    """Collective: rank 0 fits the sweep and writes ``path`` (files.write_output: never over
    another file without ``--force``); errors end all ranks together."""
    error = None
    if comm.Get_rank() == 0:
        try:
            model = fit_records(records)
            text = json.dumps(model, indent=2, allow_nan=False) + "\n"  # non-finite: a bug
            write_output(path, text, "--fit", force)
            for line in format_fit(model):
                say(line)
            say(f"# wrote {path}")
        except UsageError as exc:
            error = UsageError(f"--fit: {exc}")
        except OSError as exc:
            error = UsageError(f"--fit {path}: cannot write: {exc.strerror or exc}")
    raise_together(comm, error)
