"""``dist-logreg predict``: classes and probabilities of a trained model, per row."""

from __future__ import annotations

import argparse

from dist_logreg.errors import exit_status_help
from dist_logreg.train.config import FORMATS

PREDICT_EPILOG = """\
examples:
  dist-logreg predict --model runs/mine --data test.csv --out preds.csv
  dist-logreg predict --model runs/mine > preds.csv       # the run's own training data
  mpirun -n 4 --oversubscribe dist-logreg predict --model runs/big --data test.svm --out preds.csv

The CSV has a header: label, then p_<class> for each class of the model, one row per data
row in file order. With labels in the data, the mean log-loss and the accuracy are printed
(to stderr when the CSV goes to stdout). Labels are optional: an .npz without y, a folder
without y.npy, a single X.npy, or a CSV with exactly as many columns as the model has
features.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict classes and probabilities with a trained model",
        description="Load model.npz from a train run's --out directory and predict every row "
        "of a data file (default: the run's own training data, from its config.json). Under "
        "mpirun each rank predicts a contiguous share of the rows; rank 0 writes them in order.",
        epilog=PREDICT_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a train run's output directory (or its model.npz)",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="rows to predict, in any form train accepts (labels optional); default: the "
        "run's training data",
    )
    p.add_argument(
        "--out",
        metavar="FILE.csv",
        help="where the CSV goes (default: standard output): a new file, written whole or "
        "not at all (a temporary file beside it, renamed once every row is in)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file (default: refuse, so one prediction never "
        "overwrites another's results; a symbolic link there is replaced, not followed)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="auto (by the file name) or svmlight (LIBSVM text whatever the name)",
    )
    p.add_argument(
        "--label-column",
        metavar="COLUMN",
        help="CSV only: the label column, by header name or 0-based index (default: y or "
        "label, else the last column when there is one more column than features)",
    )
    p.set_defaults(func=cmd, mpi=True)


def cmd(comm, args: argparse.Namespace, watchdog=None) -> int:
    """Collective: predict every row."""
    from dist_logreg.train.predict import run

    return run(comm, args)
