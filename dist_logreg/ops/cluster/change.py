"""``cluster set``: change rates, buckets, queues, loss and hashing of a running cluster.

In place, in seconds: shapers are replaced (``tc qdisc replace``), loss tables rewritten,
the leaves' hash policy set; nothing is rebuilt and no address changes. Each change is
recorded in the state (``changes``, and the spec itself), so every later run's provenance
(``run.cluster``) carries the fabric it really ran on.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import counters, leafspine, nft
from dist_logreg.ops.cluster.shaping import frame, packets_one_at_a_time, shape
from dist_logreg.ops.cluster.state import (
    HASHES,
    STATE_ROOT,
    Cluster,
    check_name,
    load,
    preflight,
)
from dist_logreg.ops.cluster.validate import check_link_values, tc_dry_run


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


def _check(c: Cluster, ch: Change, link_ids: list[str]) -> list:
    """Every value, before anything is touched; the shapers the change needs (tc_dry_run)."""
    if ch.hash is not None:
        if c.spec.topology != "leaf-spine":
            raise UsageError(
                f"--hash: only for a leaf-spine cluster, {c.name!r} is {c.spec.topology}"
            )
        if ch.hash not in HASHES:
            raise UsageError(f"--hash: expected l3 or l4, got {ch.hash!r}")
    if ch.uplink_rate is not None and c.spec.topology == "flat":
        raise UsageError(f"--uplink-rate: cluster {c.name!r} is flat: it has no uplinks")
    if (
        all(v is None for v in (ch.rate, ch.uplink_rate, ch.loss_pct, ch.burst, ch.queue, ch.hash))
        and not ch.loss_links
    ):
        raise UsageError(
            "cluster set: expected at least one of --rate, --uplink-rate, --loss, "
            "--loss-link, --burst, --queue, --hash"
        )
    reshaping = any(v is not None for v in (ch.rate, ch.uplink_rate, ch.burst, ch.queue))
    rates = {
        "--rate": ch.rate or c.spec.rate,
        "--uplink-rate": ch.uplink_rate or c.spec.uplink_rate,
    }
    shapers = check_link_values(
        rates=rates if reshaping else {},
        loss_pct=ch.loss_pct,
        loss_links=ch.loss_links,
        link_ids=link_ids,
        burst=ch.burst if ch.burst is not None else c.burst or None,  # 0 is checked
        queue=ch.queue if ch.queue is not None else c.queue or None,
        mtu=c.spec.mtu,
    )
    return shapers


def _reshape(c: Cluster) -> None:
    for link in c.links:
        rate = c.spec.uplink_rate if link.cls == "uplink" else c.spec.rate
        if rate is None:
            continue
        for ns, dev, _ in (link.a, link.b):
            nic = link.cls == "host" and dev == "eth0"
            shape(
                ns,
                dev,
                rate,
                c.burst,
                c.queue,
                c.spec.delay_ms,
                nic=nic,
                verb="replace",
                mtu=c.spec.mtu,
            )


def apply(name: str, ch: Change, say=print, force: bool = False) -> Cluster:
    """Change cluster ``name`` in place, all or nothing; returns its new state (saved).

    One ``set`` at a time (a lock in the state directory); every value checked, and every
    shaper tried by ``tc`` on a scratch link, before anything is touched; a failure in the
    middle restores every link as it was. Refused while a ``cluster run`` job runs, unless
    ``force``: that job's provenance records the fabric it started on. From the first link
    touched to the state saved, SIGINT and SIGTERM wait (:class:`_Held`): the links and
    ``state.json`` change together, and the interrupt then says which way it ended.
    """
    preflight()
    check_name(name)
    held = _Held()
    try:
        with _set_lock(name):
            c = load(name)
            tc_dry_run(_check(c, ch, [link.id for link in c.links]), frame(c.spec.mtu))
            job = running_job(c)
            if job and not force:
                raise UsageError(
                    f"cluster set: a job runs on cluster {name!r} (cluster run, pid "
                    f"{job['pid']}, since {job['utc']}), and its summary records the fabric "
                    "it started on; expected to wait for it, or --force (the change is then "
                    "only in the cluster's changes, with its time)"
                )
            held.start()
            change = _apply_and_record(c, ch, job)
        counters.save_baseline(c, counters.snapshot(c))  # status counts from the change on
        say(f"dist-logreg cluster: {c.name}: {change['what']}")
    except Exception as exc:
        held.stop(str(exc) if isinstance(exc, UsageError) else None)
        raise
    held.stop(f"the change was finished and recorded first: {change['what']}")
    return c


def _apply_and_record(c: Cluster, ch: Change, job: dict | None) -> dict:
    """Put the change on the links and in ``state.json``; a failure restores the links."""
    before = copy.deepcopy(c)
    what = _update(c, ch)
    try:
        redone = _enact(c, ch)
    except (UsageError, OSError) as exc:
        _restore(before, exc)
    if c.calibration and what and "shaping" in redone:
        c.calibration = {}  # measured on other shaping: no longer the ceiling
        what.append(
            "calibration dropped (shaping changed; `cluster up --calibrate` measures a new one)"
        )
    text = ", ".join(what) or (
        f"no setting changed; re-applied the {' and '.join(redone)} of every link as "
        "recorded (repairs a link changed by hand)"
    )
    if job:
        text += f" (with --force, during job pid {job['pid']})"
    change = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "what": text}
    c.changes.append(change)
    c.save()
    return change


class ChangeInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a change, raised once the change ended one way or the other;
    ``note`` says which (finished and recorded, or every link restored)."""

    def __init__(self, signum: int, note: str):
        super().__init__("SIGTERM" if signum == signal.SIGTERM else "SIGINT")
        self.signum, self.note = signum, note


class _Held:
    """SIGINT and SIGTERM held from :meth:`start` to :meth:`stop` (the main thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.got, self.previous = 0, {}

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._hold) for s in self.SIGNALS}

    def _hold(self, signum, frame) -> None:
        self.got = self.got or signum

    def stop(self, note: str | None) -> None:
        """The handlers back; ``ChangeInterrupted`` when a signal came and ``note`` says
        how the change ended (None: another error ends the command anyway)."""
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
        if self.got and note is not None:
            raise ChangeInterrupted(self.got, note)


def _restore(before: Cluster, exc: Exception) -> None:
    """After a failure in the middle of a change: every link as ``before`` says; raises."""
    try:
        _enact(before, None)
        before.save()
    except (UsageError, OSError) as again:
        raise UsageError(
            f"cluster set: {exc}; restoring the links failed too ({again}): `cluster down` "
            "and `cluster up` rebuild it"
        ) from None
    raise UsageError(f"cluster set: {exc}; every link was restored as it was, nothing changed")


def _update(c: Cluster, ch: Change) -> list[str]:
    """Write the change into ``c``'s spec; what changed, as ``key old -> new``."""
    s, what = c.spec, []

    def note(key: str, old, new) -> None:
        if new is not None and new != old:
            what.append(f"{key} {old if old is not None else 'none'} -> {new}")

    note("rate", s.rate, ch.rate)
    note("uplink-rate", s.uplink_rate, ch.uplink_rate)
    note("burst", c.burst or "default", ch.burst)
    note("queue", c.queue or "default", ch.queue)
    if ch.loss_pct is not None:  # 0 removes the loss: "-> none", as the state then holds
        note("loss", _loss(s.loss_pct), _loss(ch.loss_pct))
    for k, v in sorted(ch.loss_links.items()):
        note(f"loss-link {k}", _loss(s.loss_links.get(k)), _loss(v))
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
    if ch.hash is not None:
        s.hash = ch.hash
    return what


def _loss(pct: float | None):
    """A loss as the change line shows it: ``none`` for no loss (None or 0)."""
    return pct if pct else "none"


def _enact(c: Cluster, ch: Change | None) -> list[str]:
    """Put ``c``'s shaping, loss and hash on the links (``ch`` None: all of them, to restore);
    what was (re)applied."""
    done = []
    if ch is None or any(v is not None for v in (ch.rate, ch.uplink_rate, ch.burst, ch.queue)):
        _reshape(c)
        done.append("shaping")
    if ch is None or ch.loss_pct is not None or ch.loss_links:
        install_loss(c)
        done.append("loss rules")
    if c.spec.topology == "leaf-spine" and (ch is None or ch.hash is not None):
        leafspine.set_hash(c, c.spec.hash)
        done.append("hash policy")
    return done


@contextlib.contextmanager
def _set_lock(name: str):
    """One ``cluster set`` of ``name`` at a time (``flock`` on a file in its state dir)."""
    folder = STATE_ROOT / name
    if not folder.is_dir():
        load(name)  # the clear "not up" error
    fd = os.open(folder / "set.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def running_job(c: Cluster) -> dict | None:
    """The ``cluster run`` job running on ``c`` (``job.json``, its pid alive), or None."""
    try:
        job = json.loads((c.state_dir / "job.json").read_text())
        os.kill(int(job["pid"]), 0)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return job
