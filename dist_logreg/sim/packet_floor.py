"""The packet engine's floor on link rates and on a switch port's bytes (two full packets
of the fabric's MTU), and its one delay per cable, checked before ns-3 is loaded; and what
a packet row of a ``simulate.json`` may hold on the fabric it ran on (:func:`check_row`,
for ``report``); what ns-3's clock (whole nanoseconds) resolves.

Below about 1 Mbit/s a transport cannot get going in ns-3: a TCP handshake at 8 bit/s
takes minutes, ns-3 retries the SYN at 3, 6, 12, ... s (6 tries) and then ends the whole
process with ``NS_FATAL_ERROR`` after 189 simulated seconds (an abort, not an exception);
at 1 Mbit/s a full-size segment crosses a link in 12 ms, well inside TCP's first RTO (1 s)
and RoCE's timers. The flow engine has no handshake and takes any rate.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.sim.bounds import clock_slack_s
from dist_logreg.sim.packet_options import check_buffer_share
from dist_logreg.units import format_link_rate

#: The slowest link (bits/s) the packet engine runs.
MIN_RATE_BITS = 1e6


def check_link_rates(fab, transport: str) -> None:
    """``UsageError`` naming the slowest link's class and rate when it is below the floor."""
    rates = np.asarray(fab.link_rate, dtype=float) * 8.0  # B/s -> bit/s
    if rates.size == 0:
        return
    i = int(np.argmin(rates))
    if rates[i] >= MIN_RATE_BITS:
        return
    raise UsageError(
        f"--engine packet: link class {fab.class_names[int(fab.link_class[i])]} runs at "
        f"{format_link_rate(rates[i])}, below the packet engine's floor of "
        f"{format_link_rate(MIN_RATE_BITS)}: the {transport} transport cannot start within ns-3's "
        "timeouts (a TCP handshake at 8 bit/s outlasts 6 SYN tries, 189 s); use --engine "
        "flow, or faster links"
    )


def check_one_delay_per_cable(fab, lat: np.ndarray, link_names) -> None:
    """ns-3's point-to-point channel has one delay for both directions of a cable: a
    ``--link-delay`` on one direction only would be ignored (or set both), and the time
    would fall below the job's own lower bound. Refused, naming both directions."""
    from dist_logreg.sim.ns3net import _cables

    for ab, ba in _cables(fab):
        if lat[ab] != lat[ba]:
            names = link_names(fab)
            cls = [fab.class_names[fab.link_class[x]] for x in (ab, ba)]
            raise UsageError(
                f"--link-delay: {names[ab]} ({cls[0]}) would have {lat[ab] * 1e6:.6g} us and "
                f"its reverse {names[ba]} ({cls[1]}) {lat[ba] * 1e6:.6g} us; the packet "
                "engine's cables have one delay for both directions: give both the same "
                f"(e.g. --link-delay {cls[0]}=D --link-delay {cls[1]}=D)"
            )


def link_names(fab) -> list:
    names = fab.topology.node_names
    pairs = zip(fab.link_src.tolist(), fab.link_dst.tolist(), strict=True)
    return [f"{names[a]}>{names[b]}" for a, b in pairs]


def per_link(fab, mapping: dict, default, what: str) -> np.ndarray:
    """A value per directed link from ``{class or link name: value}`` (the others
    ``default``: one value, or one per link)."""
    out = np.array(np.broadcast_to(np.asarray(default, dtype=float), (fab.links,)))
    names = link_names(fab)
    for key, value in mapping.items():
        if key in fab.class_names:
            out[fab.link_class == fab.class_names.index(key)] = value
            continue
        a, sep, b = key.partition("-")  # a-b: both directions of one cable
        wanted = {key} if not sep else {f"{a}>{b}", f"{b}>{a}"}
        hit = [i for i, n in enumerate(names) if n in wanted]
        if not hit:
            raise UsageError(
                f"--{what}: expected a link class ({', '.join(fab.class_names)}) or a link "
                f"such as {names[0]}, got {key!r}"
            )
        out[hit] = value
    return out


def delayed(fab, opts):
    """``fab`` with ``--link-delay``'s delays, every other link its own: what ns-3 runs, so
    the ideal and the job's lower bound are computed with the same delays."""
    if not opts.link_delay:
        return fab
    topo = copy.copy(fab.topology)
    topo.link_latency = lat = per_link(fab, opts.link_delay, fab.link_latency, "link-delay")
    check_one_delay_per_cable(fab, lat, link_names)
    return dataclasses.replace(fab, topology=topo)


#: The fabrics with a row's --link-delay applied, kept (``recheck``'s caches key on their ids).
_DELAYED: dict = {}


def row_delayed(fab, delays: dict, where: str):
    """``fab`` with a packet row's ``options.link_delay`` (seconds by class or link), as the
    packet engine ran it (:func:`delayed`), for ``report`` (``sim/recheck.py``)."""
    from types import SimpleNamespace

    if not all(isinstance(k, str) and schema.is_finite(v) and v >= 0 for k, v in delays.items()):
        raise schema.Invalid(
            f"{where}.packet.options.link_delay",
            f"expected {{link class or link: seconds >= 0}}, got {schema.shown(delays)}",
        )
    key = (id(fab), tuple(sorted(delays.items())))
    if _DELAYED.get(key, (None,))[0] is not fab:
        try:
            _DELAYED[key] = fab, delayed(fab, SimpleNamespace(link_delay=dict(delays)))
        except UsageError as exc:
            raise schema.Invalid(f"{where}.packet.options.link_delay", str(exc)) from None
    return _DELAYED[key][1]


def check_port_bytes(fab, opts) -> None:
    """A switch port that cannot hold two full packets of the fabric's MTU (``--queue``, or
    a port's share of ``--buffer``) drops every packet: ns-3 ran for tens of seconds, then
    blamed loss. ``UsageError`` naming the option, the least it takes and the MTU."""
    mtu = int(fab.mtu)
    need = 2 * mtu
    if opts.buffer:
        why = f"two full packets at the fabric's MTU of {mtu} B"
        check_buffer_share(opts, need, why)
    elif opts.pfc != "on" and opts.queue < need:  # under PFC the thresholds bound a port
        raise UsageError(
            f"--queue: expected at least {need} bytes (two full packets at the fabric's MTU "
            f"of {mtu} B; mtu= in --fabric sets it), got {opts.queue}"
        )


def check_resolved(time_s: float, job) -> None:
    """``UsageError`` for a collective too short for ns-3's clock (whole nanoseconds, each
    hop's delays rounded: :func:`.bounds.clock_slack_s`): its time, busbw and link
    utilisation would be the rounding's, not the fabric's."""
    least = clock_slack_s(job, "packet")
    if job.ranks > 1 and time_s < least:
        raise UsageError(
            f"--engine packet: the collective takes {time_s * 1e9:.3g} ns, under what ns-3's "
            f"clock (whole nanoseconds, each hop rounded) resolves for it ({least * 1e9:.3g} "
            "ns): give the links a latency (link-latency=), more --bytes, or use --engine flow"
        )


def utilisation(fab, link_bytes, time_s) -> dict:
    """Per link class, its busiest and mean link's busy time / the collective's time."""
    # at most 1: ns-3's clock is whole nanoseconds, so a time under a few ns is rounded
    # down (a 1 B job at 0 s) and bytes / (rate x time) would pass what a link carries
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(link_bytes > 0, np.minimum(link_bytes / (fab.link_rate * time_s), 1.0), 0)
    out = {}
    for c, name in enumerate(fab.class_names):
        mine = util[fab.link_class == c]
        if mine.size:
            out[name] = {"max_util": float(mine.max()), "mean_util": float(mine.mean())}
    return out


def check_row(fab, jobs: list, sums, r: dict, where: str) -> None:
    """:class:`schema.Invalid` where a packet row breaks the physics of the fabric it ran on
    (``jobs``: its job for each placement; ``sums``: the fabric's link sums): a message done
    sooner after its start than its bytes take at what its sender can push (less the
    engine's 1 ns clock); a queue pair paced above what its source rank can push (its
    node's links); a packet lost with no loss set; a switch port queueing more than its
    own bound with PFC off (``--queue``, or the shared ``--buffer``; a host's NIC queue is
    its socket backlog, not bounded so), or more than could have reached it by the sample
    (its switch's links in, from 0 s) or than it could still send by the end."""
    from dist_logreg.sim.bounds import message_floors_s, push_rates

    pk = r.get("packet") or {}
    if not pk:
        return  # a flow row: nothing of the packet engine's (and no messages built)
    done, start = pk.get("message_done_s") or [], pk.get("message_start_s")
    start = [0.0] * len(done) if start is None else start  # none given: from the start
    floors = [message_floors_s(j, sums) for j in jobs] if done else []
    if done and len(start) == len(done) and all(f.size == len(done) for f in floors):
        least = np.min(floors, axis=0)
        for k, (d, s) in enumerate(zip(done, start, strict=True)):
            if d >= 0 and d - s < least[k] * (1 - 1e-9) - NS:
                what = "s (its bytes at what its sender can push)"
                _over(f"{where}.packet.message_done_s[{k}]", d - s, least[k], "at least", what)
    push = np.max([push_rates(j, sums)[0] for j in jobs], axis=0)
    for name, v in (pk.get("rates") or {}).items():
        src = str(name).partition(">")[0]
        # the engine's "i>j"; another name: the most any rank can push
        most = push[int(src)] if src.isdigit() and int(src) < push.size else push.max()
        for got in v.get("bytes_per_s") or [] if isinstance(v, dict) else []:
            if schema.is_number(got) and got > most * (1 + 1e-9):
                _over(
                    f"{where}.packet.rates.{name}.bytes_per_s",
                    got,
                    most,
                    "at most",
                    "B/s (what the QP's source rank can push: its node's links)",
                )
    _lost(fab, pk, where)
    _queues(fab, sums, r, pk, where)


#: The packet engine's clock: its times are whole nanoseconds.
NS = 1e-9


def _lost(fab, pk: dict, where: str) -> None:
    """No packet lost on a link that no loss applies to: none set, none lost anywhere; with
    ``--loss-link`` alone, only on the links (or classes) it names (K-M1)."""
    options = pk.get("options") or {}
    if options.get("loss"):
        return  # every link may lose
    named = options.get("loss_link") or {}
    if not isinstance(named, dict) or not all(
        isinstance(k, str) and schema.is_number(v) and 0 <= v <= 1 for k, v in named.items()
    ):
        raise schema.Invalid(  # (a message alone, no key: a TypeError, T-H5)
            f"{where}.packet.options.loss_link",
            f"expected {{link class or link: fraction 0..1}}, got {schema.shown(named)}",
        )
    try:
        loss = per_link(fab, named, 0.0, "loss-link")
    except UsageError:
        raise schema.Invalid(
            f"{where}.packet.options.loss_link",
            f"expected link classes ({', '.join(fab.class_names)}) or links of the row's "
            f"fabric, got {schema.shown(sorted(named))}",
        ) from None
    index = {n: i for i, n in enumerate(link_names(fab))}
    why = "options.loss is 0 and no --loss-link"
    if not named:
        got = pk.get("lost")
        if got:
            raise schema.unphysical(
                f"{where}.packet.lost", f"expected 0 ({why}), got {schema.shown(got)}"
            )
    for i, x in enumerate(_details(pk)):
        got, k = x.get("lost"), index.get(x.get("link"))
        if got and (k is None or loss[k] == 0):
            what = why if not named else "options.loss is 0 and --loss-link names another link"
            raise schema.unphysical(
                f"{where}.packet.links_detail[{i}].lost",
                f"expected 0 on {schema.shown(x.get('link'))} ({what}), got {schema.shown(got)}",
            )


def _details(pk: dict) -> list:
    return [x for x in pk.get("links_detail") or [] if isinstance(x, dict)]


def _queues(fab, sums, r: dict, pk: dict, where: str) -> None:
    names, tier = fab.topology.node_names, fab.node_tier
    pairs = zip(fab.link_src, fab.link_dst, strict=True)
    link = {f"{names[a]}>{names[b]}": i for i, (a, b) in enumerate(pairs)}
    ports = {k for k, i in link.items() if tier[fab.link_src[i]] > 0}  # a switch's egress
    slack, end = 2 * int(fab.mtu) + 2 * _FRAME, r.get("time_s_worst")
    q = pk.get("queue") or {}
    _peaks(pk, q, ports, set(link), where)
    times = q.get("t_s") or []
    for k, v in (q.get("links") or {}).items():
        if k not in ports or len(v) != len(times):
            continue
        i = link[k]
        into, rate = float(sums.into[fab.link_src[i]]), float(fab.link_rate[i])
        for t, got in zip(times, v, strict=True):
            if not (schema.is_number(got) and schema.is_number(t)):
                continue
            most = into * t + slack  # what reached its switch by t
            if schema.is_number(end):
                most = min(most, rate * max(end - t, 0.0) + DRAIN * _FRAME)  # sent by the end
            if got > most:
                _over(
                    f"{where}.packet.queue.links.{k}",
                    got,
                    most,
                    "at most",
                    "B at "
                    f"{t:.6g} s (what reached its switch since 0 s at its links' rate, "
                    "and what its link can still send by the collective's end)",
                )
    for j, x in enumerate(_details(pk)):  # wire bytes x 40 drawn: 63 GB/s on 50 (M-H4)
        i, got = link.get(x.get("link")), x.get("wire_bytes")
        if i is not None and schema.is_number(got) and schema.is_number(end):
            most = float(fab.link_rate[i]) * end * (1 + 1e-6) + DRAIN * _FRAME
            if got > most:
                _over(
                    f"{where}.packet.links_detail[{j}].wire_bytes",
                    got,
                    most,
                    "at most",
                    "B (the link's rate over the collective's time_s_worst)",
                )
    options = pk.get("options") or {}
    limit = options.get("buffer") or options.get("queue")
    alpha = options.get("buffer_alpha")
    if options.get("buffer") and schema.is_number(alpha) and alpha > 0:
        limit = options["buffer"] * alpha / (1 + alpha)  # a port's dynamic share (M-H4)
    if options.get("pfc") != "off" or not schema.is_number(limit):
        return  # under PFC the ingresses' thresholds bound a port, not --queue
    queued = [(f"{where}.packet.peak_queue_bytes", pk.get("peak_queue_bytes"))]
    for i, x in enumerate(_details(pk)):
        if x.get("link") in ports:
            queued.append(
                (f"{where}.packet.links_detail[{i}].peak_queue_bytes", x.get("peak_queue_bytes"))
            )
    queued += [
        (f"{where}.packet.queue.links.{k}", x)
        for k, v in (q.get("links") or {}).items()
        if k in ports
        for x in v
    ]
    for key, got in queued:
        if schema.is_number(got) and got > limit + slack:
            _over(
                key,
                got,
                limit + slack,
                "at most",
                "B (a switch port's own bound with PFC "
                "off: options.buffer if set, else options.queue, and a frame in service)",
            )


def _peaks(pk: dict, q: dict, ports: set, known: set, where: str) -> None:
    """``peak_queue_bytes`` is the largest switch port's peak (``links_detail``: every port
    that queued sent), no port's queue sample above it; a host link's peak within
    ``peak_host_nic_bytes`` (a peak of 0 B was tabled beside ports of 9000 B: Q-H2)."""
    detail = [(x.get("link"), x.get("peak_queue_bytes")) for x in _details(pk)]
    got, nic = pk.get("peak_queue_bytes"), pk.get("peak_host_nic_bytes")
    if not all(schema.is_number(v) and k in known for k, v in detail):
        return  # a value that is no number (the schema names it), a link of another fabric
    if not schema.is_number(got):
        return
    want = max((v for k, v in detail if k in ports), default=0)
    seen = [x for k, v in (q.get("links") or {}).items() if k in ports for x in v]
    if got != want or any(schema.is_number(x) and x > got for x in seen):
        raise schema.unphysical(
            f"{where}.packet.peak_queue_bytes",
            f"expected {want} B (its switch ports' largest peak in links_detail, and no "
            f"queue sample above it), got {schema.shown(got)}",
        )
    host = max((v for k, v in detail if k not in ports), default=0)
    if schema.is_number(nic) and host > nic:
        _over(f"{where}.packet.peak_host_nic_bytes", nic, host, "at least", "B (links_detail)")


#: A packet on the wire at most (a 9000 B MTU's frame and its headers), B; what may still
#: sit in a port at the collective's end, in frames (ACKs, a go-back-N tail's copies).
_FRAME = 9216
DRAIN = 16


def _over(where: str, got, bound: float, how: str, what: str) -> None:
    raise schema.unphysical(where, f"expected {how} {bound:.6g} {what}, got {schema.shown(got)}")


def check_routing_memory(net) -> None:
    """Refuse a fabric whose routing tables would not fit: every host of it is routed (its
    shortest paths from every node, hosts x links arrays), whatever ranks the job has; 2
    ranks on 20,000 hosts grew 4.5 GB in 75 s to a ``MemoryError`` traceback (nineteenth
    attack, W-H1). The estimate is 2.5 x the arrays (measured 3.5 GB at 5,000 hosts)."""
    from dist_logreg.sim.exact import memory_limit

    hosts, nodes, links = int(net.hosts), int(net.nodes), len(net.link_src)
    need = 2.5 * hosts * (links * 17 + nodes * 24)
    limit = memory_limit()
    if limit is not None and need > limit / 2:
        raise UsageError(
            f"--engine packet: routing this fabric's {hosts:,} hosts ({links:,} links) needs "
            f"about {need / 2**30:.1f} GiB, over half the {limit / 2**30:.1f} GiB this process "
            "may take; expected a smaller fabric (every host of it is routed, whatever the "
            "ranks), or the flow engine"
        )
