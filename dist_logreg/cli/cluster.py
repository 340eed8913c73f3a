"""``dist-logreg cluster up|run|status|down``: its flags and its entry (plain processes)."""

from __future__ import annotations

import argparse
import sys

from dist_logreg.cli.guard import (
    interrupt_name,
    interrupt_status,
    run_plain,
    say,
    sigterm_as_sigint,
)
from dist_logreg.errors import UsageError
from dist_logreg.units import number_arg, parse_bytes, parse_rate, rate_bits, whole_arg

CLUSTER_EPILOG = """\
examples (as root):
  dist-logreg cluster up --hosts 2 --rate 1gbit
  dist-logreg cluster run --ranks-per-host 2 -- train --allreduce hierarchical --out runs/em
  dist-logreg cluster down
  dist-logreg cluster up --name fab --topology leaf-spine --leaves 2 --spines 2 --hosts 4 \\
      --rate 1gbit --hash l4 --calibrate
  dist-logreg cluster run --name fab -- bench --allreduce ring --min-bytes 16M --max-bytes 16M
  dist-logreg cluster set --name fab --rate 200mbit --loss-link l0-s1=1
  dist-logreg cluster status --name fab
  dist-logreg cluster down --name fab
"""


def _pct(text: str) -> float:
    """A loss in percent, ``0.5`` or ``0.5%`` (checked against nft's range later)."""
    try:
        return float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage such as 1 or 0.5%, got {text!r}"
        ) from None


def _loss_link(text: str) -> tuple[str, float]:
    link, _, pct = text.partition("=")
    try:
        return link, _pct(pct)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected LINK=PCT such as l0-s1=1, got {text!r}"
        ) from None


def _up_parser(clsub, name_help: str) -> None:
    c_up = clsub.add_parser("up", help="create the hosts, links, bridges and routers")
    c_up.add_argument(
        "--hosts", type=whole_arg, default=2, help="emulated hosts in all (default: 2)"
    )
    c_up.add_argument(
        "--topology",
        choices=("flat", "two-tier", "leaf-spine"),
        default="flat",
        help="flat: one bridge; two-tier: leaf bridges with one slower uplink each to a spine "
        "bridge; leaf-spine: leaf and spine routers, every leaf linked to every spine, "
        "multipath (ECMP) routes between leaves (default: flat)",
    )
    c_up.add_argument(
        "--leaves",
        type=whole_arg,
        default=2,
        help="two-tier, leaf-spine: leaves (default: 2); hosts are spread evenly",
    )
    c_up.add_argument(
        "--spines", type=whole_arg, default=2, help="leaf-spine: spine routers (default: 2)"
    )
    c_up.add_argument(
        "--hash",
        choices=("l3", "l4"),
        help="leaf-spine: ECMP hash on the leaves: l3 = source and destination address, l4 = "
        "the 5-tuple with ports (fib_multipath_hash_policy 0 / 1; default: l4)",
    )
    _shaping_arguments(c_up)
    c_up.add_argument(
        "--calibrate",
        action="store_true",
        help="measure each link class's one-way and bidirectional TCP ceiling (iperf3 if "
        "installed, else a built-in probe) and store them: runs then report busbw as a "
        "percentage of it",
    )
    c_up.add_argument(
        "--calibrate-seconds",
        type=number_arg,
        default=2.0,
        metavar="S",
        help="length of each calibration measurement (default: 2)",
    )
    c_up.add_argument(
        "--subnet",
        default="198.18.0.0/24",
        help="addresses of the hosts, inside 198.18.0.0/15 (default: 198.18.0.0/24); "
        "leaf-spine uses its first half for the hosts and its second for the management "
        "network mpirun talks over",
    )
    c_up.add_argument("--name", default="dlr", help=name_help)


def _shaping_arguments(c_up) -> None:
    """``cluster up``: how the links are shaped (rate, burst, queue, delay, loss)."""
    c_up.add_argument(
        "--rate",
        metavar="RATE",
        help="shape every host link, both directions (tbf), e.g. 1gbit, 100mbit",
    )
    c_up.add_argument(
        "--uplink-rate",
        metavar="RATE",
        help="leaf-to-spine links, both directions (default: two-tier half of --rate or "
        "1gbit; leaf-spine the same as --rate)",
    )
    c_up.add_argument(
        "--burst",
        metavar="BYTES",
        help="token bucket of every shaper, in bytes, e.g. 16K: this many bytes pass "
        "unshaped after a pause (default: 5 full-size frames of the MTU or 20 us of line rate, "
        "whichever is larger, so every message but the smallest is shaped; larger buckets give TCP "
        "more of the rate but leave messages up to the bucket's size unshaped; see the README)",
    )
    c_up.add_argument(
        "--queue",
        metavar="BYTES",
        help="queue limit of each switch port (leaf, spine and bridge ends) behind its shaper, "
        "in bytes, e.g. 128K (default: 1 ms of line rate, at least 64 KiB; a host's own end "
        "queues 1000 frames, like a NIC). Longer queues drop less but delay the "
        "acknowledgements and small messages that wait behind data",
    )
    c_up.add_argument(
        "--delay",
        type=number_arg,
        metavar="MS",
        help="added one-way delay on host links: needs netem, which this kernel lacks, so it is "
        "refused; delay is a packet-level simulator option (simulate --engine packet)",
    )
    c_up.add_argument(
        "--mtu",
        type=whole_arg,
        default=9000,
        metavar="BYTES",
        help="MTU of every veth and bridge, 576 to 65535 (default: 9000, jumbo frames as AI "
        "fabrics run: the shapers' cost is per frame, and on a quiet 2-core machine 9000 "
        "holds 1gbit where 1500 holds only 200mbit; 1500 for the kernel's default)",
    )
    c_up.add_argument(
        "--slurm",
        action="store_true",
        help="also start Slurm: munged, slurmctld in the root namespace and one slurmd in each "
        "host (its own hostname), so `cluster run -- sbatch launch/slurm.sbatch` schedules "
        "across the emulated nodes (Debian packages slurm-wlm and munge)",
    )
    c_up.add_argument(
        "--loss",
        type=_pct,
        metavar="PCT",
        help="every link drops PCT percent of its frames, each direction (nftables "
        "`numgen random`, needs nft; a path of k links loses about k x PCT percent)",
    )
    c_up.add_argument(
        "--loss-link",
        type=_loss_link,
        action="append",
        default=[],
        metavar="LINK=PCT",
        help="loss on one link (both directions), e.g. l0-s1=1 (leaf 0 to spine 1) or h3=0.5 "
        "(host 3's link); repeatable, overrides --loss for that link",
    )


def _set_parser(clsub, name_help: str) -> None:
    c_set = clsub.add_parser(
        "set",
        help="change rates, buckets, queues, loss or hashing of a running cluster, in place",
        description="Changes a running cluster in seconds, without rebuilding it: shapers are "
        "replaced (tc qdisc replace), loss rules rewritten, the leaves' hash policy set. The "
        "change is recorded in the cluster state (shown by `cluster status`) and in the "
        "provenance (run.cluster) of every later run. Options as for `cluster up`.",
    )
    c_set.add_argument("--rate", metavar="RATE", help="every host link, both directions")
    c_set.add_argument("--uplink-rate", metavar="RATE", help="every uplink, both directions")
    c_set.add_argument("--burst", metavar="BYTES", help="token bucket of every shaper")
    c_set.add_argument("--queue", metavar="BYTES", help="queue limit of every switch port")
    c_set.add_argument(
        "--loss", type=_pct, metavar="PCT", help="every link, each direction (0 removes it)"
    )
    c_set.add_argument(
        "--loss-link",
        type=_loss_link,
        action="append",
        default=[],
        metavar="LINK=PCT",
        help="loss on one link, e.g. l0-s1=1 (=0 removes it); repeatable",
    )
    c_set.add_argument("--hash", choices=("l3", "l4"), help="leaf-spine: the leaves' ECMP hash")
    c_set.add_argument(
        "--force",
        action="store_true",
        help="change the fabric also while a `cluster run` job runs on it (default: refuse: "
        "that job's summary records the fabric it started on; the change is in the "
        "cluster's changes, with its time)",
    )
    c_set.add_argument("--name", default="dlr", help=name_help)


#: tc's tbf keeps a rate in whole bytes per second: below 8 bit/s it reads 0 and fails.
MIN_TC_RATE_BITS = 8


def _tc_rate(text: str | None, flag: str) -> str | None:
    """A shaper's rate for tc, at least 8 bit/s (tc's own error was its usage text)."""
    rate = parse_rate(text, flag)
    if rate is not None and rate_bits(rate) < MIN_TC_RATE_BITS:
        raise UsageError(
            f"{flag}: expected at least {MIN_TC_RATE_BITS}bit (tc's tbf counts whole bytes "
            f"per second and rounds {text} to 0), got {text!r}"
        )
    return rate


def _loss_and_bucket(args: argparse.Namespace) -> tuple[dict, int | None, int | None]:
    """``--loss-link`` as a mapping (each link once), ``--burst`` and ``--queue`` in bytes."""
    loss_links = dict(args.loss_link)
    if len(loss_links) != len(args.loss_link):
        raise UsageError("--loss-link: expected each link at most once")
    try:
        burst = parse_bytes(args.burst) if args.burst else None
        queue = parse_bytes(args.queue) if args.queue else None
    except UsageError as exc:
        raise UsageError(f"--burst/--queue: {exc}") from None
    return loss_links, burst, queue


def _change(args: argparse.Namespace):
    from dist_logreg.ops.cluster.change import Change

    loss_links, burst, queue = _loss_and_bucket(args)
    return Change(
        rate=_tc_rate(args.rate, "--rate"),
        uplink_rate=_tc_rate(args.uplink_rate, "--uplink-rate"),
        loss_pct=args.loss,
        loss_links=loss_links,
        burst=burst,
        queue=queue,
        hash=args.hash,
    )


def add_parser(sub) -> None:
    cl = sub.add_parser(
        "cluster",
        help="an emulated multi-host network on this machine (network namespaces, as root)",
        description="Emulated hosts on one Linux machine: each a network namespace, "
        "addresses in 198.18.0.0/15, links shaped with tc, lossy through nftables, counted "
        "per link and per flow. mpirun starts ranks inside them through a launch agent; MPI "
        "traffic stays on the emulated links. Needs root, iproute2 (ip, tc) and unshare; "
        "leaf-spine and --loss also need nft (Debian package nftables).",
        epilog=CLUSTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    clsub = cl.add_subparsers(dest="action", metavar="ACTION", required=True)
    name_help = (
        "which emulated cluster: up to 8 lower-case letters and digits (several can "
        "coexist on other subnets; default: dlr)"
    )
    _up_parser(clsub, name_help)
    _set_parser(clsub, name_help)
    c_run = clsub.add_parser(
        "run",
        help="run `train` or `bench` across the emulated hosts, and report what the fabric saw",
        description="Runs the program under mpirun with R ranks per host, reads every link, "
        "TCP and flow counter before and after, and writes links.json and flows.json: into "
        "train's --out DIR, or next to bench's --out FILE as FILE.links.json and "
        "FILE.flows.json (or into --fabric-out DIR). Without --out, the program gets "
        "--out runs/<program>-<time>.",
    )
    c_run.add_argument(
        "--ranks-per-host",
        type=whole_arg,
        default=1,
        metavar="R",
        help="ranks per host (default: 1)",
    )
    c_run.add_argument(
        "--tcp-links",
        type=whole_arg,
        default=4,
        metavar="N",
        help="Open MPI's btl_tcp_links (default: 4). Meant to open N TCP connections per "
        "peer (more flows for ECMP to spread); the flow map of a leaf-spine shows what it "
        "really opened: one connection per host pair with Open MPI 5.0 here (see the README)",
    )
    c_run.add_argument(
        "--fabric-out", metavar="DIR", help="write links.json and flows.json here instead"
    )
    c_run.add_argument("--name", default="dlr", help=name_help)
    c_run.add_argument(
        "program", nargs=argparse.REMAINDER, help="-- train|bench ARGS... (or -- sbatch|srun ARGS)"
    )
    c_status = clsub.add_parser("status", help="hosts, addresses, link shaping and calibration")
    c_status.add_argument("--name", default="dlr", help=name_help)
    c_down = clsub.add_parser("down", help="remove every namespace, link and bridge of the cluster")
    c_down.add_argument("--name", default="dlr", help=name_help)
    cl.set_defaults(func=cmd, mpi=False)


def _spec(args: argparse.Namespace):
    from dist_logreg.ops.cluster import Spec

    if args.topology != "leaf-spine" and args.hash is not None:
        raise UsageError(f"--hash: only for --topology leaf-spine, got --topology {args.topology}")
    loss_links, burst, queue = _loss_and_bucket(args)
    return Spec(
        name=args.name,
        hosts=args.hosts,
        subnet=args.subnet,
        topology=args.topology,
        rate=_tc_rate(args.rate, "--rate"),
        uplink_rate=_tc_rate(args.uplink_rate, "--uplink-rate"),
        delay_ms=args.delay,
        loss_pct=args.loss,
        loss_links=loss_links,
        leaves=args.leaves,
        spines=args.spines,
        hash=args.hash or "l4",
        burst=burst,
        queue=queue,
        slurm=args.slurm,
        mtu=args.mtu,
    )


def cmd(args: argparse.Namespace) -> int:
    """The ``cluster`` sub-commands: plain processes that build networks and run mpirun."""
    from dist_logreg.ops import cluster
    from dist_logreg.ops.cluster.calibrate import calibrate
    from dist_logreg.ops.cluster.change import apply
    from dist_logreg.ops.cluster.jobs import run
    from dist_logreg.ops.cluster.state import end_children

    def body() -> int:
        if args.action == "up":
            cal = None
            if args.calibrate:
                if not args.calibrate_seconds > 0:
                    raise UsageError(
                        f"--calibrate-seconds: expected > 0, got {args.calibrate_seconds}"
                    )

                def cal(c):  # noqa: E306
                    return calibrate(c, args.calibrate_seconds, say=say)

            c = cluster.up(_spec(args), say=say, calibrate=cal)
            say(cluster.status(c.name))
        elif args.action == "set":
            apply(args.name, _change(args), say=say, force=args.force)
        elif args.action == "run":
            program = args.program[1:] if args.program[:1] == ["--"] else args.program
            return run(
                args.name, args.ranks_per_host, program, args.tcp_links, args.fabric_out, say=say
            )
        elif args.action == "status":
            say(cluster.status(args.name))
        else:
            cluster.down(args.name, say=say)
        return 0

    try:
        with sigterm_as_sigint():
            return run_plain(body)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: one line, no traceback
        end_children()
        what = "every process it started was ended"
        if args.action == "set":  # held while the links and the state change (change.py)
            what = getattr(exc, "note", "nothing changed")
        print(
            f"dist-logreg cluster {args.action}: interrupted ({interrupt_name(exc)}); " + what,
            file=sys.stderr,
            flush=True,
        )
        return interrupt_status(exc)
    finally:
        end_children()
