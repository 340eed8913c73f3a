"""The packet engine's floor on link rates and on a switch port's bytes (two full packets
of the fabric's MTU), and its one delay per cable, checked before ns-3 is loaded.

Below about 1 Mbit/s a transport cannot get going in ns-3: a TCP handshake at 8 bit/s
takes minutes, ns-3 retries the SYN at 3, 6, 12, ... s (6 tries) and then ends the whole
process with ``NS_FATAL_ERROR`` after 189 simulated seconds (an abort, not an exception);
at 1 Mbit/s a full-size segment crosses a link in 12 ms, well inside TCP's first RTO (1 s)
and RoCE's timers. The flow engine has no handshake and takes any rate.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.errors import UsageError
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
