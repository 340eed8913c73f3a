"""Rate shaping (``tbf``) and delay (``netem``) on one end of a link.

A token bucket lets ``burst`` bytes through at memory speed after the link was idle, and
only what comes after waits for tokens. A message smaller than the bucket is therefore not
shaped at all: with a 1.25 MB bucket on a "1 Gbit/s" link a 64 KiB allreduce took 71 us,
7x faster than the wire allows. The default bucket is two full-size frames (or 20 us of
line rate at high rates), so every message is shaped to within two frames' time (24 us at
1 Gbit/s). ``queue`` is the byte limit of a switch port's queue behind its bucket: a long
queue delays the acknowledgements that share it with data flowing the other way; a short
one drops more. See the README ("Shaping: honest and calibrated").
"""

from __future__ import annotations

from dist_logreg.ops.cluster.state import in_ns, sh
from dist_logreg.units import rate_bits

#: The largest frame a link carries (MTU 1500 plus the Ethernet header).
FRAME = 1514


#: The smallest default bucket: five full-size frames (7,570 B). A 64 KiB message then takes
#: at least 1 - 7570/65536 = 88% of its wire time, and the shaper's timer may fire up to
#: five frames late (121 us at 500 Mbit/s) before tokens are lost; with two frames (48 us
#: at 500 Mbit/s) a loaded 2-core machine lost a third of the rate (docs/emulated-fabric.md).
BURST_FRAMES = 5


def frame(mtu: int = 1500) -> int:
    """The largest frame a link of this MTU carries (the MTU plus the Ethernet header)."""
    return mtu + FRAME - 1500


def default_burst(rate: str, mtu: int = 1500) -> int:
    """Five full-size frames or 20 us of line rate, whichever is larger.

    At 10 Gbit/s and above the timer that refills the bucket cannot wake every few
    microseconds, so the bucket grows with the rate. A bucket smaller than one frame would
    never let that frame through, so jumbo frames get a larger one.
    """
    return max(BURST_FRAMES * frame(mtu), int(rate_bits(rate) / 8 * 20e-6))


def default_queue(rate: str) -> int:
    """A switch port's queue behind the bucket: 1 ms of line rate, at least 64 KiB."""
    return max(64 * 1024, int(rate_bits(rate) / 8 * 1e-3))


#: A host's own end queues like a NIC (txqueuelen 1000): a sender does not drop its own
#: packets, TCP's small-queue limits hold it back instead.
NIC_QUEUE = 1000 * FRAME


def nic_queue(mtu: int = 1500) -> int:
    """:data:`NIC_QUEUE` at this MTU (1000 full-size frames)."""
    return 1000 * frame(mtu)


def shape(
    ns: str,
    dev: str,
    rate: str | None,
    burst: int,
    queue: int,
    delay_ms=None,
    nic: bool = False,
    verb: str = "add",
    mtu: int = 1500,
) -> None:
    """Shape the egress of ``dev`` in namespace ``ns`` ("" = root): netem above tbf.

    ``burst`` and ``queue`` in bytes; 0 picks the defaults for ``rate``. ``nic``: this is a
    host's own end, whose queue is :data:`NIC_QUEUE` (``queue`` is for switch ports).
    ``verb``: ``add`` (a new link) or ``replace`` (``cluster set``, in place, no rebuild).
    A shaped end hands the shaper one frame at a time (:func:`packets_one_at_a_time`): tbf
    would otherwise split every 64 KB offload chunk larger than its bucket in software.
    """
    tc = [*in_ns(ns), "tc", "qdisc", verb, "dev", dev]
    parent = ["root"]
    if delay_ms:
        sh([*tc, "root", "handle", "1:", "netem", "delay", f"{delay_ms}ms"])
        parent = ["parent", "1:"]
    if rate:
        burst, queue = (
            burst or default_burst(rate, mtu),
            nic_queue(mtu) if nic else (queue or default_queue(rate)),
        )
        sh(
            [
                *tc,
                *parent,
                "handle",
                "2:",
                "tbf",
                "rate",
                rate,
                "burst",
                str(burst),
                "limit",
                str(queue),
            ]
        )
        packets_one_at_a_time(ns, dev)


def packets_one_at_a_time(ns: str, dev: str) -> None:
    """Make TCP hand ``dev`` one MTU-sized packet at a time instead of 64 KB GSO chunks.

    On a veth pair a 64 KB segmentation-offload chunk crosses as one packet, so a rule that
    drops "1% of packets" would drop 1% of 44-frame chunks, and a token bucket smaller than
    the chunk segments it in software (``tbf_segment``) at every hop. A real link carries
    frames.
    """
    sh(["ip", *(["-n", ns] if ns else []), "link", "set", "dev", dev, "gso_max_segs", "1"])


def netem_available(ns: str) -> bool:
    """Try a netem qdisc on the loopback of namespace ``ns`` (removed again)."""
    r = sh(
        [*in_ns(ns), "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        check=False,
    )
    if r.returncode == 0:
        sh([*in_ns(ns), "tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return r.returncode == 0
