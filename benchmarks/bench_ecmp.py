"""The ECMP study: how hashing spreads an allreduce's flows over a leaf-spine, and what it costs.

Run as root (needs nft):  .venv/bin/python benchmarks/bench_ecmp.py [--reps 10]

On 2 leaves x 2 spines x 4 hosts (one rank each, host links and uplinks at --rate, a
non-blocking fabric), each algorithm's --size allreduce runs as a new job (new TCP
connections, so new ports) --reps times, for every btl_tcp_links in --links and every
hash in --hashes. Per job: busbw (from bench), collisions (flows.json: an uplink carrying
elephant flows of two host pairs while a sibling carries none), TCP connections per host
pair seen by the spines. With l3 the leaves get a new hash seed before every job (the same
two addresses always hash alike; a new seed is a different switch). Next to it, the
balls-into-bins prediction of dist_logreg/collective/ecmp.py, with k = btl_tcp_links flows per
pair and with the k the spines really saw, at the calibrated bidirectional ceiling.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dist_logreg.collective.ecmp import predict  # noqa: E402
from dist_logreg.ops.cluster import fabricfiles, load  # noqa: E402
from dist_logreg.ops.cluster.leafspine import set_hash  # noqa: E402

BIN = Path(sys.executable).parent


def cluster(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN / "dist-logreg"), "cluster", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cluster {' '.join(args)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r


def job(name: str, alg: str, k: int, size: str, tmp: Path, iters: int) -> dict:
    out = tmp / "b.json"
    cluster(
        "run",
        "--name",
        name,
        "--tcp-links",
        str(k),
        "--",
        "bench",
        "--allreduce",
        alg,
        "--min-bytes",
        size,
        "--max-bytes",
        size,
        "--iters",
        str(iters),
        "--warmup",
        "1",
        "--out",
        str(out),
    )
    (rec,) = json.loads(out.read_text())["records"]
    (fl,) = fabricfiles.read_flows(tmp / "b.flows.json")  # one algorithm: one flow map
    links = json.loads((tmp / "b.links.json").read_text())
    big = [f for f in fl["flows"] if f["spine"] and f["elephant"]]
    conns: dict[frozenset, set] = {}  # host pair -> its connections that carried data
    ways: dict[frozenset, set] = {}  # connection -> the directions that carried data
    for f in big:
        ends = frozenset(((f["src"], f["sport"]), (f["dst"], f["dport"])))
        conns.setdefault(frozenset((f["src"], f["dst"])), set()).add(ends)
        ways.setdefault(ends, set()).add(f["src"])
    return {
        "busbw_GBps": rec["busbw"],
        "collided": bool(fl["collisions"]),
        "collisions": fl["collisions"],
        "connections_per_pair": statistics.median(len(x) for x in conns.values()) if conns else 0,
        "both_ways": sum(len(w) == 2 for w in ways.values()),
        "connections": len(ways),
        "moved": sum(len(f["spine_bytes"]) > 1 for f in big),  # flows seen on two spines
        "uplink_max_over_mean": links["uplinks"]["uplink_max_over_mean"],
        "retransmitted": links["tcp"]["total"]["RetransSegs"],
        "elephants": [
            {k: f[k] for k in ("src", "dst", "sport", "dport", "bytes", "spine")} for f in big
        ],
    }


def table(results: list[dict], ceiling: float) -> list[str]:
    rows = [
        "| hash | tcp links | algorithm | busbw min / median / max (% of ceiling) | jobs "
        "with a collision | connections per pair seen | model, k = tcp links: collision, "
        "median busbw | model, k seen: collision, median busbw | balanced ideal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = [100 * x / ceiling for x in r["busbw"]]
        rows.append(
            f"| {r['hash']} | {r['links']} | {r['algorithm']} | {min(b):.0f} / "
            f"{statistics.median(b):.0f} / {max(b):.0f} | {r['collided']}/{len(b)} | "
            f"{r['seen_k']:g} | {100 * r['model']['collision']:.0f}%, "
            f"{100 * r['model']['median']:.0f}% | {100 * r['model_seen']['collision']:.0f}%, "
            f"{100 * r['model_seen']['median']:.0f}% | {100 * r['model']['ideal']:.0f}% |"
        )
    return rows


def _progress(cfg: tuple, r: dict, ceiling: float) -> str:
    hashing, k, alg = cfg
    return (
        f"{hashing} links {k} {alg:<18} busbw {r['busbw_GBps']:.4f} GB/s "
        f"({100 * r['busbw_GBps'] / ceiling:.0f}%) collided {r['collided']} "
        f"connections/pair {r['connections_per_pair']:g} "
        f"({r['both_ways']} of {r['connections']} carried data both ways)"
    )


def _model(alg: str, k: int, hashing: str) -> dict:
    m = predict(alg, max(1, round(k)), hashing)
    return {
        "collision": m["collision"],
        "median": float(np.median(m["busbw"])),
        "ideal": m["ideal"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10, help="jobs per configuration (default: 10)")
    ap.add_argument("--links", default="1,2,4", help="btl_tcp_links values")
    ap.add_argument("--hashes", default="l3,l4")
    ap.add_argument("--algorithms", default="ring,recursive-doubling,rabenseifner")
    ap.add_argument("--size", default="16M")
    ap.add_argument("--iters", type=int, default=2, help="timed calls per job (default: 2)")
    ap.add_argument("--rate", default="400mbit", help="every link (default: 400mbit)")
    ap.add_argument("--out", default="runs/ecmp.json")
    args = ap.parse_args()
    name, subnet = "fabecmp", "198.18.21.0/24"
    configs = [
        (h, int(k), a)
        for h in args.hashes.split(",")
        for k in args.links.split(",")
        for a in args.algorithms.split(",")
    ]
    cluster("down", "--name", name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` takes it down
    up = cluster(
        "up",
        "--name",
        name,
        "--subnet",
        subnet,
        "--topology",
        "leaf-spine",
        "--hosts",
        "4",
        "--rate",
        args.rate,
        "--calibrate",
        "--calibrate-seconds",
        "5",
    )
    print("\n".join(x for x in up.stdout.splitlines() if "calibrated" in x), flush=True)
    c = load(name)
    # Every link runs at --rate, so one class's ceiling is every link's: the host class (two
    # hosts under one leaf) is measured without any hashing in the way.
    ceiling = c.calibration["classes"]["host"]["bidir_Gbps"] / 8  # GB/s per direction
    raw: dict[tuple, list[dict]] = {cfg: [] for cfg in configs}
    rng = random.Random(0)
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.reps):
                for cfg in configs:  # interleaved, so load from elsewhere hits all alike
                    hashing, k, alg = cfg
                    set_hash(c, hashing, rng.randrange(1, 2**31) if hashing == "l3" else None)
                    r = job(name, alg, k, args.size, Path(tmp), args.iters)
                    raw[cfg].append(r)
                    where = f"[{time.monotonic() - start:6.0f} s] rep {rep + 1}/{args.reps}"
                    print(where, _progress(cfg, r, ceiling), flush=True)
    finally:
        cluster("down", "--name", name)
    results = []
    for (hashing, k, alg), runs in raw.items():
        seen = statistics.median(r["connections_per_pair"] for r in runs)
        results.append(
            {
                "hash": hashing,
                "links": k,
                "algorithm": alg,
                "runs": runs,
                "busbw": [r["busbw_GBps"] for r in runs],
                "collided": sum(r["collided"] for r in runs),
                "seen_k": seen,
                "model": _model(alg, k, hashing),
                "model_seen": _model(alg, seen, hashing),
            }
        )
    doc = {"ceiling_GBps": ceiling, "rate": args.rate, "size": args.size, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(
        f"\n# {args.size} allreduce, 2 leaves x 2 spines x 4 hosts, every link {args.rate}; "
        f"ceiling {ceiling * 8:.3f} Gbit/s per direction (calibrated, both ways at once); "
        f"{args.reps} jobs per row; {time.monotonic() - start:.0f} s"
    )
    print("\n".join(table(results, ceiling)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
