"""``dist-logreg bench``: its flags and its entry."""

from __future__ import annotations

import argparse

from dist_logreg.collective import algorithms as table
from dist_logreg.collective.algorithms import COLLECTIVES, IMPLEMENTATIONS, MPI_ALGORITHMS
from dist_logreg.errors import UsageError, exit_status_help, raise_together
from dist_logreg.files import check_output, distinct_outputs, not_an_input
from dist_logreg.units import parse_bytes, whole_arg

BENCH_EPILOG = """\
examples (--oversubscribe: more ranks than cores, as on a laptop):
  mpirun -n 2 dist-logreg bench                                   # mpi, 8 B .. 64 MiB
  mpirun -n 3 --oversubscribe dist-logreg bench --allreduce mpi,ring,rabenseifner \\
      --max-bytes 1M --out b.json
  mpirun -n 4 --oversubscribe dist-logreg bench --allreduce hierarchical --ranks-per-node 2
  mpirun -n 2 dist-logreg bench --allreduce ring,rabenseifner --max-bytes 4M --fit model.json
  mpirun -n 2 dist-logreg bench --allreduce ring --model model.json   # measured vs predicted
  mpirun -n 2 dist-logreg bench --collective reduce-scatter,allgather --max-bytes 1M --csv b.csv
  mpirun -n 2 dist-logreg bench --max-bytes 1K --iters 200 --repeats 5   # 95% CI of the mean
  mpirun -n 4 --oversubscribe dist-logreg bench --p2p latency,bw --pairs 0:1,0:2 --max-bytes 1M
"""


def _impls() -> str:
    return "; ".join(f"{c}: {', '.join(v)}" for c, v in IMPLEMENTATIONS.items())


def add_parser(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="collective and point-to-point micro-benchmarks: time, algbw, busbw, validation",
        description="Collective micro-benchmarks in the style of the OSU micro-benchmarks "
        "and nccl-tests. For each collective, implementation and size: avg, p50, p99, min "
        "and max over iterations (one iteration = the slowest rank's time), the iteration "
        "count, a 95% confidence interval of the mean with --repeats, algbw, busbw (the "
        "nccl-tests factor of the collective) and the number of elements that differ from "
        "the exact result; a closing line names the fastest implementation per size. "
        "--p2p measures point-to-point latency or bandwidth between chosen rank pairs.",
        epilog=BENCH_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _what_to_measure(bench)
    _sizes_and_timing(bench)
    _placement_and_outputs(bench)
    bench.set_defaults(func=cmd, mpi=True)


def _what_to_measure(bench) -> None:
    """--allreduce, --collective, --p2p, --pairs, --window."""
    bench.add_argument(
        "--allreduce",
        default=table.DEFAULT,
        metavar="LIST",
        help="comma-separated algorithms among "
        + ", ".join(table.names())
        + f" (default: {table.DEFAULT}); {table.HIERARCHICAL_2D.name}:INTER runs INTER "
        "across nodes (" + ", ".join(table.INTER_CHOICES) + ")",
    )
    bench.add_argument(
        "--collective",
        default="allreduce",
        metavar="LIST",
        help="comma-separated collectives among " + ", ".join(COLLECTIVES) + " (default: "
        "allreduce). allreduce runs the --allreduce algorithms; the others run every "
        "implementation they have (" + _impls() + ")",
    )
    bench.add_argument(
        "--p2p",
        metavar="LIST",
        help="instead of collectives: point-to-point tests among latency (ping-pong, half "
        "the round trip), bw (a window of non-blocking sends one way), bibw (both ways)",
    )
    bench.add_argument(
        "--pairs",
        metavar="A:B,...",
        help="for --p2p: the rank pairs to measure, one pair at a time while the other "
        "ranks wait (default: 0:1)",
    )
    bench.add_argument(
        "--window",
        type=whole_arg,
        default=64,
        help="for --p2p bw/bibw: messages in flight per iteration (default: 64, as OSU)",
    )


def _sizes_and_timing(bench) -> None:
    """Sizes, element type, warm-up, iterations, repeats."""
    bench.add_argument(
        "--min-bytes", default="8", metavar="N", help="smallest message, e.g. 8, 4K (default: 8)"
    )
    bench.add_argument(
        "--max-bytes",
        default="64M",
        metavar="N",
        help="largest message, included even when not a power of --factor times "
        "--min-bytes, e.g. 1M, 64M (default: 64M)",
    )
    bench.add_argument(
        "--factor", type=whole_arg, default=2, help="size multiplier between rows (default: 2)"
    )
    bench.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64", help="element type"
    )
    bench.add_argument(
        "--warmup", type=whole_arg, default=5, help="untimed calls per size (default: 5)"
    )
    bench.add_argument(
        "--iters",
        type=whole_arg,
        default=50,
        help="timed calls per size and repeat, scaled down above 1 MiB (default: 50)",
    )
    bench.add_argument(
        "--repeats",
        type=whole_arg,
        default=1,
        metavar="R",
        help="independent timed loops per size (each after a barrier); with R >= 2 the "
        "ci95 column is the half-width of the 95%% confidence interval of the mean "
        "(Student's t over the R loop means) (default: 1)",
    )


def _placement_and_outputs(bench) -> None:
    """Where the ranks sit, the MPI library's algorithm, the outputs, the cost model."""
    bench.add_argument(
        "--ranks-per-node",
        type=whole_arg,
        metavar="K",
        help="for a topology-aware algorithm ("
        + ", ".join(a.name for a in table.of() if a.topology_aware)
        + "): K consecutive ranks form a node (default: shared memory)",
    )
    bench.add_argument(
        "--mpi-algorithm",
        choices=tuple(MPI_ALGORITHMS),
        help=f"force the MPI library's own algorithm for {table.MPI.name!r} (set before MPI "
        "starts)",
    )
    _output_arguments(bench)
    bench.set_defaults(func=cmd, mpi=True)


def _output_arguments(bench) -> None:
    """``bench``: what it writes, and the cost model it fits or compares with."""
    bench.add_argument(
        "--out",
        metavar="FILE",
        help='also write the results as JSON: {"run": where the run came from, "records": '
        "one object per algorithm and size}",
    )
    bench.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the records as CSV, one row per collective, implementation and size",
    )
    bench.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out, --csv or --fit file (default: refuse, so one run never "
        "overwrites another's results)",
    )
    bench.add_argument(
        "--tag",
        metavar="NAME",
        help="a label for this run, recorded in the JSON (run.tag) and used by `dist-logreg "
        "report` to name it in comparisons (default: the --out file's name)",
    )
    bench.add_argument(
        "--fit",
        nargs="?",
        const="model.json",
        metavar="FILE",
        help="fit the cost model to this sweep and write it (default FILE: model.json)",
    )
    bench.add_argument(
        "--cost-model",
        "--model",
        dest="model",
        metavar="FILE",
        help="a fitted cost model (model.json): add predicted time and measured/predicted "
        "columns (--model: the same, kept for scripts)",
    )


def cmd(comm, args: argparse.Namespace, watchdog=None) -> int:
    """Collective: the collective sweep, or with ``--p2p`` the point-to-point tests."""
    from mpi4py import MPI

    from dist_logreg.bench import pairs as benchp2p
    from dist_logreg.bench import sweep as bench
    from dist_logreg.bench.cost import load_model
    from dist_logreg.comm.mpilib import mpi_algorithm_record
    from dist_logreg.train.startup import ranks_sharing_memory

    error, local = None, ranks_sharing_memory(comm)  # collective: before any rank may fail
    try:
        args.min_bytes = parse_bytes(args.min_bytes, "--min-bytes")
        args.max_bytes = parse_bytes(args.max_bytes, "--max-bytes")
        bench.check_args(args, local)
        if args.p2p is not None:
            benchp2p.check_args(args, comm.Get_size(), local)
        mpi_record = mpi_algorithm_record(args.mpi_algorithm, MPI.Get_library_version())
        args.model_doc = load_model(args.model, bench.keys(args))
        if comm.Get_rank() == 0:  # rank 0 writes them: fail now, not after the sweep
            distinct_outputs({"--out": args.out, "--csv": args.csv, "--fit": args.fit})
            for flag, path in (("--out", args.out), ("--csv", args.csv), ("--fit", args.fit)):
                if path:  # never over the cost model it reads (seventeenth attack, S-M4)
                    not_an_input(path, [args.model], "the cost model it reads", flag)
                    check_output(path, flag, args.force)
    except UsageError as exc:
        error = exc
    raise_together(comm, error)
    if args.p2p is not None:
        return benchp2p.main(comm, args)
    return bench.run(comm, args, mpi_record)
