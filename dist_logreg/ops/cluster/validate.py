"""One check of the link values ``cluster up`` and ``cluster set`` take, against what ``tc``
and ``nft`` accept, before anything is touched; the subnets of the clusters that are up.

``tc``'s ``tbf`` keeps its burst and queue limit in 32 bits, so a rate whose default queue
(1 ms of line rate) exceeds 4 GiB fails in ``tc`` after other links were already shaped:
:func:`check_link_values` computes every shaper's values first, then has ``tc`` itself try
each distinct one on a scratch veth pair in a namespace of its own (:func:`tc_dry_run`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster.nft import PPM
from dist_logreg.ops.cluster.shaping import default_burst, default_queue, frame, nic_queue
from dist_logreg.ops.cluster.state import STATE_ROOT, in_ns, sh
from dist_logreg.units import rate_bits

#: ``tbf`` keeps burst and limit as 32-bit byte counts.
TC_U32 = 2**32 - 1
#: The most loss ``nft``'s drop rule expresses short of every packet (999999 ppm).
LOSS_MAX_PCT = 100 * (PPM - 1) / PPM
#: The least loss it expresses: 1 ppm (below, the rule drops nothing).
LOSS_MIN_PCT = 100 / PPM
#: ``--mtu``: 576 (the smallest datagram every IPv4 host must take) to 65535 (a veth's most).
MTU_MIN, MTU_MAX = 576, 65535


def check_mtu(mtu) -> int:
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not MTU_MIN <= mtu <= MTU_MAX:
        raise UsageError(f"--mtu: expected bytes from {MTU_MIN} to {MTU_MAX}, got {mtu!r}")
    return mtu


def check_link_values(
    *,
    rates: dict[str, str | None],
    loss_pct: float | None,
    loss_links: dict[str, float],
    link_ids: list[str],
    burst: int | None,
    queue: int | None,
    mtu: int,
) -> list[tuple[str, str, int, int]]:
    """Every value of one ``up`` or ``set``, or a ``UsageError`` naming the option and value;
    returns the shapers (option, rate, burst, limit) for :func:`tc_dry_run`.

    ``rates``: ``{"--rate": "300mbit", "--uplink-rate": None}``, the rates the links will
    have. Loss must be below 100 % (a link that drops everything runs no job, and
    ``nft``'s ``numgen`` has no value for it).
    """
    pcts = [("--loss", loss_pct), *((f"--loss-link {k}", v) for k, v in loss_links.items())]
    for what, pct in pcts:
        if pct is not None and not 0 <= pct <= 100:
            raise UsageError(f"{what}: expected a percentage in [0, 100], got {pct}")
        if pct is not None and 0 < pct < LOSS_MIN_PCT:
            # nft drops in parts per million: below 1 ppm the rule drops nothing at all
            raise UsageError(
                f"{what}: expected 0 (no loss) or at least {LOSS_MIN_PCT:g} % (1 part per "
                f"million, the least nft's random drop rule expresses; {pct!r} % rounds to 0 "
                f"of {PPM}: no loss, while the cluster would record some), got {pct!r}"
            )
        if pct is not None and pct > LOSS_MAX_PCT:
            # nft drops in parts per million: 99.99995 % and above round to all of them
            raise UsageError(
                f"{what}: expected a percentage below 100, at most {LOSS_MAX_PCT:g} (nft "
                f"drops in parts per million; {pct!r} % is {round(pct / 100 * PPM)} of {PPM}: "
                "every packet, no job could run, and nft's random drop rule has no value "
                f"for it), got {pct!r}"
            )
    for k in loss_links:
        if k not in link_ids:
            raise UsageError(f"--loss-link: expected a link among {', '.join(link_ids)}, got {k!r}")
    for what, value in (("--burst", burst), ("--queue", queue)):
        if value is not None and value < frame(mtu):
            raise UsageError(
                f"{what}: expected at least {frame(mtu)} bytes (one full-size frame), got {value}"
            )
        if value is not None and value > TC_U32:
            raise UsageError(f"{what}: expected at most {TC_U32} bytes (tc's limit), got {value}")
    shapers = set()
    for what, rate in rates.items():
        if rate is None:
            continue
        b, q = burst or default_burst(rate, mtu), queue or default_queue(rate)
        for key, v, name in (("--burst", b, "bucket"), ("--queue", q, "queue")):
            if v > TC_U32:
                most = TC_U32 * 8 / (1e-3 if key == "--queue" else 20e-6) / 1e6
                raise UsageError(
                    f"{what} {rate}: its default {name} ({v:.4g} bytes) is over tc's limit of "
                    f"{TC_U32}; expected a rate up to {most:.0f}mbit, or a smaller {key}"
                )
        shapers |= {(what, rate, b, q), (what, rate, b, nic_queue(mtu))}
    return sorted(shapers)


def tc_dry_run(shapers: list[tuple[str, str, int, int]], frame_bytes: int = 0) -> None:
    """``tc`` itself tries each ``(option, rate, burst, limit)`` on a scratch veth pair, and
    reads back what it holds (:func:`held_as_asked`; ``frame_bytes``: the largest frame,
    which a bucket must pass)."""
    ns = f"_tc_check_{os.getpid()}"  # no cluster name starts with "_": never one of theirs
    sh(["ip", "netns", "add", ns])
    try:
        sh([*in_ns(ns), "ip", "link", "add", "name", "tca", "type", "veth", "peer", "name", "tcb"])
        for what, rate, burst, limit in shapers:
            tbf = ["tbf", "rate", rate, "burst", str(burst), "limit", str(limit)]
            r = sh([*in_ns(ns), "tc", "qdisc", "replace", "dev", "tca", "root", *tbf], check=False)
            if r.returncode != 0:
                raise UsageError(
                    f"{what} {rate}: tc refuses its shaper (tbf rate {rate} burst {burst} "
                    f"limit {limit}: {(r.stderr or r.stdout).strip()}); nothing was changed"
                )
            shown = sh([*in_ns(ns), "tc", "-j", "qdisc", "show", "dev", "tca"], check=False)
            held_as_asked(what, rate, burst, _tbf_options(shown.stdout), frame_bytes)
    finally:
        sh(["ip", "netns", "del", ns], check=False)


def _tbf_options(text: str) -> dict:
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError, AttributeError):
        return next(q["options"] for q in json.loads(text) if q.get("kind") == "tbf")
    return {}


#: tc stores a tbf's bucket as a time in whole ticks (a microsecond here): a bucket it
#: holds within a tick of line rate (or 1 %) of the one asked for is the same bucket,
#: rounded (20 us at 40 Gbit/s is kept as 19 us); beyond, tc clamped it.
HELD_RTOL, TICK_S = 0.01, 1.05e-6


def held_as_asked(what: str, rate: str, burst: int, held: dict, frame_bytes: int = 0) -> None:
    """A ``UsageError`` where tc keeps a shaper other than the one asked for: tbf stores the
    bucket as a time of at most 2^32 ticks (34 s of line rate at 10 Mbit/s), so a larger
    bucket (``--burst 1G`` at 10 Mbit/s), one under a tick (9014 B at 100 Gbit/s: 0 B) or a
    rate of a few bits/s is rounded or clamped without an error, and the cluster would
    record a bucket, or a rate, that its shapers do not have (or a bucket no full-size
    frame passes). ``held``: tc's ``options`` of the tbf (``rate`` B/s, ``burst`` bytes)."""
    got_rate, got_burst = held.get("rate"), held.get("burst")
    want_rate = rate_bits(rate) / 8
    slack = max(HELD_RTOL * burst, TICK_S * want_rate)
    if isinstance(got_burst, int) and (
        abs(got_burst - burst) > slack or got_burst < min(frame_bytes, burst)
    ):
        raise UsageError(
            f"{what} {rate} with a bucket of {burst} bytes (--burst, or the rate's default): "
            f"tc keeps {got_burst} bytes (tbf holds the bucket as a time in whole ticks, at "
            "most 2^32 of them: it rounds and clamps); expected a bucket of more than a "
            "microsecond of line rate and far less than 2^32 ticks of it (another --burst or "
            "rate); nothing was changed"
        )
    if isinstance(got_rate, int) and abs(got_rate - want_rate) > HELD_RTOL * want_rate:
        raise UsageError(
            f"{what} {rate}: tc keeps a rate of {got_rate * 8} bit/s, not {rate} "
            f"({want_rate * 8:g} bit/s); expected a rate tc can hold; nothing was changed"
        )


def overlapping(name: str, subnet: str) -> tuple[str, str] | None:
    """``(cluster, its subnet)`` of a cluster that is up on a subnet overlapping ``subnet``."""
    net = ipaddress.ip_network(subnet, strict=False)
    if not STATE_ROOT.is_dir():
        return None
    for path in sorted(STATE_ROOT.glob("*/state.json")):
        if path.parent.name == name:
            continue
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            other = json.loads(path.read_text())["spec"]["subnet"]
            if net.overlaps(ipaddress.ip_network(other, strict=False)):
                return path.parent.name, other
    return None
