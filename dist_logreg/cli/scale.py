"""``dist-logreg scale``: its flags and its entry (a plain process that launches mpirun)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

from dist_logreg.cli.guard import run_plain, say
from dist_logreg.errors import exit_status_help
from dist_logreg.units import parse_timeout

SCALE_EPILOG = """\
examples:
  dist-logreg scale --ranks 1,2,4 --oversubscribe -- train --features 4096 --steps 100
  dist-logreg scale --ranks 1,2,4,8 --weak --hostfile hosts -- train --batch-size 512
  dist-logreg scale --ranks 2,4 --model model.json -- train --allreduce ring --steps 50
  dist-logreg scale --ranks 2,4,8 --cluster dlr -- train --features 65536 --dtype float32

Each run's results stay in OUT/pP/ (summary.json, metrics.jsonl, ...); the sweep writes
OUT/scale.txt (the table) and OUT/scale.json. --model reads {"alpha_s": .., "beta_s_per_byte":
.., "gamma_s_per_byte": ..}, or the same per algorithm under "algorithms".
"""


def add_parser(sub) -> None:
    sc = sub.add_parser(
        "scale",
        help="run one training command at several world sizes: speedup, efficiency, comm",
        description="Runs the train command under mpirun at each world size in --ranks, one "
        "after the other, and tabulates step time, speedup, efficiency and comm fraction "
        "per world size. Strong scaling (default) keeps the global batch and the data; weak "
        "scaling multiplies the global batch (and the synthetic --samples) by P/P0, P0 "
        "being the smallest world size.",
        epilog=SCALE_EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sc.add_argument(
        "--ranks", default="1,2,4,8", metavar="LIST", help="world sizes (default: 1,2,4,8)"
    )
    mode = sc.add_mutually_exclusive_group()
    mode.add_argument(
        "--strong",
        dest="mode",
        action="store_const",
        const="strong",
        help="same global batch and data at every world size (the default)",
    )
    mode.add_argument(
        "--weak",
        dest="mode",
        action="store_const",
        const="weak",
        help="global batch (and synthetic samples) grow with the world size",
    )
    sc.add_argument(
        "--out", metavar="DIR", help="where the runs and the table go (default: runs/scale-<time>)"
    )
    sc.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier sweep in --out: its scale.json and scale.txt, and each "
        "pP/ run's results (passed on as train --force; default: refuse, before the first run)",
    )
    sc.add_argument(
        "--cost-model",
        "--model",
        dest="model",
        metavar="FILE.json",
        help="a cost model (model.json); adds predicted step time and speedup to each row "
        "(--model: the same, kept for scripts)",
    )
    sc.add_argument(
        "--launcher",
        metavar="CMD",
        help="the MPI launcher (default: mpirun next to this Python, else on PATH)",
    )
    sc.add_argument(
        "--oversubscribe",
        action="store_true",
        help="pass --oversubscribe: more ranks than cores on one machine (label the results!)",
    )
    sc.add_argument("--hostfile", metavar="FILE", help="pass --hostfile FILE to the launcher")
    sc.add_argument(
        "--cluster",
        metavar="NAME",
        help="run on the emulated cluster NAME (dist-logreg cluster up; root), ranks placed "
        "round-robin over its hosts",
    )
    sc.add_argument(
        "--launcher-args",
        default="",
        metavar="'ARGS'",
        help="more launcher arguments, one string (e.g. '--mca btl self,sm,tcp')",
    )
    sc.add_argument("--label", default="", help="a line describing the machine, for the table")
    sc.add_argument(
        "--timeout", metavar="TIME", help="kill a run that takes longer (e.g. 600, 10min)"
    )
    sc.add_argument("command", nargs=argparse.REMAINDER, help="-- train [train options]")
    sc.set_defaults(func=cmd, mpi=False, mode="strong")


def _launcher(args: argparse.Namespace) -> list[str]:
    if args.cluster:
        from dist_logreg.ops import cluster, scale

        return scale.cluster_launcher(cluster.load(args.cluster)) + shlex.split(args.launcher_args)
    if args.launcher:
        exe = shlex.split(args.launcher)
    else:
        local = Path(sys.executable).parent / "mpirun"
        exe = [str(local) if local.exists() else shutil.which("mpirun") or "mpirun"]
    if args.oversubscribe:
        exe.append("--oversubscribe")
    if args.hostfile:
        exe += ["--hostfile", args.hostfile]
    return exe + shlex.split(args.launcher_args)


def cmd(args: argparse.Namespace) -> int:
    """The ``scale`` sub-command: a plain process that starts one MPI job per world size."""
    from dist_logreg.errors import UsageError
    from dist_logreg.ops import scale

    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    def body() -> int:
        if not command or command[0] != "train":
            raise UsageError(f"scale: expected '-- train [options]' after the flags, got {command}")
        ranks = scale.parse_ranks(args.ranks)
        if args.timeout is not None:
            args.timeout = parse_timeout(args.timeout, "--timeout")
        out = Path(args.out or time.strftime("runs/scale-%Y%m%d-%H%M%S"))
        return scale.run(
            command,
            ranks,
            args.mode,
            out,
            _launcher(args),
            args.model,
            args.label,
            args.timeout,
            say=say,
            force=args.force,
        )

    return run_plain(body)
