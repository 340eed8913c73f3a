"""The instrumentation wrapper: same results, complete records, cheap storage."""

import numpy as np
from mpi4py import MPI

from dist_logreg.collective.closed_form import busbw_factor
from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.comm.wrappers import Instrumented


def test_instrumented_is_bit_identical_and_records_every_call():
    bare, wrapped = MPIAllreduce(MPI.COMM_SELF), Instrumented(MPIAllreduce(MPI.COMM_SELF), 2)
    rng = np.random.default_rng(0)
    for step in range(5):  # more calls than the initial capacity: storage grows
        a = rng.standard_normal(37)
        b = a.copy()
        bare.allreduce(a)
        wrapped.allreduce(b, step)
        np.testing.assert_array_equal(a, b)
    rec = wrapped.records()
    assert wrapped.calls == 5 and wrapped.name == "mpi"
    np.testing.assert_array_equal(rec["step"], np.arange(5))
    np.testing.assert_array_equal(rec["bytes"], np.full(5, 37 * 8))
    assert np.all(rec["ns"] > 0)
    assert np.all(np.diff(rec["start_ns"]) > 0)


def test_busbw_factor():
    assert busbw_factor(1) == 0.0
    assert busbw_factor(2) == 1.0
    assert busbw_factor(4) == 1.5
