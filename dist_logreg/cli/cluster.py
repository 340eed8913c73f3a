"""``dist-logreg cluster up|run|status|down``: its flags and its entry (plain processes)."""

from __future__ import annotations

import argparse

from dist_logreg.cli.guard import run_plain, say
from dist_logreg.units import parse_rate

CLUSTER_EPILOG = """\
example (as root):
  dist-logreg cluster up --hosts 2 --rate 1gbit
  dist-logreg cluster run --ranks-per-host 2 -- train --allreduce hierarchical --out runs/em
  dist-logreg cluster run -- bench --min-bytes 16M --max-bytes 16M
  dist-logreg cluster status
  dist-logreg cluster down
"""


def add_parser(sub) -> None:
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
    cl.set_defaults(func=cmd, mpi=False)


def cmd(args: argparse.Namespace) -> int:
    """The ``cluster`` sub-commands: plain processes that build networks and run mpirun."""
    from dist_logreg.ops import cluster

    def body() -> int:
        if args.action == "up":
            c = cluster.up(
                args.name,
                args.hosts,
                args.subnet,
                args.topology,
                parse_rate(args.rate, "--rate"),
                parse_rate(args.uplink_rate, "--uplink-rate"),
                args.delay,
                args.loss,
                args.leaves,
                say=say,
            )
            say(cluster.status(c.name))
        elif args.action == "run":
            program = args.program[1:] if args.program[:1] == ["--"] else args.program
            return cluster.run(args.name, args.ranks_per_host, program, args.tcp_links, say=say)
        elif args.action == "status":
            say(cluster.status(args.name))
        else:
            cluster.down(args.name, say=say)
        return 0

    return run_plain(body)
