"""A ``simulate.json``'s checks beyond its top schema (:mod:`~dist_logreg.report.simulate`):
the schema of a packet row (every key :mod:`~dist_logreg.report.packetplots` reads), and the
relations between numbers: numbers of one row that contradict each other are a damaged or
edited file, never a simulation.

Pure Python: a :class:`~dist_logreg.schema.Invalid` names the key and both values.
"""

from __future__ import annotations

import json
import math

from dist_logreg import schema
from dist_logreg.collective.algorithms import BUSBW_FACTORS, get
from dist_logreg.report import simfloor
from dist_logreg.report.neighbour import _SECONDS
from dist_logreg.report.simfloor import RTOL, _bad

_SPAN = schema.table(
    {
        "bucket": schema.count(0),
        "collective": schema.text(),
        "bytes": schema.count(1, 1 << 50, "a whole number of bytes"),
        "ready_s": _SECONDS,
        "start_s": _SECONDS,
        "end_s": _SECONDS,
    },
    what="a bucket's span (an object)",
)
_STEP_ROW = schema.table(
    {
        "ranks": schema.count(1, 10**7, "a number of ranks"),
        "algorithm": schema.text(),
        "step_s": _SECONDS,
        "compute_s": _SECONDS,
        "comm_s": _SECONDS,
        "exposed_s": _SECONDS,
        "comm_fraction": schema.number(0.0, 1.0, "a fraction"),
        "efficiency": schema.number(0.0, 1e6, "a ratio"),
    },
    {"ranks-per-host": schema.count(1, 10**6, "a number of ranks")},  # 1e300 (V-H9)
    what="a step row (an object)",
)
_WORKLOAD = schema.table(
    {"spec": schema.text(), "buckets": schema.count(1)},
    {"forward_s": _SECONDS, "backward_s": _SECONDS, "optimizer_s": _SECONDS},
)
STEP = schema.table(
    {
        "workload": _WORKLOAD,
        "rows": schema.items(_STEP_ROW, 1, 10**6, "a list of step rows"),
        "timeline": schema.table(
            {"ranks": schema.count(1), "buckets": schema.items(_SPAN, 1, 10**7, "a list")},
            {"algorithm": schema.text()},
        ),
    },
    {"workloads": schema.items(_WORKLOAD, 1, 10**6, "a list of workloads")},  # Q-M1
)


def relations(doc) -> None:
    """:class:`schema.Invalid` for numbers of one row that contradict each other: busbw not
    bytes / time x the collective's factor (2(p-1)/p for an allreduce, (p-1)/p for a
    reduce-scatter or allgather; 0 with a zero time), a link's mean utilisation above its
    max, a packet series whose lengths differ from its times', a step shorter than its
    compute, a bucket that starts before it is ready or ends before it starts; a row given
    twice (every key the same)."""
    _drawable(doc)
    first: dict = {}
    floor = simfloor.Floor(doc)
    for i, r in enumerate(doc["results"]):
        # a sweep row's own fabric's (the first fabric's held a rail row's scale-up to the
        # leaf-spine's host link: J-H2, tenth attack); one the file lacks is refused below
        fabric = simfloor.fabric_of(doc, r) or doc.get("fabric")
        fastest = simfloor.fastest_link(fabric)
        reduce_s = simfloor.gamma_of(doc, r, fabric) * r["bytes"]
        _row_relations(r, f"results[{i}]", fastest, reduce_s)
        floor.check(r, f"results[{i}]")
        j = first.setdefault(json.dumps(r, sort_keys=True), i)
        if j != i:
            raise schema.Invalid(f"results[{i}]", f"expected each row once, got results[{j}] again")
    step = doc.get("step") or {}
    for i, r in enumerate(step.get("rows", [])):
        if r["step_s"] < r["compute_s"] * (1 - RTOL):
            raise _bad(
                f"step.rows[{i}].step_s",
                f"expected at least compute_s {r['compute_s']:g} s, got {r['step_s']:g}",
            )
    for i, x in enumerate((step.get("timeline") or {}).get("buckets", [])):
        if not x["ready_s"] <= x["start_s"] <= x["end_s"]:
            raise _bad(
                f"step.timeline.buckets[{i}]",
                f"expected ready_s <= start_s <= end_s, got {x['ready_s']:g}, "
                f"{x['start_s']:g}, {x['end_s']:g}",
            )


#: What one figure can draw: lines (an algorithm and size each, per sweep tag) and a name.
MAX_SERIES = 200
MAX_NAME = 200
#: Rows a report draws in about a minute on a loaded 2-core machine (10,000 rows of 200
#: series took 29 s at a load of 3.6; 100,000 ran past 2 min).
MAX_ROWS = 20_000


def _drawable(doc) -> None:
    """A file the report could not draw in minutes (100,000 rows of 1,000 algorithms took
    over 2 min in matplotlib's legend): refused with the count, before any drawing."""
    if len(doc["results"]) > MAX_ROWS:
        raise schema.Invalid(
            "results",
            f"expected at most {MAX_ROWS:,} rows to draw, got {len(doc['results']):,}; "
            "split the file",
        )
    keys = set()
    for i, r in enumerate(doc["results"]):
        for k in ("algorithm", "fabric", "workload", "scenario"):
            v = r.get(k)
            if isinstance(v, str) and len(v) > MAX_NAME:
                raise schema.Invalid(
                    f"results[{i}].{k}",
                    f"expected a name of at most {MAX_NAME} characters, got {len(v):,}",
                )
        keys.add(
            (r["algorithm"], r["bytes"], r.get("fabric"), r.get("workload"), r.get("scenario"))
        )
    if len(keys) > MAX_SERIES:
        raise schema.Invalid(
            "results",
            f"expected at most {MAX_SERIES} series (algorithm x size x sweep tags) to draw, got "
            f"{len(keys):,}; split the file",
        )


def _row_relations(r: dict, where: str, fastest: float, reduce_s: float) -> None:
    t, n, p, busbw = r["time_s"], r["bytes"], r["ranks"], r["busbw"]
    if t <= 0 and n > 0 and p > 1:
        raise _bad(f"{where}.time_s", f"expected more than 0 s for {n} B at {p} ranks, got {t:g}")
    factors = [2 * (p - 1) / p, (p - 1) / p]
    try:  # a packet row's was a ValueError traceback (V-H6)
        kind = get(r["algorithm"]).collective
    except (ValueError, TypeError) as exc:
        raise schema.Invalid(f"{where}.algorithm", str(exc).strip('"')) from None
    if kind in BUSBW_FACTORS:  # its own only: an allreduce's halved passed (M-M2)
        factors = [BUSBW_FACTORS[kind](p)]
    expect = [n / t * f for f in factors] if t > 0 else [0.0]
    if not any(abs(busbw - e) <= RTOL * e for e in expect):
        raise _bad(
            f"{where}.busbw",
            f"expected bytes / time_s x its collective's factor, 2(p-1)/p for an allreduce, "
            f"(p-1)/p for its halves ({' or '.join(map(_g, expect))} "
            f"B/s for {n} B in {t:g} s at {p} ranks), got {busbw:g}",
        )
    worst, seeds = r["time_s_worst"], r["time_s_seeds"]
    if abs(worst - max(seeds)) > RTOL * worst:
        raise _bad(
            f"{where}.time_s_worst",
            f"expected the slowest seed's time, max of time_s_seeds {max(seeds):g} s, "
            f"got {worst:g}",
        )
    algbw = r.get("algbw")
    if algbw is not None and abs(algbw - (n / t if t > 0 else 0.0)) > RTOL * algbw:
        raise _bad(f"{where}.algbw", f"expected bytes / time_s, got {algbw:g}")
    for c, u in r["links"].items():
        if u["mean_util"] > u["max_util"] * (1 + RTOL):
            raise _bad(
                f"{where}.links.{c}.mean_util",
                f"expected at most max_util {u['max_util']:g}, got {u['mean_util']:g}",
            )
    if r.get("packet"):
        _packet_relations(r, f"{where}.packet", fastest, reduce_s)


def _g(x: float) -> str:
    return f"{x:g}"


def _num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf")


def _packet_relations(r: dict, where: str, fastest: float, reduce_s: float) -> None:
    """A packet row's series against its own collective: samples in time order within the
    collective's time (one sample interval of slack), every queue sample within the row's
    peak and the peak within what the job moves, QP rates within the fastest link, pauses
    within the collective's time, each message done after it started and the last one at
    the row's time, less a reduction of the whole vector after it (``reduce_s``: recursive
    doubling reduces after its last message; the queues and messages are one seed's:
    between the fastest and the slowest seed's time)."""
    packet, t = r["packet"], r["time_s_worst"]
    q = packet.get("queue", {"t_s": [], "links": {}})
    _times(q["t_s"], f"{where}.queue.t_s", t)
    series = [(f"queue.links.{k}", v, len(q["t_s"])) for k, v in q["links"].items()]
    for k, v in (packet.get("rates") or {}).items():
        series.append((f"rates.{k}.bytes_per_s", v["bytes_per_s"], len(v["t_s"])))
        _times(v["t_s"], f"{where}.rates.{k}.t_s", t)
        _at_most(v["bytes_per_s"], fastest, f"{where}.rates.{k}.bytes_per_s", "the fastest link")
    for key, v, want in series:
        if len(v) != want:
            raise schema.Invalid(
                f"{where}.{key}", f"expected {want} values (one per t_s), got {len(v)}"
            )
    peaks = [packet.get(k) for k in ("peak_queue_bytes", "peak_host_nic_bytes")]
    peak = max((x for x in peaks if x is not None), default=None)  # switch ports, host NICs
    moved = _bytes_moved(r, len(packet.get("message_done_s", [])))
    if peak is not None:
        key = "peak_queue_bytes" if peak == peaks[0] else "peak_host_nic_bytes"
        _at_most([peak], moved, f"{where}.{key}", "4 x the bytes the job moves")
    for k, v in q["links"].items():
        _at_most(v, moved if peak is None else peak, f"{where}.queue.links.{k}", "the peak")
    packets = moved / 40  # every packet carries at least 40 B of headers
    for key in ("drops", "lost", "retransmissions", "ecn_marks", "pause_frames", "timeouts"):
        if isinstance(packet.get(key), int):
            _at_most([packet[key]], packets, f"{where}.{key}", "the packets the job sends")
    for i, x in enumerate(packet.get("links_detail") or []):
        if peak is not None and isinstance(x.get("peak_queue_bytes"), int | float):
            _at_most(
                [x["peak_queue_bytes"]],
                peak,
                f"{where}.links_detail[{i}].peak_queue_bytes",
                "the row's peak (switch port or host NIC)",
            )
        _at_most(
            [x.get("paused_s") or 0.0], t, f"{where}.links_detail[{i}].paused_s", "time_s_worst"
        )
    _lost(packet, where)
    _pauses_and_queues(packet, where)
    _messages(packet, where, r, reduce_s)
    _message_time(packet, where, r, fastest)


#: A packet on the wire at most (a 9000 B MTU's frame and its headers), B.
_FRAME = 9216


def _lost(packet: dict, where: str) -> None:
    """The row's lost packets and PAUSE frames are its links' (a lossy or paused link
    carried bytes, so it is in ``links_detail``), a link loses at most the packets it
    carried (each at least 40 B of headers) and pauses at most once for every xoff - xon it
    carried: 3,000 lost in a job of 50 packets, 16,000 PAUSEs, were drawn (twelfth attack,
    L-H13)."""
    details = [x for x in packet.get("links_detail") or [] if isinstance(x, dict)]
    for total, each, what in (
        ("lost", "lost", "lost packets"),
        ("pause_frames", "pauses", "PAUSE and RESUME frames"),
    ):
        got = packet.get(total)
        on_links = sum(x.get(each) or 0 for x in details)
        if details and isinstance(got, int) and got != on_links:
            raise _bad(
                f"{where}.{total}",
                f"expected the links' {what}, {on_links} (links_detail[*].{each}), got {got}",
            )
    options = packet.get("options") or {}
    xoff, xon = options.get("pfc_xoff"), options.get("pfc_xon")
    cycle = xoff - xon if _num(xoff) and _num(xon) and xoff > xon else 0
    for i, x in enumerate(details):
        # a PAUSE, then a RESUME, once its ingress filled past xoff from under xon: each
        # cycle takes xoff - xon bytes arriving on the link (16,000 frames drawn on links
        # that carried 800 KB at xoff 20 KiB, xon 10 KiB: L-H13); not with a shared
        # buffer, whose dynamic threshold may lie below xoff
        if cycle and not options.get("buffer") and isinstance(x.get("pauses"), int):
            most = 2 * (2 + (x.get("wire_bytes") or 0) / cycle)
            if x["pauses"] > most:
                raise _bad(
                    f"{where}.links_detail[{i}].pauses",
                    f"expected at most {most:g} (a PAUSE and a RESUME for every xoff - xon = "
                    f"{cycle:g} B the link carried), got {x['pauses']}",
                )
    for i, x in enumerate(details):
        most = (x.get("wire_bytes") or 0) / 40
        if (x.get("lost") or 0) > most:
            raise _bad(
                f"{where}.links_detail[{i}].lost",
                f"expected at most {most:g} (the link's wire_bytes over 40 B a packet), got "
                f"{x['lost']}",
            )


def _pauses_and_queues(packet: dict, where: str) -> None:
    """Without PFC no PAUSE is sent and no sender stands paused; a port never queues more
    than the bytes that reached it (its wire bytes, its drops' frames and one in service)."""
    off = (packet.get("options") or {}).get("pfc") == "off"
    details = [x for x in packet.get("links_detail") or [] if isinstance(x, dict)]
    if off:
        paused = [("pause_frames", packet.get("pause_frames") or 0)]
        for i, x in enumerate(details):
            paused += [(f"links_detail[{i}].{k}", x.get(k) or 0) for k in ("pauses", "paused_s")]
        for key, v in paused:
            if v:
                raise _bad(f"{where}.{key}", f"expected 0 (options.pfc is off), got {v!r}")
    reached = {}
    for i, x in enumerate(details):
        wire, drops = x.get("wire_bytes"), x.get("drops") or 0
        if schema.is_number(wire) and schema.is_number(drops):
            reached[x.get("link")] = wire + (drops + 1) * _FRAME
            if schema.is_number(x.get("peak_queue_bytes")):
                what = "the bytes that reached the port"
                _at_most(
                    [x["peak_queue_bytes"]],
                    reached[x.get("link")],
                    f"{where}.links_detail[{i}].peak_queue_bytes",
                    what,
                )
    for k, v in ((packet.get("queue") or {}).get("links") or {}).items():
        if k in reached:
            _at_most(v, reached[k], f"{where}.queue.links.{k}", "the bytes that reached the port")


def _message_time(packet: dict, where: str, r: dict, fastest: float) -> None:
    """The messages' times together at least all the bytes the collective sends (2(p-1) x
    bytes for an allreduce, one-way gossip; (p-1) x bytes for the others) at the fastest
    link: no message is delivered faster than its bytes cross a link."""
    done, start = packet.get("message_done_s", []), packet.get("message_start_s")
    start = [0.0] * len(done) if start is None else start  # none given: from the start
    if not done or len(start) != len(done) or min(done) < 0 or not fastest or r["ranks"] < 2:
        return
    p, kind = r["ranks"], get(r["algorithm"]).collective
    total = (p - 1) * r["bytes"] if kind == "broadcast" else BUSBW_FACTORS[kind](p) * p * r["bytes"]
    spent, least = sum(d - s for d, s in zip(done, start, strict=True)), total / fastest
    if spent < least * (1 - RTOL) - 1e-9 * len(done):  # the packet engine's 1 ns clock
        raise _bad(
            f"{where}.message_done_s",
            f"expected the messages' times to add up to at least {least:g} s (the {total:g} "
            f"B the collective sends, at the fastest link), got {spent:g}",
        )


def _bytes_moved(r: dict, messages: int) -> float:
    """A generous bound on the bytes a job's packets put on one port at once: 4 x what every
    rank sends in the most bytes-hungry of the algorithms (recursive doubling: log2 p + 2
    times the vector), plus 4 packets of headers per message and a MiB of control."""
    p, n = r["ranks"], r["bytes"]
    return 4.0 * p * n * (math.ceil(math.log2(max(p, 2))) + 2) + messages * 4 * 9200 + 2**20


def _messages(packet: dict, where: str, r: dict, reduce_s: float) -> None:
    done, start = packet.get("message_done_s", []), packet.get("message_start_s")
    t = r["time_s_worst"]
    if start is not None and len(start) != len(done):
        raise schema.Invalid(
            f"{where}.message_start_s",
            f"expected {len(done)} values (one per message_done_s), got {len(start)}",
        )
    for k, d in enumerate(done):
        s = start[k] if start is not None else 0.0
        if d == -1:  # never arrived (a result marked incomplete)
            continue
        if not (0 <= s <= d <= t * (1 + RTOL) + 1e-12):
            raise _bad(
                f"{where}.message_done_s[{k}]",
                f"expected a message done after it started ({s:g} s) and within the "
                f"collective's time {t:g} s (or -1: never arrived), got {d:g}",
            )
    if done and min(done) >= 0:
        low = min(r["time_s_seeds"]) - reduce_s  # a genuine gamma run failed this: L-H6
        if max(done) < low * (1 - RTOL) - 1e-12:
            raise _bad(
                f"{where}.message_done_s",
                f"expected the last message done at the row's time (at least the fastest "
                f"seed's time less a reduction of the whole vector at gamma, {low:g} s), got "
                f"{max(done):g}",
            )


def _times(ts, where: str, t: float) -> None:
    step = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else 0.0
    for k in range(1, len(ts)):
        if ts[k] <= ts[k - 1]:
            raise _bad(
                f"{where}[{k}]",
                f"expected times in increasing order, got {ts[k - 1]:g} then {ts[k]:g}",
            )
    if ts and ts[-1] > t * (1 + RTOL) + step + 1e-12:
        raise _bad(
            f"{where}[{len(ts) - 1}]",
            f"expected a sample within the collective's time {t:g} s (+ one interval), "
            f"got {ts[-1]:g}",
        )


def _at_most(values, bound: float, where: str, what: str) -> None:
    for k, v in enumerate(values):
        if v > bound * (1 + RTOL):
            raise _bad(
                f"{where}[{k}]" if len(values) > 1 else where,
                f"expected at most {what} {bound:g}, got {v:g}",
            )
