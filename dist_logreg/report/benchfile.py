"""A bench JSON (``bench --out``) as the report reads it: one schema for every key it reads
(records, the ``run`` block, the link rate), and the relations between a record's numbers.

A record's busbw is derived, never measured: ``algbw = bytes / time_s`` (GB/s) and ``busbw
= algbw x busbw_factor`` (the collective's nccl-tests factor, at most 2), so a busbw that is
not that is a damaged or edited file; the spread keeps ``time_s_min <= time_s_p50 <=
time_s_p99 <= time_s_max`` and the mean ``time_s`` between min and max. A time below
:data:`MIN_SECONDS` is no collective on any network. Pure Python.
"""

from __future__ import annotations

from dist_logreg import schema
from dist_logreg.collective.algorithms import BUSBW_FACTORS
from dist_logreg.errors import UsageError
from dist_logreg.units import bounded_link_rate, rate_bits

#: A collective's time per call is at least this (a nanosecond: no call, no network, is faster).
MIN_SECONDS = 1e-9
#: Relative slack of the relations (the bench computes them in binary64; JSON keeps 17 digits).
RTOL = 1e-6
_SPREAD = schema.optional(schema.number(0.0, 1e6, "a finite number of seconds"))
_CALL = schema.optional(schema.number(MIN_SECONDS, 1e6, "a finite number of seconds"))
_GBPS = schema.number(0.0, 1e9, "a finite number of GB/s")
_RATE = schema.number(0.0, 1e15, "a finite rate in bit/s", above=True)


def _link_rate(v, where):
    """The bench file's link rate: a rate within :data:`units.LINK_RATE_BOUNDS` (U-H17)."""
    try:
        bounded_link_rate(v, where)
    except UsageError as exc:
        raise schema.Invalid(where, str(exc).split(": ", 1)[-1]) from None


def _rate_value(v, where):
    """A cluster's rate as recorded: ``"1gbit"`` or a number of bit/s."""
    if isinstance(v, str):
        schema.text()(v, where)
        try:
            rate_bits(v)
        except UsageError:
            raise schema.Invalid(
                where, f"expected a rate such as 1gbit or 25G, got {v!r}"
            ) from None
    else:
        _RATE(v, where)


RECORD = schema.table(
    {},
    {
        "algorithm": schema.text(),
        "bytes": schema.count(1, 1 << 50, "a whole number of bytes"),
        "collective": schema.text(),
        "time_s": schema.number(MIN_SECONDS, 1e6, "a finite number of seconds"),
        # a call's time, at least the clock's 1 ns: a time_s_min of 0 was drawn (M-M5)
        "time_s_p50": _CALL,
        "time_s_p99": _CALL,
        "time_s_min": _CALL,
        "time_s_max": _CALL,
        "time_s_ci95": _SPREAD,
        "predicted_s": _SPREAD,
        "algbw": _GBPS,
        "busbw": _GBPS,
        "busbw_factor": schema.number(0.0, 2.0, "a factor"),
        "wrong": schema.optional(schema.count(0)),
        "world_size": schema.count(1, 10**7, "a number of ranks"),
        **schema.BENCH_FIELDS,
    },
    "a record (an object)",
)
RUN = schema.table(
    {},
    {
        "tag": schema.text(),
        "started_utc": schema.optional(schema.text()),
        "dist_logreg_version": schema.optional(schema.text()),
        "world_size": schema.optional(schema.count(1, 10**7, "a number of ranks")),
        "hosts": schema.optional(
            schema.items(
                schema.table({"name": schema.text(), "ranks": schema.items(schema.count())})
            )
        ),
        "mpi": schema.optional(schema.table({}, {"library": schema.text()})),
        "numpy": schema.optional(schema.text()),
        "command_line": schema.items(schema.text()),
        "cluster": schema.optional(
            schema.table({}, {"rate": _rate_value, "uplink_rate": _rate_value}, "an object")
        ),
    },
    "an object (the run block) or null",
)
#: Records a report draws in about a minute (a fourth attack's 5,000-series file ran past
#: 2 min; the simulate.json bound is 20,000 rows of at most 200 series).
MAX_RECORDS = 5_000
TOP = schema.table(
    {},
    {
        "run": schema.optional(RUN),
        "link_rate": schema.optional(_link_rate),
        "link_rate_bps": schema.optional(_RATE),
    },
)


def check(doc: dict, where: str) -> None:
    """``UsageError`` (one line: ``where``, the record, the key, the value) unless every key
    of ``doc`` the report reads has its type and bounds, and each record its relations."""
    schema.check(doc, TOP, where)
    if len(doc["records"]) > MAX_RECORDS:  # drawn in about a minute on a loaded 2-core machine
        raise UsageError(
            f"{where}: records: expected at most {MAX_RECORDS:,} records to draw, got "
            f"{len(doc['records']):,}; split the file"
        )
    for i, rec in enumerate(doc["records"]):
        schema.check(rec, RECORD, f"{where}: record {i}")
        try:
            relations(rec)
            consistent(rec, doc.get("run") or {})
            link_bound(rec, doc.get("run") or {})
        except schema.Invalid as exc:
            raise UsageError(f"{where}: record {i}: {exc}") from None
    twice = schema.given_twice(doc["records"])
    if twice:
        raise UsageError(f"{where}: {twice}")


def relations(rec: dict) -> None:
    """:class:`schema.Invalid` for a record whose numbers contradict each other."""
    n, t = rec["bytes"], rec["time_s"]
    algbw = n / t / 1e9
    if rec.get("algbw") is not None and abs(rec["algbw"] - algbw) > RTOL * algbw:
        raise _bad("algbw", f"expected bytes / time_s = {algbw:g} GB/s, got {rec['algbw']:g}")
    factor = rec.get("busbw_factor")
    top = algbw * (2.0 if factor is None else factor)
    if rec["busbw"] > top * (1 + RTOL) or (factor is not None and rec["busbw"] < top * (1 - RTOL)):
        want = f"= {top:g}" if factor is not None else f"at most {top:g}"
        raise _bad(
            "busbw",
            f"expected bytes / time_s x the collective's factor ({want} GB/s for {n} B in "
            f"{t:g} s), got {rec['busbw']:g}",
        )
    # a spread of 0 is a value too: it left the check, so a p50 of 0 s beside a min of
    # 6.7 us was drawn (twelfth attack, L-H7)
    spread = ("time_s_min", "time_s_p50", "time_s_p99", "time_s_max")
    order = [k for k in spread if rec.get(k) is not None]
    for a, b in zip(order, order[1:], strict=False):
        if rec[a] > rec[b] * (1 + RTOL):
            raise _bad(b, f"expected at least {a} {rec[a]:g} s, got {rec[b]:g}")
    lo, hi = rec.get("time_s_min"), rec.get("time_s_max")
    if (lo is not None and t < lo * (1 - RTOL)) or (hi is not None and t > hi * (1 + RTOL)):
        raise _bad("time_s", f"expected the mean, between time_s_min and time_s_max, got {t:g}")


#: Bytes per element of the dtypes bench writes (``--dtype``).
ITEMSIZE = {"float32": 4, "float64": 8}
#: A local ``np.add`` of the whole buffer (``reduce_s``) against the call that reduces it:
#: the call reduces at least (p-1)/p of it, so more than this many of its slowest iteration,
#: plus numpy's call overhead, is no measurement beside it.
REDUCE_SLACK, REDUCE_OVERHEAD_S = 4.0, 20e-6


def consistent(rec: dict, run: dict) -> None:
    """:class:`schema.Invalid` for a record whose bookkeeping contradicts itself or the run
    block: ranks, hosts, element count, iterations, the reduction beside the call."""
    p = rec.get("world_size")
    if p is not None and run.get("world_size") is not None and p != run["world_size"]:
        raise _self("world_size", f"expected the run's world_size {run['world_size']}, got {p}")
    hor, hosts = rec.get("host_of_rank"), rec.get("hosts")
    if hor is not None and p is not None:
        n_hosts = len(hosts) if isinstance(hosts, list) else None
        if not isinstance(hor, list) or len(hor) != p:
            raise _self(
                "host_of_rank", f"expected {p} host numbers (one per rank), got {hor!r:.60}"
            )
        if not all(
            isinstance(h, int) and not isinstance(h, bool) and 0 <= h < (n_hosts or 1 << 30)
            for h in hor
        ):
            raise _self(
                "host_of_rank", f"expected host numbers 0..{(n_hosts or 1) - 1}, got {hor!r:.60}"
            )
    count, size = rec.get("count"), ITEMSIZE.get(rec.get("dtype"))
    if count is not None and size is not None and count * size != rec["bytes"]:
        raise _self(
            "count",
            f"expected bytes / {size} B ({rec['dtype']}) = {rec['bytes'] / size:g}, got {count!r}",
        )
    for key in ("iters", "repeats"):
        v = rec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise _self(key, f"expected at least 1 timed call behind the times, got {v!r}")
    _reduce(rec)
    factor = rec.get("busbw_factor")
    p, kind = rec.get("world_size"), rec.get("collective", "allreduce")
    if factor is not None and p is not None and kind in BUSBW_FACTORS:
        # the factor is the collective's at its ranks, not the record's say: an allreduce at
        # 3 ranks given 2 drew a busbw 1.5 x the measured one (twelfth attack, L-H26)
        want = BUSBW_FACTORS[kind](p) if p > 1 else 0.0  # bench's: nothing moves at 1 rank
        if abs(factor - want) > RTOL * max(want, 1e-12):
            raise _bad(
                "busbw_factor",
                f"expected {want:g} (nccl-tests' factor of {kind} at {p} ranks), got {factor:g}",
            )


def _reduce(rec: dict) -> None:
    red = rec.get("reduce_s")
    if red is None or rec.get("collective", "allreduce") not in ("allreduce", "reduce-scatter"):
        return
    slowest = rec.get("time_s_max") or rec["time_s"]
    top = REDUCE_SLACK * slowest + REDUCE_OVERHEAD_S
    if not isinstance(red, (int, float)) or isinstance(red, bool) or not 0 <= red <= top:
        raise _self(
            "reduce_s",
            f"expected 0 to {top:g} s (a local sum of the buffer the call itself reduces in "
            f"at most {slowest:g} s), got {red!r}",
        )


def _self(key: str, message: str) -> schema.Invalid:
    return schema.Invalid(key, f"{message} (a record that contradicts itself)")


#: The shaper's slack on the recorded link rate (``tbf`` keeps to it within a few percent).
LINK_RTOL = 0.05
#: The largest default bucket of the emulated cluster's shaper when the file records none:
#: five jumbo frames (``ops.cluster.shaping.default_burst``; 20 us of line rate is less up
#: to 18 Gbit/s, and is added below).
BURST_BYTES = 5 * 9014


def _hosts(rec: dict, run: dict) -> int:
    """How many hosts the record's ranks span (``run.hosts``; else the cluster's ranks per
    host), 0 when the file does not say."""
    if run.get("hosts"):
        return sum(1 for h in run["hosts"] if h["ranks"])
    per, p = (run.get("cluster") or {}).get("ranks_per_host"), rec.get("world_size")
    return -(-p // per) if isinstance(per, int) and per > 0 and p else 0


def link_bound(rec: dict, run: dict) -> None:
    """:class:`schema.Invalid` for a record faster than the recorded cluster's links allow.

    Ranks on ``h >= 2`` hosts: each host's link carries at least ``c (h-1)/h`` of the bytes
    (the factor ``c (p-1)/p`` at ``h`` ranks; hierarchically, shared memory inside a host),
    less the shaper's bucket, at the link rate (+ :data:`LINK_RTOL`)."""
    rate = (run.get("cluster") or {}).get("rate")
    p, h = rec.get("world_size") or run.get("world_size") or 0, _hosts(rec, run)
    if rate is None or not 2 <= h <= p:
        return
    bps = (rate_bits(rate) if isinstance(rate, str) else float(rate)) / 8
    burst = (run.get("cluster") or {}).get("burst_bytes") or BURST_BYTES + bps * 20e-6
    factor = rec.get("busbw_factor") or 2.0 * (p - 1) / p
    wire = rec["bytes"] * factor * p / (p - 1) * (h - 1) / h - burst
    if wire <= 0:
        return
    top = rec["bytes"] / (wire / (bps * (1 + LINK_RTOL))) * factor / 1e9
    if rec["busbw"] > top:
        raise _bad(
            "busbw",
            f"expected at most {top:g} GB/s: {h} hosts on the cluster's {rate} links "
            f"({bps / 1e9:g} GB/s) carry {wire:.0f} B of {rec['bytes']} B per host beyond the "
            f"shaper's bucket, got {rec['busbw']:g}",
        )


def _bad(key: str, message: str) -> schema.Invalid:
    return schema.Invalid(key, f"{message} (a file that breaks physics)")


def p2p_refusal(doc, where: str) -> None:
    """``UsageError`` naming what a ``bench --p2p`` file is, which the report does not draw."""
    recs = doc.get("records") if isinstance(doc, dict) else doc
    if isinstance(recs, list) and recs and all(isinstance(r, dict) and "p2p" in r for r in recs):
        raise UsageError(
            f"{where}: a bench --p2p file (point-to-point latency and bandwidth per pair); "
            "report does not draw point-to-point records yet (it reads bench --allreduce "
            "and --collective files)"
        )
