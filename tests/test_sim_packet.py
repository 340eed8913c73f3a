"""The packet engine (ns-3): bytes, loss, ECN, spraying, agreement with the flow engine.

ns-3 is imported once (about 20 s) by a session fixture; each scenario then takes well
under a second of simulated-network wall time on 2-8 hosts. Without the ``packet`` extra
these tests skip with the reason (the error path is tested without it).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import shutil
import sys
import typing

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import packet_options
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.transports.tcp import Tcp
from tests.helpers import star_network

HAVE_NS3 = (
    importlib.util.find_spec("ns") is not None and importlib.util.find_spec("cppyy") is not None
)


def needs_ns3(test):
    """Skip without ns-3; slow (the import alone takes about 20 s); a hard timeout."""
    test = pytest.mark.skipif(
        not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'"
    )(test)
    return pytest.mark.timeout(300)(pytest.mark.slow(test))


RING, RD = "ring", "recursive-doubling"
MiB = 1 << 20


@pytest.fixture(scope="session")
def ns3():
    from dist_logreg.sim import ns3driver, ns3net

    ns3driver.load()
    return ns3net


def _star(ns3net, hosts, rate=10e9 / 8, queue=1 << 20, k=0, loss=0.0, lat=1e-6):
    return star_network(ns3net, hosts, rate, queue, k, loss, lat)


def _incast(ns3net, senders, nbytes):
    """Every other host sends ``nbytes`` to host 0 at once."""
    conn_src = np.arange(1, senders + 1)
    return ns3net.Transfers(
        conn_src=conn_src,
        conn_dst=np.zeros(senders, int),
        conn_path=[[2 * s, 1] for s in conn_src],
        msg_conn=np.arange(senders),
        msg_bytes=np.full(senders, nbytes),
        msg_delay=np.zeros(senders),
        dep_indptr=np.zeros(senders + 1, int),
        dep_indices=np.zeros(0, int),
    )


@pytest.mark.parametrize(("alg", "ranks", "per_host"), [(RING, 3, 1), (RD, 4, 1), (RING, 4, 2)])
@needs_ns3
def test_every_message_delivers_exactly_its_bytes(alg, ranks, per_host, ns3):
    """Each connection's receiver reads exactly the bytes of the schedule's messages on it."""
    fab = parse_fabric(f"flat:hosts={ranks},rate=10G")
    host_of = place(ranks, fab, per_host)
    job = Job(fab, host_of, alg, MiB + 3)
    eng = get_engine("packet")
    opts, net, tr, g, _ = eng.prepare(job)
    res = ns3.run(net, tr, ns3.Tcp(opts.tcp, opts.min_rto))
    assert res.complete
    expected = np.bincount(tr.msg_conn, weights=g.nbytes, minlength=len(tr.conn_src))
    remote = tr.conn_src != tr.conn_dst
    assert np.array_equal(res.conn_rx[remote], expected[remote].astype(np.int64))
    # the ring sends 2(p-1)/p of the buffer per rank: the schedule, independently
    if alg == RING:
        sent = np.bincount(g.src_rank, weights=g.nbytes)
        assert np.allclose(sent, 2 * (ranks - 1) / ranks * (MiB + 3), atol=2 * ranks)
    # a message arrives after it started and after everything it waited for arrived
    assert (res.msg_done > res.msg_start).all()
    for i in range(g.size):
        assert (res.msg_done[g.deps(i)] <= res.msg_start[i] + 1e-12).all()


@needs_ns3
def test_loss_gives_retransmissions_and_a_longer_time(ns3):
    fab = parse_fabric("flat:hosts=2,rate=10G")
    job = Job(fab, place(2, fab), RING, 2 * MiB)
    eng = get_engine("packet")
    clean = eng.run(job)
    lossy = eng.run(Job(fab, place(2, fab), RING, 2 * MiB, options={"loss": "1"}))
    assert clean.extra["packet"]["retransmissions"] == 0 and clean.extra["packet"]["lost"] == 0
    assert lossy.extra["packet"]["lost"] > 0
    assert lossy.extra["packet"]["retransmissions"] > 0
    assert lossy.time_s > clean.time_s * 1.05


@needs_ns3
def test_dctcp_with_ecn_keeps_the_peak_queue_below_drop_tail(ns3):
    """Incast of 3 senders into one port: cubic fills the 512 KiB buffer, DCTCP holds ~K."""
    tr = _incast(ns3, 3, MiB)
    bottleneck = 1  # switch -> host 0
    drop_tail = ns3.run(_star(ns3, 4, queue=512 << 10), tr, ns3.Tcp("cubic"))
    dctcp = ns3.run(_star(ns3, 4, queue=512 << 10, k=30_000), tr, ns3.Tcp("dctcp"))
    assert drop_tail.complete and dctcp.complete
    assert dctcp.link_marks[bottleneck] > 0
    assert drop_tail.link_marks.sum() == 0
    assert dctcp.link_peak[bottleneck] < 0.5 * drop_tail.link_peak[bottleneck]
    assert dctcp.link_drops.sum() <= drop_tail.link_drops.sum()


@needs_ns3
def test_spraying_spreads_bytes_over_every_spine(ns3):
    spec = "leaf-spine:leaves=2,spines=4,hosts-per-leaf=2,rate=10G,uplink-rate=10G,hash=spray"
    fab = parse_fabric(spec)
    host_of = np.array([0, 2, 1, 3])  # neighbours in the ring sit under different leaves
    res = get_engine("packet").run(Job(fab, host_of, RING, 4 * MiB))
    up = {
        d["link"]: d["wire_bytes"]
        for d in res.extra["packet"]["links_detail"]
        if d["class"] == "leaf-up"
    }
    leaf_up = fab.link_class == fab.class_names.index("leaf-up")
    assert len(up) == int(leaf_up.sum()) == 8
    b = np.array(list(up.values()), dtype=float)
    assert b.min() > 0.5 * b.mean()  # every spine carries a fair share, not one or two


@pytest.mark.parametrize("alg", [RING, RD])
@needs_ns3
def test_flow_and_packet_agree_when_bandwidth_bound(alg, ns3):
    """4 hosts, 10G, 1 MiB+ per message, big queues, no loss: within 10%."""
    fab = parse_fabric("flat:hosts=4,rate=10G")
    job = Job(fab, place(4, fab), alg, 4 * MiB, exact=True)
    flow = get_engine("flow").run(job)
    pkt = get_engine("packet").run(job)
    assert abs(pkt.time_s / flow.time_s - 1) < 0.10
    assert pkt.messages.shape == flow.messages.shape


def test_missing_ns3_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "ns" else real(n, *a)
    )
    monkeypatch.delitem(sys.modules, "dist_logreg.sim.packet", raising=False)
    with pytest.raises(UsageError, match=r"pip install -e '\.\[packet\]'"):
        get_engine("packet")


@pytest.mark.skipif(not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
def test_a_run_of_hours_is_refused_up_front_with_the_estimate():
    fab = parse_fabric("flat:hosts=64,rate=100G")
    job = Job(fab, place(64, fab), RING, 1 << 40)  # 1 TiB: ~10^11 packet-hops
    with pytest.raises(UsageError, match=r"about [0-9.]+ h of wall time.*flow engine"):
        get_engine("packet").prepare(job)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"tcp": "vegas"}, "--tcp"),
        ({"loss": "150"}, "--loss"),
        ({"queue": "1X"}, "--queue"),
        ({"ecn": "2M", "queue": "1M"}, "K < queue"),
        ({"loss_link": ["leaf-up"]}, "NAME=VALUE"),
        ({"bogus": 1}, "expected keys"),
    ],
)
def test_bad_packet_options_are_usage_errors(options, needle):
    with pytest.raises(UsageError, match=needle):
        packet_options.parse_options(options)


def test_cli_options_round_trip():
    import argparse

    p = argparse.ArgumentParser()
    packet_options.add_packet_arguments(p)
    args = p.parse_args(
        [
            "--tcp",
            "dctcp",
            "--ecn",
            "65K",
            "--loss-link",
            "leaf-up=0.1",
            "--min-rto",
            "5ms",
            "--link-delay",
            "spine-down=5us",
        ]
    )
    o = packet_options.parse_options(packet_options.options_from_args(args))
    assert (o.tcp, o.ecn, o.queue, o.min_rto) == ("dctcp", 65 << 10, 1 << 20, 0.005)
    assert o.loss_link == {"leaf-up": pytest.approx(0.001)}
    assert o.link_delay == {"spine-down": pytest.approx(5e-6)}


def test_report_draws_queues_and_the_message_cdf(tmp_path):
    from dist_logreg.report import packetplots

    queue = {"t_s": [0.0, 1e-4, 2e-4], "links": {"leaf0>spine0": [0, 9000, 0]}}
    block = {
        "options": {"tcp": "dctcp", "ecn": 30 << 10},
        "message_done_s": [3e-4, 1e-4, 2e-4],
        "queue": queue,
    }
    doc = {
        "results": [
            {"algorithm": RING, "bytes": MiB, "packet": block},
            {"algorithm": RD, "bytes": MiB},
        ]
    }
    paths = packetplots.draw(doc, tmp_path)
    assert [p.name for p in paths] == ["packet-queues.png", "packet-messages.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert packetplots.draw({"results": [{"algorithm": RING}]}, tmp_path / "none") == []


@needs_ns3
def test_simulate_engine_packet_and_report_end_to_end(tmp_path):
    """The command writes the packet block and the table line; report draws both figures."""
    import json
    import subprocess

    def cli(*args):
        cmd = [sys.executable, "-m", "dist_logreg", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=280)

    r = cli(
        "simulate",
        "--engine",
        "packet",
        "--fabric",
        "flat:hosts=3,rate=10G",
        "--ranks",
        "3",
        "--bytes",
        "64K",
        "--algorithm",
        RING,
        "--tcp",
        "dctcp",
        "--ecn",
        "20K",
        "--out",
        str(tmp_path / "sim"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "packet: " in r.stdout and "retransmissions" in r.stdout
    # cling's notice on every load of the wheel, although nothing failed, is not shown
    assert "Failed to materialize symbols" not in r.stderr
    row = json.loads((tmp_path / "sim" / "simulate.json").read_text())["results"][0]
    assert row["packet"]["options"]["tcp"] == "dctcp"
    assert len(row["packet"]["message_done_s"]) == 2 * (3 - 1) * 3  # ring: 2(p-1) steps x p
    rep = cli("report", str(tmp_path / "sim"), "--out", str(tmp_path / "rep"))
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert (tmp_path / "rep" / "packet-queues.png").is_file()
    assert (tmp_path / "rep" / "packet-messages.png").is_file()
    big = cli(
        "simulate",
        "--engine",
        "packet",
        "--fabric",
        "flat:hosts=64,rate=100G",
        "--ranks",
        "64",
        "--bytes",
        "1G",
        "--algorithm",
        RING,
        "--max-wall",
        "10min",
    )
    assert big.returncode == 2 and "h of wall time" in big.stderr and "flow engine" in big.stderr


@needs_ns3
def test_the_driver_and_the_transports_compile_from_their_files(ns3, tmp_path):
    """The C++ is the package's .cc/.h files (no code in a Python string), each compiled
    once per process; a further file is compiled on demand, once."""
    from dist_logreg.sim import ns3driver

    gbl = ns3driver.load()
    names = {p.relative_to(ns3driver.HERE).as_posix() for p in ns3driver.sources()}
    assert names == {
        "ns3driver.h",
        "pfc.cc",
        "switch.cc",
        "ns3driver.cc",
        "transports/tcp.cc",
        "transports/roce.cc",
    }
    assert set(ns3driver.sources()) <= ns3driver._LOADED["done"]
    assert issubclass(gbl.dlr.TcpTransport, gbl.dlr.Transport)
    assert not hasattr(ns3driver, "CODE")
    probe = tmp_path / "probe.cc"
    probe.write_text(
        '#include "ns3driver.h"\nnamespace dlr { struct Probe { static int Twice(int x) '
        "{ return 2 * x; } }; }\n"
    )
    assert ns3driver.load(extra=[probe]).dlr.Probe.Twice(21) == 42
    assert ns3driver.load(extra=[probe]) is gbl  # again: nothing recompiled (no redefinition)


# A toy transport, added the way docs/packet.md says: one module (this one: its options
# class, its C++ file) and one record. TCP Vegas: TCP's socket handling, another congestion
# control, a class of its own in C++.
VEGAS_CC = """
#include "transports/tcp.cc"
namespace dlr {
struct VegasTransport : TcpTransport {
  VegasTransport(uint32_t segment, uint32_t buffer, double minRto)
      : TcpTransport("ns3::TcpVegas", segment, buffer, minRto, false) {}
};
}
"""
VEGAS_MADE: list = []


@dataclasses.dataclass(frozen=True)
class Vegas:
    """TCP Vegas: no options of its own (TCP's 200 ms minimum RTO), TCP's packets."""

    header_bytes: typing.ClassVar[int] = Tcp.header_bytes
    window_bytes: typing.ClassVar[int] = Tcp.window_bytes

    def create(self, gbl, net):
        VEGAS_MADE.append(net)
        segment = int(net.mtu - self.header_bytes)
        return gbl.dlr.VegasTransport(segment, self.window_bytes, 0.2)


@needs_ns3
def test_a_toy_transport_is_one_module_and_one_record(ns3, tmp_path):
    from dist_logreg.sim.transports import table

    source = tmp_path / "vegas.cc"
    source.write_text(VEGAS_CC)
    record = dataclasses.replace(
        table.TCP,
        name="vegas",
        help="TCP Vegas",
        options=f"{__name__}:Vegas",
        sources=(str(source),),
        label="vegas",
    )
    fab = parse_fabric("leaf-spine:leaves=2,spines=1,hosts-per-leaf=2,rate=10G,uplink-rate=5G")
    with table.registered(record):
        job = Job(fab, place(4, fab), RING, 4 * MiB, exact=True, options={"transport": "vegas"})
        vegas = get_engine("packet").run(job)
    flow = get_engine("flow").run(job)
    cubic = get_engine("packet").run(dataclasses.replace(job, options={}))
    assert len(VEGAS_MADE) == 1 and VEGAS_MADE[0].hosts == 4  # the record built the run
    p = vegas.extra["packet"]
    assert p["options"]["transport"] == "vegas" and p["transport_label"] == "vegas"
    assert set(record.counters) <= set(p)  # its counters, totalled
    # physically sensible: all delivered, no faster than max-min fair sharing allows
    assert (vegas.messages > 0).all() and vegas.messages.shape == flow.messages.shape
    assert vegas.time_s >= flow.time_s >= flow.ideal_s
    # and it is another congestion control (the simulation is deterministic)
    assert vegas.time_s != cubic.time_s


@pytest.mark.skipif(not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ to compile-check with")
@pytest.mark.timeout(300)
def test_the_cxx_files_compile_on_their_own_without_warnings():
    """Each C++ file stands alone (its own includes) and is clean under -Wall -Wextra with a
    compiler other than cppyy's, against the ns-3 headers the packet extra installs."""
    import subprocess
    from pathlib import Path

    from dist_logreg.sim import ns3driver

    include = Path(importlib.util.find_spec("ns").origin).parent.parent / "include"
    assert (include / "ns3" / "core-module.h").is_file()
    for path in ns3driver.sources():
        flags = ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror"]
        cmd = ["g++", *flags, "-isystem", str(include), "-x", "c++", str(path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, f"{path.name}: {r.stderr[-3000:]}"
