"""Starting and stopping MPI so that other Python threads keep running meanwhile.

``MPI_Init`` and ``MPI_Finalize`` wait for every rank (Open MPI runs a PMIx fence in
both), so one rank stopped there holds up all the others. mpi4py calls them with the GIL
held, which freezes every Python thread of the process, the ``--comm-timeout`` watchdog
included. Called through ``ctypes`` instead, they release the GIL (ctypes does for every
foreign call), and the watchdog can end the job. mpi4py then sees an initialized MPI and
works as usual; the error handlers it would have set are set here.
"""

from __future__ import annotations

import ctypes


def _library(MPI):
    """The MPI library behind mpi4py (its extension module resolves the MPI symbols)."""
    try:
        return ctypes.CDLL(MPI.__file__)
    except (OSError, AttributeError):
        return None


def init_mpi():
    """Start MPI with ``MPI_THREAD_MULTIPLE``, the GIL released; returns ``mpi4py.MPI``.

    Falls back to mpi4py's own call where the symbol cannot be reached, and does nothing
    if MPI already runs (a script that imported ``mpi4py.MPI`` first).
    """
    import mpi4py

    mpi4py.rc.initialize = False  # before mpi4py.MPI is imported: we call MPI_Init ourselves
    mpi4py.rc.finalize = True  # at exit, if nobody did (an early exit must still finalize)
    from mpi4py import MPI

    if MPI.Is_initialized():
        return MPI
    lib = _library(MPI)
    call = getattr(lib, "MPI_Init_thread", None) if lib is not None else None
    if call is None:
        MPI.Init_thread(MPI.THREAD_MULTIPLE)
    else:
        call.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        provided = ctypes.c_int(0)
        code = call(None, None, MPI.THREAD_MULTIPLE, ctypes.byref(provided))
        if code != 0:
            raise RuntimeError(f"MPI_Init_thread failed with MPI error code {code}")
    # As mpi4py does when it starts MPI itself: MPI errors become Python exceptions.
    for comm in (MPI.COMM_SELF, MPI.COMM_WORLD):
        comm.Set_errhandler(MPI.ERRORS_RETURN)
    return MPI


def finalize_mpi(MPI) -> None:
    """``MPI_Finalize`` with the GIL released (once; later calls do nothing)."""
    if MPI.Is_finalized():
        return
    lib = _library(MPI)
    call = getattr(lib, "MPI_Finalize", None) if lib is not None else None
    if call is None:
        MPI.Finalize()
    else:
        call()
