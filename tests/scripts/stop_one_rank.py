"""Train, but SIGSTOP the LAST rank at a start-up point: ``stop_one_rank.py WHERE train ...``.

WHERE is ``init`` (before MPI_Init: the others wait inside it) or ``data`` (while loading
the data: the others wait in the start-up agreement). A stopped process runs nothing, not
even its own watchdog; the other ranks' ``--comm-timeout`` must end the job.
"""

import os
import signal
import sys

where = sys.argv.pop(1)
size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
last = rank == size - 1 and size > 1

if where == "init" and last:
    os.kill(os.getpid(), signal.SIGSTOP)

from dist_logreg import cli  # noqa: E402
from dist_logreg.train import data  # noqa: E402

real = data.synthetic


def stopping(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGSTOP)
    return real(*args, **kwargs)


if where == "data" and last:
    data.synthetic = stopping
sys.exit(cli.main(sys.argv[1:]))
