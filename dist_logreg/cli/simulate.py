"""``dist-logreg simulate``: the trainer's collectives on a described fabric (never MPI).

The options of ``--engine packet`` (and of its transports) are added by
``dist_logreg.sim.packet_options.add_packet_arguments(parser)`` (pure: no ns-3 at parse
time), with ``default=None``; ``packet_options.from_args`` turns the given ones into the
one typed ``Job.options``, and refuses one given to an engine that would ignore it.
"""

from __future__ import annotations

import argparse

from dist_logreg.collective.algorithms import (
    HIERARCHICAL_2D,
    INTER_CHOICES,
    scheduled,
    scheduled_keys,
)
from dist_logreg.errors import UsageError, exit_status_help
from dist_logreg.sim import engine as engine_table
from dist_logreg.sim import exact as exact_mode
from dist_logreg.sim import packet_options
from dist_logreg.sim.scenario import canonical as canonical_scenario

EPILOG = """\
examples:
  dist-logreg simulate --fabric flat:hosts=16,rate=100G --ranks 16
  dist-logreg simulate --fabric leaf-spine:leaves=4,spines=2,hosts-per-leaf=8,oversubscription=2 \\
      --ranks 32 --bytes 1M,64M --seeds 8
  dist-logreg simulate --fabric fat-tree:k=8,rate=400G --ranks 512 --ranks-per-host 4 \\
      --placement random --seeds 4 --json
  dist-logreg simulate --fabric fabric.toml --ranks 64 --exact --out sims/one
  mpirun -n 4 dist-logreg simulate --sweep grid.toml --out sims/grid

SPEC keys (preset:key=value,...; or a .json/.toml file with "topology" and the same keys):
  flat: hosts; leaf-spine: leaves, spines, hosts-per-leaf, uplink-rate | oversubscription;
  fat-tree: k; clos3: pods, leaves-per-pod, spines-per-pod, hosts-per-leaf, super-spines,
  core-rate | core-oversubscription; cluster:NAME[,key=value...] (a running emulated
  cluster; keys given win over the cluster's, e.g. cluster:fab,alpha=2ms).
  rail, rail3, tor (hosts of several GPUs and NICs): hosts-per-unit, units, rails,
  gpus-per-host, spines, nic-ports, dual-tor, planes, pxn, nic-efficiency, scaleup-rate,
  units-per-pod, ...; named: superpod-h100, spectrum-x, hpn, meta-ai-zone (docs/rails.md).
  common: rate=400G link-latency=1us alpha=5us gamma=0.05ns | reduce-rate=20GB/s
  host-rate=100GB/s mtu=9000 hash=l3|l4|spray|qp:N hash-seed=0 hash-polarize=no
  Rates without B/s are bits/s (400G = 400 Gbit/s); times take s, ms, us, ns.
"""


class _Once(argparse.Action):
    """An option given at most once: a second ``--scenario`` silently replaced the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given twice; one scenario a run")
        setattr(namespace, self.dest, values)


def _list(kind):
    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",")] if text.strip() else []
        if "" in items:  # 1,,2 was read as 1,2 (twelfth attack, L-L3)
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list with no empty item, got {text!r}"
            )
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return [kind(x) for x in items]

    return parse


def _ranks(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:  # not '٢' (M-M4)
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _per_host(text: str) -> int:
    """Ranks on each host: 1 to 10^6 (a product with the hosts must not overflow int64)."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000000, got {text!r}")
    return int(text)


#: The largest ``--placement-seed``: what ``report`` reads back (one above was written with
#: exit 0 and refused by report: nineteenth attack, W-H3).
MAX_SEED = 2**62


def _seed(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {MAX_SEED}, got {text!r}"
        )
    return int(text)


#: The most seeds one sweep runs (every seed is a whole simulation of every point).
MAX_SEEDS = 10_000
#: The largest payload per rank: 1 TiB (more than any host could hold).
MAX_BYTES = 1 << 40


def _seeds(text: str) -> int:
    n = _ranks(text)
    if n > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SEEDS} seeds, got {text!r}")
    return n


def _size(text: str) -> int:
    from dist_logreg.units import parse_bytes

    try:
        n = parse_bytes(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if n > MAX_BYTES:
        raise argparse.ArgumentTypeError(f"expected at most 1T bytes per rank, got {text!r}")
    if n < 1:  # no allreduce at all; its simulate.json was one `report` refuses
        raise argparse.ArgumentTypeError(f"expected at least 1 byte per rank, got {text!r}")
    return n


def add_parser(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate the allreduce algorithms on a described fabric (flow level, no MPI)",
        description="Runs the project's own allreduce schedules over a described fabric: paths, "
        "ECMP hashing, max-min fair sharing of every link, per-message overhead and hop latency. "
        "Prints time (median and worst over seeds), busbw, the non-blocking ideal and the "
        "bottleneck, and where every parameter came from.",
        epilog=EPILOG + "\n" + exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a(
        "--fabric",
        metavar="SPEC",
        help="preset:key=value,... or a .json/.toml file (keys below); required unless --sweep",
    )
    _what_to_simulate(p)
    a(
        "--seeds",
        type=_seeds,
        default=1,
        metavar="N",
        help="hash (and random placement) seeds, 1 to 10000 (default 1): seed i adds i to "
        "hash-seed and --placement-seed",
    )
    a("--exact", action="store_true", help="run the dependency graph event by event (smaller runs)")
    a(
        "--engine",
        choices=engine_table.names(),
        default="flow",
        help=" or ".join(e.help for e in engine_table.ENGINES.values()),
    )
    a(
        "--cost-model",
        metavar="FILE",
        help="take alpha and gamma from a fitted model.json (dist-logreg model fit)",
    )
    a(
        "--run",
        metavar="RUN",
        help="a train --out directory: predict its step time and comm "
        "fraction at --ranks (measured compute, simulated comm)",
    )
    a(
        "--flows",
        metavar="FILE",
        help="flows.json of a cluster run: replay the spine each host "
        "pair's flows took (with --fabric cluster:NAME)",
    )
    a(
        "--json",
        action="store_true",
        help="print simulate.json to standard output instead of the table",
    )
    a("--out", metavar="DIR", help="write DIR/simulate.json (DIR is created if missing)")
    a(
        "--force",
        action="store_true",
        help="replace an existing DIR/simulate.json (default: refuse)",
    )
    exact_mode.add_arguments(p)
    _step_and_sweep(p)
    packet_options.add_packet_arguments(p)
    # the sweep reads its file's keys with this parser's own readers
    p.set_defaults(func=cmd, mpi=False, simulate_parser=p)


def _step_and_sweep(p) -> None:
    """``simulate``: a training step instead of one allreduce; a grid of runs."""
    a = p.add_argument
    a(
        "--workload",
        metavar="SPEC",
        help="a training step: preset[:key=value,...], key=value,... or a .toml/.json file "
        "(params, dtype, buckets, forward, backward, optimizer, flops, flop-rate, overlap, "
        "sync, strong; docs/step-at-scale.md): step time, exposed communication, efficiency",
    )
    a(
        "--scenario",
        metavar="SPEC",
        type=canonical_scenario,  # as simulate writes it (a sweep's rows: Q-H3)
        action=_Once,
        help="one thing gone wrong: none, straggler:factor=K[,rank=R], "
        "degrade:factor=K,class=CLASS|link=A-B, fail:link=leafL-spineS[+...]|spine=S, "
        "background:fraction=F, background:permutation=F[,seed=S], "
        "neighbour:ranks=N[,placement=P,algorithm=A,bytes=B,start=T] (with --exact; "
        "docs/step-at-scale.md)",
    )
    a(
        "--sweep",
        metavar="FILE",
        help="a TOML grid whose keys are these options, a list meaning each of these "
        "(docs/step-at-scale.md); under mpirun the runs spread over the ranks",
    )
    a(
        "--resume",
        action="store_true",
        help="with --sweep and --out: keep the points an interrupted sweep finished",
    )


def _what_to_simulate(p) -> None:
    """``simulate``: the world sizes, where the ranks sit, the algorithms and the sizes."""
    a = p.add_argument
    a(
        "--ranks",
        type=_list(_ranks),
        metavar="P[,P...]",
        help="world size(s) to simulate; required unless --sweep",
    )
    a(
        "--ranks-per-host",
        type=_per_host,
        default=1,
        metavar="K",
        help="ranks on each host (default 1)",
    )
    a(
        "--placement",
        choices=("packed", "random", "spread", "scatter"),
        default="packed",
        help="packed: fill hosts and leaves in order; random: shuffled (a scheduler that ignores "
        "the topology); spread: round-robin over leaves; scatter: whole hosts drawn at random "
        "from the fabric (default packed)",
    )
    a(
        "--placement-seed",
        type=_seed,
        default=0,
        metavar="N",
        help="seed of random placement (default 0)",
    )
    a(
        "--algorithm",
        type=_list(str),
        default=list(scheduled()),
        metavar="A[,A...]",
        help=f"algorithms with a step-by-step schedule: {', '.join(scheduled())} (default: "
        f"all of these; {HIERARCHICAL_2D.name}'s nodes are the hosts, on the rail family "
        f"the GPUs of a host), {HIERARCHICAL_2D.name}:INTER with INTER across nodes ("
        + ", ".join(INTER_CHOICES)
        + "), or another collective's as collective/name: "
        + ", ".join(k for k in scheduled_keys() if "/" in k),
    )
    a(
        "--bytes",
        type=_list(_size),
        metavar="N[,N...]",
        help="payload bytes per rank, e.g. 1M,100M (binary suffixes; default 1M,100M)",
    )


def _no_empty_sweep(value: str) -> int:
    raise UsageError(f"--sweep: expected the path of a TOML grid, got {value!r}")


def cmd(args: argparse.Namespace) -> int:
    """The ``simulate`` sub-command: a plain process (bad input exits 2, with one line);
    ``--sweep`` under mpirun: one rank of the sweep."""
    from dist_logreg.cli.guard import run_plain

    if args.sweep is not None and not args.sweep.strip():  # "" ran one simulate (W-M1)
        return run_plain(lambda: _no_empty_sweep(args.sweep))
    if args.sweep:
        from dist_logreg.cli.simulate_sweep import run_sweep

        return run_plain(lambda: run_sweep(args))
    from dist_logreg.cli.simulate_run import run

    return run_plain(lambda: run(args))
