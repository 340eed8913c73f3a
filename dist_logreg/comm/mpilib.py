"""The MPI library's own allreduce algorithm: force it before MPI starts, record it after.

Pure Python (no mpi4py import): forcing must happen before MPI starts, and the record is
built from the library version string the caller read.
"""

from __future__ import annotations

import os

from dist_logreg.collective.algorithms import MPI_ALGORITHMS
from dist_logreg.errors import UsageError


def force_mpi_algorithm(name: str | None) -> None:
    """Make the MPI library use allreduce algorithm ``name``: must run before MPI starts.

    Sets both Open MPI's coll_tuned parameters and MPICH's CVAR; each library reads only its
    own. :func:`mpi_algorithm_record` later says which one applied.
    """
    if name not in MPI_ALGORITHMS:
        return  # None, or a bad name that validation reports
    ompi, mpich = MPI_ALGORITHMS[name]
    os.environ["OMPI_MCA_coll_tuned_use_dynamic_rules"] = "1"
    os.environ["OMPI_MCA_coll_tuned_allreduce_algorithm"] = str(ompi)
    if mpich:
        os.environ["MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM"] = mpich


def library_name(version: str) -> str:
    """The first line of ``MPI.Get_library_version()``."""
    return version.strip("\x00 \n").splitlines()[0].strip()


def mpi_algorithm_record(requested: str | None, library_version: str) -> dict:
    """What the outputs say about the MPI library's own algorithm (after MPI started).

    The library's choice cannot be read back from inside the application; what is recorded
    is the library and the setting in force when MPI started, whoever set it.
    """
    library = library_name(library_version)
    record = {"library": library, "requested": requested, "forced": None}
    if "Open MPI" in library:
        value = os.environ.get("OMPI_MCA_coll_tuned_allreduce_algorithm")
        if value and os.environ.get("OMPI_MCA_coll_tuned_use_dynamic_rules") == "1":
            names = {str(v[0]): k for k, v in MPI_ALGORITHMS.items()}
            record["forced"] = names.get(value, f"coll_tuned algorithm {value}")
            record["setting"] = (
                "OMPI_MCA_coll_tuned_use_dynamic_rules=1 "
                f"OMPI_MCA_coll_tuned_allreduce_algorithm={value}"
            )
        else:
            record["setting"] = "library default: coll_tuned's decision rules, per call"
    elif "MPICH" in library or "MVAPICH" in library:
        if requested and not MPI_ALGORITHMS[requested][1]:
            offered = [k for k, v in MPI_ALGORITHMS.items() if v[1]]
            raise UsageError(
                f"--mpi-algorithm: expected one MPICH offers ({', '.join(offered)}), "
                f"got {requested!r}"
            )
        value = os.environ.get("MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM")
        record["forced"] = value
        record["setting"] = f"MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM={value}" if value else "default"
    else:
        record["setting"] = "unknown MPI library: --mpi-algorithm has no effect"
        if requested:
            raise UsageError(f"--mpi-algorithm: not supported with {library}")
    return record
