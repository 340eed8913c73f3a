"""Command line: ``dist-logreg train ...`` (and ``python -m dist_logreg``).

The only module that reads ``MPI.COMM_WORLD``. numpy and mpi4py are imported inside
:func:`main`, after the environment is set: BLAS thread counts must be fixed before numpy
loads, and MPI parameters before MPI starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from dist_logreg import __version__
from dist_logreg.config import FIELDS

#: One BLAS thread per rank unless the user says otherwise: data-parallel ranks already
#: fill the cores, and ranks x threads > cores made steps 8x slower here.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

TRAIN_EPILOG = """\
examples:
  mpirun -n 4 dist-logreg train                       # built-in synthetic data, 200 steps
  mpirun -n 3 dist-logreg train --features 65536 --dtype float32 --steps 50
  mpirun -n 2 dist-logreg train --data data.npz --epochs 5 --out runs/mine
  dist-logreg train --config run.toml --lr 0.1        # flags override the file

Config files are flat TOML with the option names as keys (batch_size = 512).
One BLAS thread per rank is used unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dist-logreg",
        description="Instrumented data-parallel logistic regression on numpy + mpi4py. "
        "Launch under mpirun; every rank runs the same command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser(
        "train",
        help="train on synthetic or file data, recording every allreduce",
        description="Data-parallel SGD: each rank computes the gradient sums of its slice of "
        "every global mini-batch, ONE in-place allreduce per step averages them, "
        "every rank applies the same step. Writes model.npz, summary.json, "
        "metrics.jsonl, steps.jsonl and config.json under --out.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # only flags actually given override the config
    )
    kinds = {
        "samples": int,
        "features": int,
        "batch_size": int,
        "steps": int,
        "epochs": float,
        "lr": float,
        "l2": float,
        "momentum": float,
        "seed": int,
        "log_every": int,
        "check_every": int,
    }
    for name, f in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        kwargs = {"help": _help_with_default(f), "type": kinds.get(name, str)}
        if name == "dtype":
            kwargs["choices"] = ("float32", "float64")
        metavar = {"data": "PATH", "out": "DIR", "label_column": "COLUMN"}.get(name)
        if metavar:
            kwargs["metavar"] = metavar
        train.add_argument(flag, dest=name, **kwargs)
    train.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read options from a flat TOML file; command-line flags win",
    )
    train.set_defaults(func=cmd_train)
    return parser


def _help_with_default(f) -> str:
    text = f.metadata["help"]
    if f.default is not None and "default" not in text:
        text += f" (default: {f.default})"
    return text.replace("%", "%%")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    from mpi4py import MPI  # starts MPI: after the environment is final

    comm = MPI.COMM_WORLD
    return run_guarded(comm, lambda: args.func(comm, args))


def run_guarded(comm, body) -> int:
    """Run ``body`` so that no rank is ever left waiting (DESIGN.md invariant 5).

    A ``UsageError`` is raised on all ranks together: rank 0 prints one line, everyone
    exits 2. Anything else may have hit one rank only while the others sit in a
    collective: that rank prints what happened and aborts the whole job.
    """
    from dist_logreg.errors import UsageError

    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        return body() or 0
    except UsageError as exc:
        if rank == 0:
            print(f"dist-logreg: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException as exc:  # noqa: BLE001 - includes KeyboardInterrupt: abort all ranks
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        traceback.print_exc(file=sys.stderr)
        what = (
            "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        )
        print(
            f"dist-logreg: error on rank {rank} of {size}: {what}; aborting all ranks",
            file=sys.stderr,
            flush=True,
        )
        if size > 1:
            comm.Abort(1)
        return 1


def cmd_train(comm, args: argparse.Namespace) -> int:
    """The ``train`` sub-command: config, data, train, report (collective)."""
    from dist_logreg import data as data_mod
    from dist_logreg.comm import Instrumented, MPIAllreduce
    from dist_logreg.config import load_toml, resolve, to_dict, total_steps
    from dist_logreg.errors import UsageError, raise_together
    from dist_logreg.report import (
        Reporter,
        gather_records,
        prepare_out_dir,
        summarize,
        write_outputs,
    )
    from dist_logreg.trainer import train

    cli_values = {k: v for k, v in vars(args).items() if k in FIELDS}
    file_values, error = {}, None
    try:  # every rank reads the file itself; they may disagree (a node without the file)
        if getattr(args, "config", None):
            file_values = load_toml(args.config)
        cfg = resolve(file_values, cli_values)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)

    out_dir = prepare_out_dir(comm, cfg.out)
    ds, error = None, None
    try:
        if cfg.data:
            ds = data_mod.load(cfg.data, cfg.dtype, cfg.label_column)
        else:
            ds = data_mod.synthetic(cfg.samples, cfg.features, cfg.seed, cfg.dtype)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)

    allreduce = Instrumented(MPIAllreduce(comm), capacity=total_steps(cfg, ds.n_samples))
    reporter = Reporter(comm.Get_rank())
    result = train(comm, allreduce, cfg, ds, reporter)

    per_rank = gather_records(comm, allreduce, result)
    error = None
    if comm.Get_rank() == 0:
        summary = summarize(per_rank, result, cfg, ds, allreduce.name)
        try:
            write_outputs(out_dir, summary, per_rank, result, to_dict(cfg))
        except OSError as exc:
            error = UsageError(f"--out {out_dir}: writing results failed: {exc}")
        else:
            reporter.finish(summary, out_dir)
    raise_together(comm, error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
