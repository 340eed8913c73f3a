"""Train, but make the gradient math raise on the LAST rank only, at step 3.

The other ranks are then waiting in the step's allreduce: the job must still end promptly
(the failing rank aborts everyone) and say which rank failed.
"""

import sys

from mpi4py import MPI

from dist_logreg import cli
from dist_logreg.train import model

real = model.grad_sums
calls = 0


def flaky(*args, **kwargs):
    global calls
    calls += 1
    comm = MPI.COMM_WORLD
    if comm.Get_rank() == comm.Get_size() - 1 and calls == 4:
        raise RuntimeError("simulated failure in the gradient")
    return real(*args, **kwargs)


model.grad_sums = flaky
sys.exit(cli.main(sys.argv[1:]))
