"""Train, but make the LAST rank misbehave: ``one_rank.py ACTION train ...``.

ACTION is what that rank does:

- ``raise``: the gradient math raises at step 3 (the others wait in the step's allreduce);
- ``interrupt``: it gets SIGINT (Ctrl-C) at step 3;
- ``stop-init``: it stops (SIGSTOP) before ``MPI_Init`` (the others wait inside it);
- ``stop-data``: it stops while loading the data (the others wait in the start-up agreement).

The job must still end promptly, saying which rank failed and how. A stopped process runs
nothing, not even its own watchdog: the other ranks' ``--comm-timeout`` must end the job.
"""

import os
import signal
import sys

action = sys.argv.pop(1)
size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
last = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")) == size - 1

if action == "stop-init" and last and size > 1:
    os.kill(os.getpid(), signal.SIGSTOP)

from dist_logreg import cli  # noqa: E402
from dist_logreg.train import binary as model  # noqa: E402
from dist_logreg.train import data  # noqa: E402

real_grad, real_synthetic = model.grad_sums, data.synthetic
calls = 0


def grad_sums(*args, **kwargs):
    global calls
    calls += 1
    if calls == 4:  # step 3
        if action == "raise":
            raise RuntimeError("simulated failure in the gradient")
        os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C would
    return real_grad(*args, **kwargs)


def synthetic(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGSTOP)
    return real_synthetic(*args, **kwargs)


if last and action in ("raise", "interrupt"):
    model.grad_sums = grad_sums
if last and size > 1 and action == "stop-data":
    data.synthetic = synthetic
sys.exit(cli.main(sys.argv[1:]))
