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
from pathlib import Path

from dist_logreg import __version__
from dist_logreg.config import ALGORITHMS, COMPRESSORS, FIELDS, MPI_ALGORITHMS

#: One BLAS thread per rank unless the user says otherwise: data-parallel ranks already
#: fill the cores, and ranks x threads > cores made steps 8x slower here.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

TRAIN_EPILOG = """\
examples:
  mpirun -n 4 dist-logreg train                       # built-in synthetic data, 200 steps
  mpirun -n 3 dist-logreg train --features 65536 --dtype float32 --steps 50
  mpirun -n 2 dist-logreg train --data data.npz --epochs 5 --out runs/mine
  dist-logreg train --config run.toml --lr 0.1        # flags override the file

study the communication:
  mpirun -n 3 dist-logreg train --allreduce ring --features 65536 --dtype float32
  mpirun -n 4 dist-logreg train --allreduce hierarchical --ranks-per-node 2
  mpirun -n 2 dist-logreg train --mpi-algorithm recursive-doubling
  mpirun -n 2 dist-logreg train --features 65536 --bucket-bytes 65536 --trace

survive faults:
  mpirun -n 3 dist-logreg train --checkpoint-every 50 --out runs/a --comm-timeout 30
  mpirun -n 2 dist-logreg train --checkpoint-every 50 --out runs/a --resume
  dist-logreg supervise --restarts 2 -- mpirun -n 3 dist-logreg train --out runs/a \\
      --checkpoint-every 50 --inject-fault kill:rank=1:step=120

Config files are flat TOML with the option names as keys (batch_size = 512).
One BLAS thread per rank is used unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set.
"""


BENCH_EPILOG = """\
examples:
  mpirun -n 2 dist-logreg bench                                   # mpi, 8 B .. 64 MiB
  mpirun -n 3 dist-logreg bench --allreduce mpi,ring,rabenseifner --max-bytes 1M --out b.json
  mpirun -n 4 dist-logreg bench --allreduce hierarchical --ranks-per-node 2
"""


SUPERVISE_EPILOG = """\
example:
  dist-logreg supervise --restarts 2 --min-ranks 2 -- \\
      mpirun -n 4 dist-logreg train --steps 500 --checkpoint-every 50 --out runs/sup \\
      --inject-fault kill:rank=1:step=120

The train command needs --out or --checkpoint-dir (restarts look for checkpoints there) and
should have --checkpoint-every. Injected faults fire on the first attempt only.
"""


CLUSTER_EPILOG = """\
example (as root):
  dist-logreg cluster up --hosts 2 --rate 1gbit
  dist-logreg cluster run --ranks-per-host 2 -- train --allreduce hierarchical --out runs/em
  dist-logreg cluster run -- bench --min-bytes 16M --max-bytes 16M
  dist-logreg cluster status
  dist-logreg cluster down
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
    choices = {
        "dtype": ("float32", "float64"),
        "allreduce": ALGORITHMS,
        "compress": COMPRESSORS,
        "mpi_algorithm": tuple(MPI_ALGORITHMS),
    }
    metavars = {
        "data": "PATH",
        "out": "DIR",
        "label_column": "COLUMN",
        "bucket_bytes": "N",
        "ranks_per_node": "K",
    }
    for name, f in FIELDS.items():
        kwargs = {"help": _help_with_default(f)}
        annotation = str(f.type)  # the type of the config field decides the flag's type
        if annotation == "bool":
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = float if "float" in annotation else int if "int" in annotation else str
        if name in choices:
            kwargs["choices"] = choices[name]
        if name in metavars:
            kwargs["metavar"] = metavars[name]
        train.add_argument("--" + name.replace("_", "-"), dest=name, **kwargs)
    train.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read options from a flat TOML file; command-line flags win",
    )
    train.set_defaults(func=cmd_train)

    bench = sub.add_parser(
        "bench",
        help="allreduce micro-benchmark: time, algbw, busbw and validation per size",
        description="Allreduce micro-benchmark in the style of OSU osu_allreduce and "
        "nccl-tests all_reduce_perf. For each algorithm and size, prints the mean time per "
        "call (avg/min/max over ranks), algbw, busbw and the number of wrong elements.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--allreduce",
        default="mpi",
        metavar="LIST",
        help="comma-separated algorithms among " + ", ".join(ALGORITHMS) + " (default: mpi)",
    )
    bench.add_argument(
        "--min-bytes", default="8", metavar="N", help="smallest message, e.g. 8, 4K (default: 8)"
    )
    bench.add_argument(
        "--max-bytes",
        default="64M",
        metavar="N",
        help="largest message, e.g. 1M, 64M (default: 64M)",
    )
    bench.add_argument(
        "--factor", type=int, default=2, help="size multiplier between rows (default: 2)"
    )
    bench.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64", help="element type"
    )
    bench.add_argument("--warmup", type=int, default=5, help="untimed calls per size (default: 5)")
    bench.add_argument(
        "--iters",
        type=int,
        default=50,
        help="timed calls per size, scaled down above 1 MiB (default: 50)",
    )
    bench.add_argument(
        "--ranks-per-node",
        type=int,
        metavar="K",
        help="for hierarchical: K consecutive ranks form a node (default: shared memory)",
    )
    bench.add_argument(
        "--mpi-algorithm",
        choices=tuple(MPI_ALGORITHMS),
        help="force the MPI library's own algorithm for 'mpi' (set before MPI starts)",
    )
    bench.add_argument("--out", metavar="FILE", help="also write the records as a JSON list")
    bench.set_defaults(func=cmd_bench)

    sup = sub.add_parser(
        "supervise",
        help="run a training job and restart it from its newest checkpoint when it fails",
        description="Runs COMMAND (an mpirun ... dist-logreg train ... line). When it fails "
        "(a rank killed, a node gone), runs it again with --resume, optionally on fewer "
        "ranks, until it completes or the restarts are spent. Reports each failure, each "
        "restart and the work lost. A job that rejects its input (exit status 2) is not "
        "restarted.",
        epilog=SUPERVISE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sup.add_argument(
        "--restarts", type=int, default=3, metavar="K", help="restarts at most (default: 3)"
    )
    sup.add_argument(
        "--min-ranks",
        type=int,
        metavar="M",
        help="restart on one rank fewer each time, but not below M (default: same ranks)",
    )
    sup.add_argument(
        "--attempt-timeout",
        type=float,
        metavar="SECONDS",
        help="kill an attempt that runs longer than this and count it as failed",
    )
    sup.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- mpirun -n P dist-logreg train ..."
    )
    sup.set_defaults(func=cmd_supervise)

    cl = sub.add_parser(
        "cluster",
        help="an emulated multi-host network on this machine (network namespaces, as root)",
        description="Emulated hosts on one Linux machine: each a network namespace joined to "
        "a bridge by a veth link, addresses in 198.18.0.0/15, links shaped with tc. mpirun "
        "starts ranks inside them through a launch agent; MPI traffic stays on the emulated "
        "links. Needs root, iproute2 (ip, tc) and unshare.",
        epilog=CLUSTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    clsub = cl.add_subparsers(dest="action", metavar="ACTION", required=True)
    name_help = "which emulated cluster (several can coexist on other subnets; default: dlr)"
    c_up = clsub.add_parser("up", help="create the hosts, links and bridges")
    c_up.add_argument("--hosts", type=int, default=2, help="emulated hosts (default: 2)")
    c_up.add_argument("--rate", metavar="RATE", help="shape every host link, e.g. 1gbit, 100mbit")
    c_up.add_argument("--delay", type=float, metavar="MS", help="added one-way delay (netem)")
    c_up.add_argument("--loss", type=float, metavar="PCT", help="packet loss in percent (netem)")
    c_up.add_argument(
        "--topology",
        choices=("flat", "two-tier"),
        default="flat",
        help="flat: one bridge; two-tier: hosts under leaf bridges whose uplinks to a spine "
        "bridge are shaped slower (default: flat)",
    )
    c_up.add_argument("--leaves", type=int, default=2, help="two-tier: leaf bridges (default: 2)")
    c_up.add_argument(
        "--uplink-rate",
        metavar="RATE",
        help="two-tier: leaf-to-spine rate (default: half of --rate, or 1gbit)",
    )
    c_up.add_argument(
        "--subnet",
        default="198.18.0.0/24",
        help="addresses of the hosts, inside 198.18.0.0/15 (default: 198.18.0.0/24)",
    )
    c_up.add_argument("--name", default="dlr", help=name_help)
    c_run = clsub.add_parser("run", help="run `train` or `bench` across the emulated hosts")
    c_run.add_argument(
        "--ranks-per-host", type=int, default=1, metavar="R", help="ranks per host (default: 1)"
    )
    c_run.add_argument(
        "--tcp-links",
        type=int,
        default=4,
        metavar="N",
        help="TCP connections per peer for MPI (btl_tcp_links); one gets about half a "
        "shaped link's rate, 4 nearly all of it (default: 4)",
    )
    c_run.add_argument("--name", default="dlr", help=name_help)
    c_run.add_argument("program", nargs=argparse.REMAINDER, help="-- train|bench ARGS...")
    c_status = clsub.add_parser("status", help="hosts, addresses and link shaping")
    c_status.add_argument("--name", default="dlr", help=name_help)
    c_down = clsub.add_parser("down", help="remove every namespace, link and bridge")
    c_down.add_argument("--name", default="dlr", help=name_help)
    cl.set_defaults(func=cmd_cluster)
    return parser


def run_plain(body) -> int:
    """For the sub-commands that are not MPI processes: a ``UsageError`` is one line, exit 2."""
    from dist_logreg.errors import UsageError

    try:
        return body()
    except UsageError as exc:
        print(f"dist-logreg: error: {exc}", file=sys.stderr, flush=True)
        return 2


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_supervise(args: argparse.Namespace) -> int:
    """The ``supervise`` sub-command: a plain process that (re)starts the MPI job."""
    from dist_logreg import supervise
    from dist_logreg.errors import UsageError

    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    def body() -> int:
        if args.restarts < 0:
            raise UsageError(f"--restarts: expected an integer >= 0, got {args.restarts}")
        return supervise.run(command, args.restarts, args.min_ranks, args.attempt_timeout, say=_say)

    return run_plain(body)


def cmd_cluster(args: argparse.Namespace) -> int:
    """The ``cluster`` sub-commands: plain processes that build networks and run mpirun."""
    from dist_logreg import cluster

    def body() -> int:
        if args.action == "up":
            c = cluster.up(
                args.name,
                args.hosts,
                args.subnet,
                args.topology,
                cluster.parse_rate(args.rate, "--rate"),
                cluster.parse_rate(args.uplink_rate, "--uplink-rate"),
                args.delay,
                args.loss,
                args.leaves,
                say=_say,
            )
            _say(cluster.status(c.name))
        elif args.action == "run":
            program = args.program[1:] if args.program[:1] == ["--"] else args.program
            return cluster.run(args.name, args.ranks_per_host, program, args.tcp_links, say=_say)
        elif args.action == "status":
            _say(cluster.status(args.name))
        else:
            cluster.down(args.name, say=_say)
        return 0

    return run_plain(body)


def cmd_bench(comm, args: argparse.Namespace) -> int:
    """The ``bench`` sub-command (collective)."""
    from dist_logreg import bench
    from dist_logreg.errors import UsageError, raise_together

    error = None
    try:
        args.min_bytes = bench.parse_bytes(args.min_bytes)
        args.max_bytes = bench.parse_bytes(args.max_bytes)
        _check_bench_args(args)
        mpi_record = mpi_algorithm_record(args.mpi_algorithm)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    return bench.run(comm, args, mpi_record)


def _check_bench_args(args: argparse.Namespace) -> None:
    from dist_logreg.errors import UsageError

    names = [a.strip() for a in args.allreduce.split(",") if a.strip()]
    unknown = [a for a in names if a not in ALGORITHMS]
    if not names or unknown:
        raise UsageError(
            f"--allreduce: expected a comma list of {', '.join(ALGORITHMS)}, got {args.allreduce!r}"
        )
    checks = [
        (args.min_bytes >= 1, "--min-bytes", "at least 1", args.min_bytes),
        (
            args.max_bytes >= args.min_bytes,
            "--max-bytes",
            f">= --min-bytes ({args.min_bytes})",
            args.max_bytes,
        ),
        (args.factor >= 2, "--factor", "an integer >= 2", args.factor),
        (args.iters >= 1, "--iters", "an integer >= 1", args.iters),
        (args.warmup >= 0, "--warmup", "an integer >= 0", args.warmup),
        (
            args.ranks_per_node is None or args.ranks_per_node >= 1,
            "--ranks-per-node",
            "an integer >= 1",
            args.ranks_per_node,
        ),
    ]
    for ok, flag, expected, got in checks:
        if not ok:
            raise UsageError(f"{flag}: expected {expected}, got {got!r}")


def _help_with_default(f) -> str:
    text = f.metadata["help"]
    if f.default not in (None, False) and "default" not in text:
        text += f" (default: {f.default})"
    return text.replace("%", "%%")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func in (cmd_supervise, cmd_cluster):  # not MPI processes: they launch them
        return args.func(args)
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    force_mpi_algorithm(_peek(args, "mpi_algorithm"))
    from mpi4py import MPI  # starts MPI: after the environment is final

    comm = MPI.COMM_WORLD
    return run_guarded(comm, lambda: args.func(comm, args))


def _peek(args: argparse.Namespace, name: str):
    """A setting needed before MPI starts: from the flags, else from --config (errors later)."""
    if vars(args).get(name) is not None:
        return vars(args)[name]
    if getattr(args, "config", None):
        from dist_logreg.config import load_toml
        from dist_logreg.errors import UsageError

        try:
            return load_toml(args.config).get(name)
        except UsageError:
            return None  # reported by every rank together once MPI runs
    return None


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


def mpi_algorithm_record(requested: str | None) -> dict:
    """What the outputs say about the MPI library's own algorithm (after MPI started).

    The library's choice cannot be read back from inside the application; what is recorded
    is the library and the setting in force when MPI started, whoever set it.
    """
    from mpi4py import MPI

    from dist_logreg.errors import UsageError

    library = MPI.Get_library_version().strip("\x00 \n").splitlines()[0].strip()
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
    from dist_logreg import checkpoint as ckpt
    from dist_logreg import data as data_mod
    from dist_logreg.comm import Instrumented, make_allreduce
    from dist_logreg.config import load_toml, resolve, to_dict, total_steps
    from dist_logreg.errors import UsageError, raise_together
    from dist_logreg.faults import Watchdog
    from dist_logreg.report import (
        PartialMetrics,
        Reporter,
        gather_records,
        prepare_out_dir,
        rescue,
        summarize,
        write_outputs,
    )
    from dist_logreg.trace import clock_offset, write_trace
    from dist_logreg.trainer import train

    cli_values = {k: v for k, v in vars(args).items() if k in FIELDS}
    file_values, error, mpi_record = {}, None, None
    try:  # every rank reads the file itself; they may disagree (a node without the file)
        if getattr(args, "config", None):
            file_values = load_toml(args.config)
        cfg = resolve(file_values, cli_values)
        if cfg.allreduce == "mpi":
            mpi_record = mpi_algorithm_record(cfg.mpi_algorithm)
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

    rank = comm.Get_rank()
    reporter = Reporter(rank)
    steps = total_steps(cfg, ds.n_samples)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else out_dir / "checkpoints"
    expected = ckpt.trajectory(cfg, ds)
    start = None
    if cfg.resume:  # rank 0 reads and verifies; everyone gets the same state
        error = None
        if rank == 0:
            try:
                start = ckpt.newest_valid(ckpt_dir, reporter.warn)
                if start is not None:
                    ckpt.check_compatible(start, expected)
            except ckpt.CheckpointError as exc:
                error = UsageError(f"--resume: {exc}")
        raise_together(comm, error)
        start = comm.bcast(start, root=0)
        reporter.say(
            f"resuming from {start.path} (after step {start.step})"
            if start
            else f"--resume: no checkpoint in {ckpt_dir}; starting from step 0"
        )
    checkpointer = None
    if cfg.checkpoint_every:
        spe = ds.n_samples // cfg.batch_size
        meta = {
            "trajectory": expected,
            "world_size": comm.Get_size(),
            "sampler": {
                "kind": "global permutation per epoch from (seed, epoch)",
                "seed": cfg.seed,
                "steps_per_epoch": spe,
            },
            "rng": "none beyond the sampler's (seed, epoch)",
        }
        checkpointer = ckpt.Checkpointer(rank, ckpt_dir, cfg.keep_checkpoints, meta, reporter.warn)

    inner = make_allreduce(cfg.allreduce, comm, cfg.ranks_per_node, cfg.compress, cfg.batch_size)
    buckets = -(-(ds.n_features + 3) * 8 // cfg.bucket_bytes) if cfg.bucket_bytes else 1
    allreduce = Instrumented(inner, capacity=steps * buckets)
    clock = clock_offset(comm) if cfg.trace else (0, 0)
    watchdog = Watchdog(comm, cfg.comm_timeout) if cfg.comm_timeout else None
    partial = PartialMetrics(out_dir, rank, start.step if start else 0, reporter.warn)
    try:
        result = train(
            comm,
            allreduce,
            cfg,
            ds,
            reporter,
            start,
            checkpointer,
            watchdog,
            flush=lambda: partial.flush(allreduce),
        )
        per_rank = gather_records(comm, allreduce, result, clock)
    finally:
        if watchdog:
            watchdog.close()
    error = None
    if rank == 0:
        info = {"algorithm": inner.name, "node_of": inner.node_of, "mpi_algorithm": mpi_record}
        summary, traffic = summarize(per_rank, result, cfg, ds, info)
        try:
            if cfg.trace:
                sync = write_trace(
                    out_dir / "trace.json", per_rank, inner.name, cfg.bucket_bytes > 0
                )
                summary["trace"] = {"file": "trace.json", "clock_sync": sync}
            write_outputs(out_dir, summary, traffic, per_rank, result, to_dict(cfg))
        except OSError as exc:
            saved = rescue(summary, result, exc)
            error = UsageError(
                f"--out {out_dir}: writing results failed: {exc.strerror or exc}; "
                f"the model and summary were saved to {saved} instead"
            )
        else:
            reporter.finish(summary, out_dir)
    raise_together(comm, error)
    partial.remove()  # metrics.jsonl now holds everything this run measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
