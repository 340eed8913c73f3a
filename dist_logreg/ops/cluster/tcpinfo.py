"""Per-connection TCP counters from ``ss -tin`` inside the host namespaces, during a job.

A connection's counters vanish when it closes (at the end of the job), so a thread polls
every host every :data:`PERIOD` seconds and keeps the largest value seen per connection.
What happens after the last poll is missed: the per-connection sums are a lower bound of
the hosts' own counters (``/proc/net/snmp``), and the job's report says both.
"""

from __future__ import annotations

import re
import threading

from dist_logreg.ops.cluster.state import Cluster, in_ns, sh

PERIOD = 0.5  # seconds between polls
_CONN = re.compile(r"^(?:[A-Z][A-Z0-9-]*\s+)?\d+\s+\d+\s+(\S+):(\d+)\s+(\S+):(\d+)")
_RETRANS = re.compile(r"\bretrans:\d+/(\d+)")
_SENT = re.compile(r"\bbytes_sent:(\d+)")


def parse(text: str) -> dict[tuple[str, str, int, int], dict]:
    """``ss -tinH`` output -> ``{(local, peer, lport, pport): {"retransmits", "bytes_sent"}}``.

    ``ss`` prints each connection on one line and its TCP info on the next (indented).
    """
    out: dict[tuple[str, str, int, int], dict] = {}
    key = None
    for line in text.splitlines():
        m = _CONN.match(line)
        if m:
            key = (m[1].strip("[]"), m[3].strip("[]"), int(m[2]), int(m[4]))
            out[key] = {"retransmits": 0, "bytes_sent": 0}
            line = line[m.end() :]
        if key is None:
            continue
        if r := _RETRANS.search(line):
            out[key]["retransmits"] = int(r[1])
        if b := _SENT.search(line):
            out[key]["bytes_sent"] = int(b[1])
    return out


class Sampler:
    """Poll ``ss -tin`` in every host of ``c`` until :meth:`stop`; :attr:`seen` holds the
    largest counters per connection, keyed ``(src, dst, sport, dport)`` (the sender's view)."""

    def __init__(self, c: Cluster, period: float = PERIOD):
        self.c, self.period = c, period
        self.seen: dict[tuple[str, str, int, int], dict] = {}
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def poll(self) -> None:
        for host in self.c.hosts:
            r = sh([*in_ns(host), "ss", "-tinH"], check=False)
            for key, v in parse(r.stdout).items():
                old = self.seen.setdefault(key, {"retransmits": 0, "bytes_sent": 0})
                for k in old:
                    old[k] = max(old[k], v[k])

    def _loop(self) -> None:
        while not self._halt.wait(self.period):
            self.poll()

    def start(self) -> Sampler:
        self.poll()
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        return self.seen
