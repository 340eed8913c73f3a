"""``cluster set``: change rates, buckets, queues, loss and hashing of a running cluster.

In place, in seconds: shapers are replaced (``tc qdisc replace``), loss tables rewritten,
the leaves' hash policy set; nothing is rebuilt and no address changes. Each change is
recorded in the state (``changes``, and the spec itself), so every later run's provenance
(``run.cluster``) carries the fabric it really ran on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import counters, leafspine, nft
from dist_logreg.ops.cluster.shaping import FRAME, packets_one_at_a_time, shape
from dist_logreg.ops.cluster.state import HASHES, Cluster, load, preflight


@dataclass
class Change:
    """What ``cluster set`` was asked for; ``None`` leaves a setting as it is."""

    rate: str | None = None
    uplink_rate: str | None = None
    loss_pct: float | None = None
    loss_links: dict[str, float] = field(default_factory=dict)
    burst: int | None = None
    queue: int | None = None
    hash: str | None = None


def install_loss(c: Cluster) -> None:
    """A ``numgen random`` drop on the receiving end of every lossy link, both directions.

    Replaces the cluster's loss tables wherever it has links, so it also removes loss.
    """
    spaces = sorted({end[0] for link in c.links for end in (link.a, link.b)})
    by_ns: dict[str, dict[str, float]] = {}
    for link in c.links:
        pct = c.spec.loss_links.get(link.id, c.spec.loss_pct)
        if pct:
            for ns, dev, _ in (link.a, link.b):
                by_ns.setdefault(ns, {})[dev] = pct
                packets_one_at_a_time(ns, dev)  # drop frames, not 64 KB offload chunks
    if by_ns:
        nft.need_nft("--loss without netem (an nftables drop rule)")
    for ns in spaces:
        if c.nft or ns in by_ns:
            nft.delete_tables(c.name, ns, families=("netdev",))
        if ns in by_ns:
            nft.apply(ns, nft.loss_rules(c.name, by_ns[ns]))
            c.nft = True


def _check(c: Cluster, ch: Change, link_ids: list[str]) -> None:
    if ch.hash is not None:
        if c.spec.topology != "leaf-spine":
            raise UsageError(
                f"--hash: only for a leaf-spine cluster, {c.name!r} is {c.spec.topology}"
            )
        if ch.hash not in HASHES:
            raise UsageError(f"--hash: expected l3 or l4, got {ch.hash!r}")
    if ch.uplink_rate is not None and c.spec.topology == "flat":
        raise UsageError(f"--uplink-rate: cluster {c.name!r} is flat: it has no uplinks")
    pcts = [("--loss", ch.loss_pct), *((f"--loss-link {k}", v) for k, v in ch.loss_links.items())]
    for what, pct in pcts:
        if pct is not None and not 0 <= pct <= 100:
            raise UsageError(f"{what}: expected a percentage in [0, 100], got {pct}")
    for k in ch.loss_links:
        if k not in link_ids:
            raise UsageError(f"--loss-link: expected a link among {', '.join(link_ids)}, got {k!r}")
    for what, value in (("--burst", ch.burst), ("--queue", ch.queue)):
        if value is not None and value < FRAME:
            raise UsageError(
                f"{what}: expected at least {FRAME} bytes (one full-size frame), got {value}"
            )
    if (
        all(v is None for v in (ch.rate, ch.uplink_rate, ch.loss_pct, ch.burst, ch.queue, ch.hash))
        and not ch.loss_links
    ):
        raise UsageError(
            "cluster set: expected at least one of --rate, --uplink-rate, --loss, "
            "--loss-link, --burst, --queue, --hash"
        )


def _reshape(c: Cluster) -> None:
    for link in c.links:
        rate = c.spec.uplink_rate if link.cls == "uplink" else c.spec.rate
        if rate is None:
            continue
        for ns, dev, _ in (link.a, link.b):
            nic = link.cls == "host" and dev == "eth0"
            shape(ns, dev, rate, c.burst, c.queue, c.spec.delay_ms, nic=nic, verb="replace")


def apply(name: str, ch: Change, say=print) -> Cluster:
    """Change cluster ``name`` in place; returns its new state (saved)."""
    preflight()
    c = load(name)
    _check(c, ch, [link.id for link in c.links])
    s, what = c.spec, []

    def note(key: str, old, new) -> None:
        if new is not None and new != old:
            what.append(f"{key} {old if old is not None else 'none'} -> {new}")

    note("rate", s.rate, ch.rate)
    note("uplink-rate", s.uplink_rate, ch.uplink_rate)
    note("burst", c.burst or "default", ch.burst)
    note("queue", c.queue or "default", ch.queue)
    note("loss", s.loss_pct, ch.loss_pct)
    for k, v in sorted(ch.loss_links.items()):
        note(f"loss-link {k}", s.loss_links.get(k), v)
    note("hash", s.hash, ch.hash)
    s.rate = ch.rate or s.rate
    s.uplink_rate = ch.uplink_rate or s.uplink_rate
    c.burst = ch.burst or c.burst
    c.queue = ch.queue or c.queue
    s.burst, s.queue = c.burst or None, c.queue or None
    if ch.loss_pct is not None:
        s.loss_pct = ch.loss_pct or None
    s.loss_links = {**s.loss_links, **ch.loss_links}
    s.loss_links = {k: v for k, v in s.loss_links.items() if v}
    if any(v is not None for v in (ch.rate, ch.uplink_rate, ch.burst, ch.queue)):
        _reshape(c)
        if c.calibration and what:  # measured on other shaping: no longer the ceiling
            c.calibration = {}
            what.append(
                "calibration dropped (shaping changed; `cluster up --calibrate` measures a new one)"
            )
    if ch.loss_pct is not None or ch.loss_links:
        install_loss(c)
    if ch.hash is not None:
        leafspine.set_hash(c, ch.hash)
    change = {
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "what": ", ".join(what) or "nothing (already so)",
    }
    c.changes.append(change)
    c.save()
    counters.save_baseline(c, counters.snapshot(c))  # status counts from the change on
    say(f"dist-logreg cluster: {c.name}: {change['what']}")
    return c
