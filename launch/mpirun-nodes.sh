#!/usr/bin/env bash
# Launch dist-logreg across real nodes with Open MPI's mpirun, with the settings that matter
# for measuring the network: which interface MPI's TCP traffic uses, process binding, and
# ranks per node.
#
#   launch/mpirun-nodes.sh --hostfile launch/hosts --per-node 4 --iface eth1 -- \
#       train --allreduce ring --features 65536 --dtype float32 --out runs/x
#
# Options (before --):
#   --hostfile FILE   nodes and slots (see launch/hosts.example)             [required]
#   --per-node K      ranks per node; total = K x nodes in the hostfile      [default: 1]
#   --iface IF        interface (name or CIDR, e.g. eth1 or 10.1.0.0/16) for MPI's TCP
#                     traffic and the launcher's control traffic; unset: Open MPI picks
#   --bind core|none  bind each rank to a core (measurements are steadier)   [default: core]
#   --tcp-links N     TCP connections per peer (more saturate a link and spread over ECMP
#                     paths)                                                 [default: 4]
#   --dry-run         print the mpirun command instead of running it
# Everything after -- goes to `dist-logreg` (train ... or bench ...).
# Needs: the same Python environment (venv path) on every node, reachable by ssh without a
# password. With InfiniBand/RoCE, use mpi4py built against the cluster's MPI (see README).
set -euo pipefail

hostfile="" per_node=1 iface="" bind=core tcp_links=4 dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile) hostfile="$2"; shift 2 ;;
    --per-node) per_node="$2"; shift 2 ;;
    --iface) iface="$2"; shift 2 ;;
    --bind) bind="$2"; shift 2 ;;
    --tcp-links) tcp_links="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "mpirun-nodes.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$hostfile" ] || { echo "mpirun-nodes.sh: expected --hostfile FILE" >&2; exit 2; }
[ -r "$hostfile" ] || { echo "mpirun-nodes.sh: cannot read hostfile $hostfile" >&2; exit 2; }
[ $# -gt 0 ] || { echo "mpirun-nodes.sh: expected -- train|bench ARGS" >&2; exit 2; }
case "$bind" in core|none) ;; *) echo "mpirun-nodes.sh: --bind core|none, got $bind" >&2; exit 2 ;; esac
nodes=$(grep -cvE '^\s*(#|$)' "$hostfile")
[ "$nodes" -gt 0 ] || { echo "mpirun-nodes.sh: no nodes in $hostfile" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
bin="${VIRTUAL_ENV:-$here/.venv}/bin"
[ -x "$bin/mpirun" ] || bin=$(dirname "$(command -v mpirun)")
cmd=("$bin/mpirun" --hostfile "$hostfile" -n $((nodes * per_node))
     --map-by "ppr:${per_node}:node" --bind-to "$bind"
     --mca btl_tcp_links "$tcp_links"
     -x PATH -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)
if [ -n "$iface" ]; then
  cmd+=(--mca btl_tcp_if_include "$iface" --prtemca oob_tcp_if_include "$iface")
fi
cmd+=("$bin/dist-logreg" "$@")
if [ "$dry" = 1 ]; then printf '%q ' "${cmd[@]}"; echo; exit 0; fi
exec "${cmd[@]}"
