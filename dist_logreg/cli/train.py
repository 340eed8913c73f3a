"""``dist-logreg train``: its flags (generated from the config) and its entry."""

from __future__ import annotations

import argparse

from dist_logreg.errors import exit_status_help
from dist_logreg.train.options import add_arguments

TRAIN_EPILOG = """\
examples (--oversubscribe: more ranks than cores, as on a laptop):
  mpirun -n 4 --oversubscribe dist-logreg train       # built-in synthetic data, 200 steps
  mpirun -n 3 --oversubscribe dist-logreg train --features 65536 --dtype float32 --steps 50
  mpirun -n 2 dist-logreg train --data data.npz --epochs 5 --out runs/mine
  dist-logreg train --config run.toml --lr 0.1        # flags override the file

models, sparse data, held-out rows (LIBSVM needs: pip install 'dist-logreg[sparse]'):
  mpirun -n 2 dist-logreg train --classes 10 --features 4096   # softmax: 10 x 4097 + 2 numbers
  mpirun -n 3 --oversubscribe dist-logreg train --data train.svm --val-data val.svm --eval-every 50
  mpirun -n 2 dist-logreg train --data train.csv --val-fraction 0.1 --out runs/a
  dist-logreg predict --model runs/a --data test.csv --out preds.csv

study the communication:
  mpirun -n 3 --oversubscribe dist-logreg train --allreduce ring --features 65536 --dtype float32
  mpirun -n 4 --oversubscribe dist-logreg train --allreduce hierarchical --ranks-per-node 2
  mpirun -n 2 dist-logreg train --mpi-algorithm recursive-doubling
  mpirun -n 2 dist-logreg train --features 65536 --bucket-bytes 65536 --trace
  mpirun -n 4 --oversubscribe dist-logreg train --model auto   # predicted vs measured

read less, hold less, scale:
  mpirun -n 2 dist-logreg train --shuffle blocks     # contiguous batches: nothing gathered
  mpirun -n 4 --oversubscribe dist-logreg train --sampling sharded --data 'parts/part-{rank}.npz'
  dist-logreg scale --ranks 1,2,4 --oversubscribe -- train --features 4096

survive faults:
  mpirun -n 3 --oversubscribe dist-logreg train --checkpoint-every 50 --out runs/a --comm-timeout 30
  mpirun -n 2 dist-logreg train --checkpoint-every 50 --out runs/a --resume
  dist-logreg supervise --restarts 2 -- mpirun -n 3 --oversubscribe dist-logreg train \\
      --out runs/a --checkpoint-every 50 --inject-fault kill:rank=1:step=120

Config files are flat TOML with the option names as keys (batch_size = 512).
Every rank must get the same settings and data: ranks that disagree stop at start-up with
one line naming the setting and the ranks. --comm-timeout covers every collective, from
MPI_Init to the last write. Data and config must be regular files (a FIFO would block).
One BLAS thread per rank is used unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set.
"""


def add_parser(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train on synthetic or file data, recording every allreduce",
        description="Data-parallel SGD: each rank computes the gradient sums of its slice of "
        "every global mini-batch, ONE in-place allreduce per step averages them, "
        "every rank applies the same step. Writes model.npz, summary.json, "
        "metrics.jsonl, steps.jsonl and config.json under --out.",
        epilog=TRAIN_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # only flags actually given override the config
    )
    add_arguments(train)
    train.set_defaults(func=cmd, mpi=True)


def cmd(comm, args: argparse.Namespace, watchdog=None) -> int:
    """Collective: one training run."""
    from dist_logreg.train.run import run

    return run(comm, args, watchdog)
