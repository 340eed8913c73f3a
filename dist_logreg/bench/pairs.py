"""``dist-logreg bench --p2p``: point-to-point tests between chosen rank pairs (after OSU's
osu_latency, osu_bw and osu_bibw).

One pair at a time (``--pairs 0:1,0:2``), while the other ranks wait at a barrier, so that
on an emulated or real cluster one link or one path is measured on its own:

- ``latency``: ping-pong; one iteration is half the round trip, timed on the first rank.
- ``bw``: the first rank posts a window of ``--window`` non-blocking sends, the second as
  many receives; after both wait, a 1-byte acknowledgement returns. One iteration moves
  ``window * bytes`` one way.
- ``bibw``: both ranks post the window of receives and of sends; ``2 * window * bytes``.

Bandwidth = bytes moved per iteration / mean iteration time (GB/s, 1e9 bytes/s). After the
timed loops one checked exchange: the bytes received must equal the bytes sent (``wrong``:
how many differ). Buffers are bytes (``uint8``), as OSU's are.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from dist_logreg.bench.summary import summarize
from dist_logreg.bench.sweep import TIMING_COLUMNS, scaled, sizes, time_calls
from dist_logreg.errors import RunError, UsageError
from dist_logreg.files import write_json, write_output
from dist_logreg.record import provenance

P2P_TESTS = ("latency", "bw", "bibw")
#: The most messages one window may post (OSU's default is 64). Open MPI slows down far
#: faster than the window grows (65536 one-byte messages: 20 s an iteration; 10^7:
#: MPI_ERR_INTERN); 4096 take milliseconds.
MAX_WINDOW = 4096
#: Bytes a posted message holds besides its buffer: the numpy array and the MPI request.
PER_MESSAGE = 1024


def parse_pairs(text: str | None, p: int) -> list[tuple[int, int]]:
    """``"0:1,2:3"`` -> ``[(0, 1), (2, 3)]``, each rank in ``[0, p)``, the two different."""
    if not text:
        text = "0:1"
    pairs = []
    for part in text.split(","):
        a, sep, b = part.strip().partition(":")
        a, b = a.strip(), b.strip()
        if not (sep and a.isascii() and a.isdigit() and b.isascii() and b.isdigit()):
            raise UsageError(f"--pairs: expected rank pairs such as 0:1,0:2, got {text!r}")
        a, b = int(a), int(b)
        if a == b or a >= p or b >= p:
            raise UsageError(
                f"--pairs: expected two different ranks below the world size {p}, got {a}:{b}"
            )
        pairs.append((a, b))
    return pairs


def test_names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or any(t not in P2P_TESTS for t in names):
        raise UsageError(f"--p2p: expected a comma list of {', '.join(P2P_TESTS)}, got {text!r}")
    return list(dict.fromkeys(names))


def _calls(comm, test: str, me: int, peer: int, buf, window: int):
    """The call one iteration runs on this rank of the pair (``me`` 0: the first)."""
    ack = np.zeros(1, dtype=np.uint8)
    recvs = [np.empty_like(buf) for _ in range(window)] if test != "latency" else []

    if test == "latency":
        if me == 0:

            def once():
                comm.Send(buf, peer, 1)
                comm.Recv(buf, peer, 1)
        else:

            def once():
                comm.Recv(buf, peer, 1)
                comm.Send(buf, peer, 1)

        return once, recvs

    def once():
        reqs = []
        if test == "bibw" or me == 1:
            reqs += [comm.Irecv(r, peer, 2) for r in recvs]
        if test == "bibw" or me == 0:
            reqs += [comm.Isend(buf, peer, 2) for _ in range(window)]
        MPI.Request.Waitall(reqs)
        if me == 0:
            comm.Recv(ack, peer, 3)
        else:
            comm.Send(ack, peer, 3)

    return once, recvs


def measure_pair(
    comm, test: str, pair, nbytes: int, warmup: int, iters: int, repeats: int, window: int
) -> dict | None:
    """On the pair's two ranks: time ``test``; the first rank returns the record."""
    me = pair.index(comm.Get_rank())
    peer = pair[1 - me]
    try:  # allocated before any exchange, so that both ranks of the pair learn of a failure
        pattern = (np.arange(nbytes) % 251).astype(np.uint8)
        buf = pattern.copy()
        once, recvs = _calls(comm, test, me, peer, buf, window)
        ok = 1
    except MemoryError:
        ok = 0
    if not min(ok, comm.sendrecv(ok, peer, 6, None, peer, 6)):
        return {"memory": f"{test} {pair[0]}:{pair[1]} at {nbytes} B"} if me == 0 else None
    warmup, iters = scaled(nbytes * (1 if test == "latency" else window), warmup, iters)
    for _ in range(warmup):
        once()
    ns = np.empty((repeats, iters), dtype=np.int64)
    tick, tock = np.zeros(1, np.uint8), np.zeros(1, np.uint8)
    for k in range(repeats):
        comm.Sendrecv(tick, peer, 4, tock, peer, 4)  # start each loop together
        ns[k] = time_calls(once, iters)
    # The checked exchange: the pattern again, into zeroed receive buffers.
    buf[:] = pattern
    for r in recvs:
        r[:] = 0
    if test == "latency" and me == 1:
        buf[:] = 0
    once()
    got = [buf] if test == "latency" else (recvs if test == "bibw" or me == 1 else [])
    wrong = sum(int(np.count_nonzero(g != pattern)) for g in got)
    wrong += comm.sendrecv(wrong, peer, 5, None, peer, 5)
    if me:
        return None
    if test == "latency":
        ns = ns // 2  # half the round trip
    rec = {"p2p": test, "pair": list(pair), "bytes": nbytes, "window": None, **summarize(ns)}
    moved = nbytes
    if test != "latency":
        moved = nbytes * window * (2 if test == "bibw" else 1)
        rec["window"] = window
    rec["GBps"] = moved / rec["time_s"] / 1e9 if rec["time_s"] > 0 else 0.0
    rec["wrong"] = wrong
    return rec


HEADER = (
    f"{'test':>8} {'pair':>7} {'bytes':>10} {'iters':>6} {'avg(us)':>10} {'p50(us)':>10} "
    f"{'p99(us)':>10} {'min(us)':>10} {'max(us)':>10} {'ci95(us)':>9} {'GB/s':>10} {'wrong':>6}"
)


def format_row(r: dict) -> str:
    ci = "-" if r["time_s_ci95"] is None else f"{r['time_s_ci95'] * 1e6:.2f}"
    us = " ".join(
        f"{r[k] * 1e6:>10.2f}"
        for k in ("time_s", "time_s_p50", "time_s_p99", "time_s_min", "time_s_max")
    )
    pair = f"{r['pair'][0]}:{r['pair'][1]}"
    return (
        f"{r['p2p']:>8} {pair:>7} {r['bytes']:>10} {r['iters'] * r['repeats']:>6} {us} "
        f"{ci:>9} {r['GBps']:>10.3f} {r['wrong']:>6}"
    )


def run(comm, args, say) -> list[dict]:
    """Collective: every test, pair and size; returns the records (the same on all ranks)."""
    p, rank = comm.Get_size(), comm.Get_rank()
    tests, pairs = test_names(args.p2p), parse_pairs(args.pairs, p)
    repeats = getattr(args, "repeats", 1)
    say(
        f"# dist-logreg bench --p2p: {p} ranks, one pair at a time; latency = half the "
        f"round trip; bw/bibw: a window of {args.window} messages per iteration, GB/s = bytes "
        "moved per iteration / avg; wrong = bytes received that differ from those sent"
    )
    say(HEADER)
    records = []
    for test in tests:
        for pair in pairs:
            for nbytes in sizes(args.min_bytes, args.max_bytes, args.factor):
                comm.Barrier()
                rec = None
                if rank in pair:
                    rec = measure_pair(
                        comm, test, pair, nbytes, args.warmup, args.iters, repeats, args.window
                    )
                rec = comm.bcast(rec, root=pair[0])
                if "memory" in rec:  # on every rank: the pair could not allocate
                    raise UsageError(
                        f"--window {args.window} x --max-bytes {args.max_bytes}: out of memory "
                        f"while allocating the buffers of {rec['memory']}; expected a smaller "
                        "--window or --max-bytes"
                    )
                records.append(rec)
                say(format_row(rec))
    return records


CSV_COLUMNS = (
    "p2p",
    "pair",
    "bytes",
    "window",
    *TIMING_COLUMNS,
    "GBps",
    "wrong",
)


def main(comm, args) -> int:
    """Collective: ``bench --p2p``; rank 0 prints and writes ``--out`` / ``--csv``."""
    rank = comm.Get_rank()
    tag = args.tag or (Path(args.out).stem if args.out else None)
    run_info = provenance.collect(comm, tag)

    def say(text: str) -> None:
        if rank == 0:
            print(text, flush=True)

    records = run(comm, args, say)
    if rank == 0 and args.out:
        write_json(
            Path(args.out),
            {"run": run_info, "records": records},
            "--out",
            getattr(args, "force", False),
        )
        say(f"# wrote {args.out}")
    if rank == 0 and args.csv:
        f = io.StringIO(newline="")
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for r in records:
            row = {**r, "pair": f"{r['pair'][0]}:{r['pair'][1]}"}
            out.writerow(["" if row.get(k) is None else row[k] for k in CSV_COLUMNS])
        write_output(args.csv, f.getvalue(), "--csv", getattr(args, "force", False))
        say(f"# wrote {args.csv}")
    sys.stdout.flush()
    bad = sum(r["wrong"] for r in records)
    if bad:
        raise RunError(f"validation failed: {bad} bytes received wrong (see column wrong)")
    return 0


def check_args(args, p: int, local: int = 1) -> None:
    """``UsageError`` for --p2p options out of range (the shared ones checked elsewhere);
    ``local``: the ranks of the job on this machine."""
    test_names(args.p2p)
    parse_pairs(args.pairs, p)
    if args.window < 1:
        raise UsageError(f"--window: expected an integer >= 1, got {args.window!r}")
    from dist_logreg.bench import memory, sweep

    # Each rank of the pair holds the window's receives (a buffer, a numpy array and an MPI
    # request each), the send buffer and its pattern; one pair at a time, so at most two
    # ranks of this machine hold them together.
    per_rank = args.window * (args.max_bytes + PER_MESSAGE) + 2 * args.max_bytes
    memory.check(
        per_rank,
        min(2, max(1, local)),
        f"--window {args.window} x --max-bytes {args.max_bytes}",
        "a smaller --window or --max-bytes",
        sweep.available_memory(),
    )
    if args.window > MAX_WINDOW:
        raise UsageError(
            f"--window: expected at most {MAX_WINDOW} messages in flight (OSU uses 64; at "
            f"65536 one iteration took 20 s, at 10^7 Open MPI failed), got {args.window}"
        )
    if p < 2:
        raise UsageError(f"--p2p: expected at least 2 ranks (a pair), got {p}")
