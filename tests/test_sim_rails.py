"""The rail family (``rail:``, ``rail3:``, ``tor:`` and the named presets): closed forms
where nothing is shared, a shared case worked by hand, the published switch counts, and
the hash statistics against balls into bins (:mod:`dist_logreg.collective.ecmp`)."""

import dataclasses

import numpy as np
import pytest

from dist_logreg.collective.ecmp import _assignments
from dist_logreg.errors import UsageError
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

R = 400e9 / 8  # B/s, a 400G NIC port
EFF = 0.92  # nic-efficiency: 46 GB/s of 50
ALPHA, L, LS = 5e-6, 1e-6, 0.5e-6  # s: per message, per network hop, per scale-up hop
N = 64 << 20
COMMON = f"rate=400G,nic-efficiency={EFF},scaleup-latency=0.5us,link-latency=1us"


def run(spec: str, ranks: int, alg: str = "ring", mode: str = "packed"):
    fab = parse_fabric(spec)
    return get_engine("flow").run(Job(fab, place(ranks, fab, 1, mode), alg, N))


def test_ring_with_pxn_stays_on_its_rail_closed_form():
    # 8 hosts x 8 GPUs on one unit. Ring in rank order: 7 flows per host over the scale-up
    # switch, and GPU 7 -> GPU 0 of the next host: with PXN over the scale-up switch to
    # GPU 0, out of NIC 0, on rail 0's leaf to the next host's NIC 0. No link carries two
    # flows; the NIC (46 GB/s) is the slowest link of the cross-host flow.
    r = run(f"rail:hosts-per-unit=8,spines=2,{COMMON}", 64)
    x = N / 64
    want = 2 * 63 * (ALPHA + 2 * LS + 2 * L + x / (EFF * R))
    assert r.time_s == pytest.approx(want, rel=1e-9)
    assert r.ideal_s == pytest.approx(want, rel=1e-9)
    assert r.extra["cross_leaf_bytes"] == 0.0 and r.bottleneck == "nic-up"


def test_cross_rail_without_pxn_on_an_oversubscribed_spine_by_hand():
    # The same ring, pxn=no: GPU 7's flow leaves on NIC 7 (rail 7's leaf) for NIC 0 of the
    # next host (rail 0's leaf): all 8 such flows go up rail 7's leaf to the one spine and
    # down to rail 0's leaf, 8 flows on a 100G uplink: 12.5e9 / 8 B/s each. 4 hops, no
    # scale-up hop. Every step the same: 126 steps of N/64.
    u = 100e9 / 8
    r = run(f"rail:hosts-per-unit=8,spines=1,uplink-rate=100G,pxn=no,{COMMON}", 64)
    x = N / 64
    assert r.time_s == pytest.approx(126 * (ALPHA + 4 * L + x / (u / 8)), rel=1e-9)
    assert r.ideal_s == pytest.approx(126 * (ALPHA + 4 * L + x / (EFF * R)), rel=1e-9)
    assert r.bottleneck == "leaf-up" and r.max_flows_per_uplink == 8
    assert r.extra["cross_leaf_bytes"] == pytest.approx(126 * 8 * x, rel=1e-12)


def test_tor_wiring_puts_the_ring_through_the_spine():
    # tor: 8 hosts on 8 leaves, one host (all its NICs) per leaf: each host's one cross
    # flow goes leaf -> spine -> next leaf alone (uplinks 1:1, 400 GB/s): NIC-bound, 4 hops.
    r = run(f"tor:hosts-per-unit=8,spines=1,{COMMON}", 64)
    x = N / 64
    assert r.time_s == pytest.approx(126 * (ALPHA + 4 * L + x / (EFF * R)), rel=1e-9)
    assert r.extra["cross_leaf_bytes"] == pytest.approx(126 * 8 * x, rel=1e-12)


def test_ring_across_pods_closed_form():
    # rail3: 2 units of 2 hosts x 2 GPUs x 2 NICs, one unit per pod. The ring's cross-host
    # flows: host 0 -> 1 stays on rail 0's leaf; 1 -> 2 and 3 -> 0 cross pods (6 hops)
    # from two different leaves in opposite directions: nothing shared. Spines 1:1
    # (2 x 50 / 2 spines = 50 GB/s), cores 100 GB/s: the NIC (46 GB/s) is slowest.
    spec = (
        f"rail3:hosts-per-unit=2,units=2,units-per-pod=1,spines=2,rails=2,gpus-per-host=2,{COMMON}"
    )
    fab = parse_fabric(spec)
    assert fab.values["uplink-rate"] == R and fab.values["core-rate"] == 2 * R
    r = run(spec, 8)
    x = N / 8
    assert r.time_s == pytest.approx(14 * (ALPHA + 2 * LS + 6 * L + x / (EFF * R)), rel=1e-9)


def test_scaleup_share_inside_one_host():
    # one host of 8 GPUs: every ring flow is scale-up only (2 hops at 450 GB/s)
    r = run(f"rail:hosts-per-unit=1,spines=1,{COMMON}", 8)
    x = N / 8
    assert r.time_s == pytest.approx(14 * (ALPHA + 2 * LS + x / 450e9), rel=1e-9)
    assert r.bottleneck == "scaleup-up"


@pytest.mark.parametrize(
    "units,leaves,spines,cores",
    [(2, 16, 8, 0), (4, 32, 16, 0), (16, 128, 128, 64), (64, 512, 512, 256)],
)
def test_superpod_switch_counts_are_the_published_table(units, leaves, spines, cores):
    # NVIDIA's DGX SuperPOD reference table: SUs -> leaves, spines, cores
    fab = parse_fabric(f"superpod-h100:units={units}")
    sh = fab.topology.shape
    assert (sh.n_leaves, sh.n_spines, sh.n_cores) == (leaves, spines, cores)
    assert fab.hosts == 32 * units and fab.endpoints == 256 * units
    assert fab.source["hosts-per-unit"] == "preset superpod-h100"
    # 1:1 everywhere: a leaf's 32 x 400G down equals its uplinks, a spine's too
    assert sh.per_plane * sh.uplink_rate == pytest.approx(32 * R)
    if cores:
        assert sh.cores_per_plane * sh.core_rate == pytest.approx(32 * sh.uplink_rate)


def test_named_presets_build_and_too_many_ranks_name_the_size():
    for name in ("spectrum-x", "hpn:units=1", "meta-ai-zone"):
        fab = parse_fabric(name)
        assert fab.endpoints == fab.hosts * 8
    fab = parse_fabric("superpod-h100")
    with pytest.raises(UsageError, match=r"1024 GPUs.*16384 ranks need units=64"):
        place(16384, fab)


def test_hash_qp_and_qps_are_one_thing_and_bad_values_are_refused():
    a, b = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=4,hash=qp:4"), None
    b = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=4,qps=4")
    assert a.hash == b.hash == "qp:4" and a.qps == 4
    for bad in ("hash=qp:0", "hash=qp:65", "hash=qp", "qps=2,hash=spray"):
        with pytest.raises(UsageError):
            parse_fabric(f"leaf-spine:leaves=2,spines=4,hosts-per-leaf=4,{bad}")
    one = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=4,hash=qp:1")
    l4 = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=4")
    src, dst = np.arange(4), np.arange(4, 8)
    assert (one.route_many(src, dst) != l4.route_many(src, dst)).nnz == 0


def _uplink_loads(fab, seeds, src, dst, group_rows):
    """Per seed, the weights on the uplinks of the given leaves (rows of ecmp_groups)."""
    group = fab.topology.ecmp_groups()[0][group_rows]
    out = []
    for s in range(seeds):
        f = dataclasses.replace(fab, hash_seed=s)
        w = np.asarray(f.route_many(src, dst, np.arange(src.size)).sum(axis=0)).ravel()
        out.append(w[group])
    return np.array(out)  # (seeds, leaves, uplinks)


def _expected_max(balls: int, bins: int, per: int = 1) -> float:
    """E[most balls in one bin] / per, balls into bins (exact when small, else sampled)."""
    if balls == 0:
        return 0.0
    outcomes = _assignments(balls, bins, 1 << 16, 20000, 1)
    counts = np.stack([(outcomes == k).sum(axis=1) for k in range(bins)], axis=1)
    return float(counts.max(axis=1).mean()) / per


def test_collisions_per_plane_are_balls_into_bins():
    # dual-ToR, two planes, 4 spines per plane: 6 flows from unit 0 to unit 1. Each picks a
    # port (its plane) by hash, then one of its plane's 4 spines: given m flows in a plane,
    # the busiest uplink of that plane's leaf is the fullest of 4 bins after m balls.
    fab = parse_fabric(
        "rail:hosts-per-unit=6,units=2,rails=1,gpus-per-host=1,nic-ports=2,dual-tor=yes,"
        "planes=2,spines=8"
    )
    src, dst = np.arange(6), np.arange(6, 12)
    loads = _uplink_loads(fab, 600, src, dst, [0, 1])  # unit 0's two ToRs (planes 0, 1)
    m = loads.sum(axis=2)  # flows per plane, per seed
    assert np.all(m.sum(axis=1) == 6)  # every flow in exactly one plane
    assert m[:, 0].mean() == pytest.approx(3.0, abs=0.25)  # Binomial(6, 1/2)
    got = loads.max(axis=2).sum()
    want = sum(_expected_max(int(k), 4) for k in m.ravel())
    assert got == pytest.approx(want, rel=0.05)


def test_queue_pairs_shrink_the_worst_uplink_as_independent_balls_predict():
    # 4 connections leave a leaf over 4 spines; with qp:N each is N balls of weight 1/N
    fab = parse_fabric("rail:hosts-per-unit=4,units=2,rails=1,gpus-per-host=1,spines=4")
    src, dst = np.arange(4), np.arange(4, 8)
    means = []
    for n in (1, 2, 4):
        f = dataclasses.replace(fab, hash="l4" if n == 1 else f"qp:{n}")
        got = _uplink_loads(f, 500, src, dst, [0]).max(axis=2).mean()
        assert got == pytest.approx(_expected_max(4 * n, 4, n), rel=0.05), n
        means.append(got)
    assert means[0] > means[1] > means[2]


def test_spray_over_two_ports_spreads_every_flow():
    fab = parse_fabric("hpn:units=1,hash=spray")
    a = fab.route_many([0, 3], [1024 // 8 * 8 - 8, 1023])  # two GPUs of other hosts
    sh, cls = fab.topology.shape, fab.link_class
    nic_up = cls == fab.class_names.index("nic-up")
    w = a.toarray()
    assert np.allclose(w[:, nic_up].sum(axis=1), 1.0)
    assert np.count_nonzero(w[:, nic_up], axis=1).tolist() == [sh.ports] * 2


def test_scatter_places_whole_hosts_anywhere():
    fab = parse_fabric("superpod-h100:units=2")
    host_of = place(64, fab, 1, "scatter", seed=3)
    hosts = host_of // 8
    assert len(set(hosts.tolist())) == 8 and np.all(np.bincount(hosts)[hosts] == 8)
    assert hosts.max() >= 8  # drawn from the whole fabric, not its first hosts
    assert np.array_equal(host_of % 8, np.arange(64) % 8)


def test_a_tor_that_reaches_the_receiver_delivers_itself():
    # dual-ToR, one plane: two hosts of one unit on one rail share both ToRs of the pair;
    # whatever port the sender hashes to, its ToR reaches the receiver: no spine
    fab = parse_fabric("hpn:units=1,planes=1")
    up = fab.class_names.index("leaf-up")
    for seed in range(20):
        f = dataclasses.replace(fab, hash_seed=seed)
        a = f.route_many(np.arange(0, 64, 8), np.arange(8, 72, 8))  # GPU 0 of hosts 0..7
        assert not np.any(f.link_class[a.indices] == up)


def test_nics_per_host_is_rails_and_wins_over_the_preset():
    fab = parse_fabric("superpod-h100:nics-per-host=4")
    assert fab.topology.shape.nics == 4 and fab.values["rails"] == 4
    assert parse_fabric("rail:hosts-per-unit=2,spines=1").values["rails"] == 8
    with pytest.raises(UsageError, match="rails=8 and nics-per-host=4"):
        parse_fabric("rail:hosts-per-unit=2,spines=1,rails=8,nics-per-host=4")


@pytest.mark.parametrize(
    "spec",
    [
        "rail3:hosts-per-unit=2,units=4,units-per-pod=2,spines=4,rails=2,gpus-per-host=4",
        "rail:hosts-per-unit=2,units=2,rails=2,gpus-per-host=2,nic-ports=2,dual-tor=yes,"
        "planes=2,spines=4",
        "rail:hosts-per-unit=2,units=2,rails=2,gpus-per-host=2,nic-ports=2,dual-tor=yes,spines=2",
    ],
)
def test_paths_are_the_sprayed_route(spec):
    # every equal-cost path, each weighted 1/n, adds up to what spray routes; each path
    # runs link to link from the sender's host to the receiver's
    fab = parse_fabric(spec + ",hash=spray")
    topo, e = fab.topology, fab.endpoints
    src, dst = np.arange(e), (np.arange(e) * 5 + 3) % e
    want = fab.route_many(src, dst).toarray()
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        got = np.zeros(fab.links)
        paths = topo.paths(a, b)
        for p in paths:
            got[p] += 1.0 / len(paths)
            node = topo.endpoint_host[a]
            for link in p:
                assert topo.link_src[link] == node
                node = topo.link_dst[link]
            assert node == topo.endpoint_host[b]
        assert np.allclose(got, want[a]), (a, b)


def test_core_keys_belong_to_rail3_and_rail_locality_names_the_rails():
    with pytest.raises(UsageError, match="units-per-pod: a key of rail3"):
        parse_fabric("rail:hosts-per-unit=2,spines=1,units=2,units-per-pod=1")
    fab = parse_fabric("rail:hosts-per-unit=2,spines=1,rails=4,gpus-per-host=8")
    assert fab.topology.locality("rail").tolist() == [0, 0, 1, 1, 2, 2, 3, 3] * 2
    assert fab.topology.locality("host").tolist() == [0] * 8 + [1] * 8
