"""The packet engine's own forwarding (sim/switch.cc): equal-cost groups counted by hand,
pinned paths followed hop by hop, per-packet spraying, and hosts that never forward.
ns-3 is imported once per process (the fixture of tests/test_sim_packet.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dist_logreg.sim import ns3net as ns3net_module
from tests.test_sim_packet import needs_ns3, ns3  # noqa: F401  (the session fixture)

RATE = 10e9 / 8  # bytes/s

# Two hosts (0 under leaf 2, 1 under leaf 3), two spines (4, 5); every cable two directed
# links, a->b then b->a.
CABLES = [(0, 2), (1, 3), (2, 4), (2, 5), (3, 4), (3, 5)]
SRC = [x for a, b in CABLES for x in (a, b)]
DST = [x for a, b in CABLES for x in (b, a)]
VIA_SPINE = {4: [0, 4, 9, 3], 5: [0, 6, 11, 3]}  # host 0 -> host 1 over spine 4 or 5


def _leaf_spine(ns3net, **extra):
    n = len(SRC)
    return ns3net.Network(
        hosts=2,
        nodes=6,
        link_src=np.array(SRC),
        link_dst=np.array(DST),
        link_rate=np.full(n, RATE),
        link_latency=np.full(n, 1e-6),
        queue_bytes=np.full(n, 1 << 24),
        ecn_k=np.zeros(n, int),
        loss=np.zeros(n),
        **extra,
    )


def _one_message(path, nbytes=1 << 20):
    return ns3net_module.Transfers(
        conn_src=np.array([0]),
        conn_dst=np.array([1]),
        conn_path=[path],
        msg_conn=np.array([0]),
        msg_bytes=np.array([nbytes]),
        msg_delay=np.zeros(1),
        dep_indptr=np.zeros(2, int),
        dep_indices=np.zeros(0, int),
    )


def _group(net, node, host):
    indptr, links = ns3net_module.equal_cost_groups(net)
    pair = node * net.hosts + host
    return sorted(links[indptr[pair] : indptr[pair + 1]].tolist())


def test_equal_cost_groups_by_hand():
    """Towards host 1: host 0 has its one link (0), leaf 2 both uplinks (4 to spine 4, 6 to
    spine 5), each spine its one link down to leaf 3 (9, 11), leaf 3 its host link (3); a
    host's own pair is empty; nothing reaches a host through another host."""
    net = _leaf_spine(ns3net_module)
    assert _group(net, 0, 1) == [0]
    assert _group(net, 2, 1) == [4, 6]
    assert _group(net, 4, 1) == [9] and _group(net, 5, 1) == [11]
    assert _group(net, 3, 1) == [3]
    assert _group(net, 1, 1) == [] and _group(net, 0, 0) == []
    assert _group(net, 3, 0) == [8, 10]  # and back the same way
    indptr, links = ns3net_module.equal_cost_groups(net)
    assert indptr.size == 6 * 2 + 1 and links.size == indptr[-1]
    for h in (0, 1):  # a host's group leads only away from itself, never into another host
        for node in range(6):
            for lk in _group(net, node, h):
                assert DST[lk] not in (0, 1) or DST[lk] == h


@pytest.mark.parametrize("spine", [4, 5])
@needs_ns3
def test_a_pinned_path_is_followed_hop_by_hop(spine, ns3):  # noqa: F811
    """Every data byte goes over the spine the path names; the other spine's uplink from
    leaf 2 carries none of it (ACKs go the other way: host 1 to host 0)."""
    nbytes = 1 << 20
    res = ns3.run(_leaf_spine(ns3), _one_message(VIA_SPINE[spine], nbytes))
    assert res.complete and int(res.conn_rx[0]) == nbytes
    used, unused = (4, 6) if spine == 4 else (6, 4)
    assert res.link_bytes[used] >= nbytes
    assert res.link_bytes[unused] == 0


@needs_ns3
def test_spraying_splits_one_flow_over_both_spines(ns3):  # noqa: F811
    """With no pinned path and spraying on, each packet takes a random uplink: 1 MiB is
    about 120 packets of 9 KB, so each uplink's share is near 1/2 (binomial: within
    0.2-0.8 with probability 1 - 1e-10)."""
    nbytes = 1 << 20
    net = _leaf_spine(ns3, mtu=9000)
    res = ns3.run(net, _one_message(None, nbytes))
    assert res.complete and int(res.conn_rx[0]) == nbytes
    up = res.link_bytes[[4, 6]].astype(float)
    assert up.sum() >= nbytes
    assert 0.2 < up[0] / up.sum() < 0.8


@needs_ns3
def test_the_acks_are_hashed_per_flow_and_the_salt_moves_them(ns3):  # noqa: F811
    """Data pinned over spine 4; its ACKs (host 1 to host 0, not pinned) are hashed at leaf 3
    over its two uplinks (8 to spine 4, 10 to spine 5): per flow, so all on one of them;
    the switch's salt (the fabric's hash seed) decides which, so over 16 seeds both are
    taken (all 16 alike: probability 2^-15 for a fair hash)."""
    nbytes = 1 << 18
    taken = set()
    for seed in range(16):
        res = ns3.run(_leaf_spine(ns3, hash_seed=seed), _one_message(VIA_SPINE[4], nbytes))
        assert res.complete and int(res.conn_rx[0]) == nbytes
        acks = res.link_bytes[[8, 10]]
        assert (acks > 0).sum() == 1
        taken.add(int(np.argmax(acks)))
    assert taken == {0, 1}
