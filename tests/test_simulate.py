"""The flow simulator against answers with an independent reason: closed forms, hand
computation, balls into bins, and its own two modes held against each other."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from dist_logreg.collective import algorithms
from dist_logreg.collective.closed_form import hierarchical_coefficients, model_time
from dist_logreg.errors import UsageError
from dist_logreg.sim import maxmin
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.messages import messages
from dist_logreg.sim.placement import place

OURS = algorithms.scheduled()  # ring, recursive-doubling, rabenseifner, hierarchical

S = 3 << 20  # payload bytes: not a multiple of the odd p, on purpose


def run(fab, p, alg, nbytes=S, per_host=1, exact=False, mode="packed"):
    return get_engine("flow").run(Job(fab, place(p, fab, per_host, mode), alg, nbytes, exact=exact))


@pytest.mark.parametrize("p", [2, 3, 5, 6, 8, 13, 16])
@pytest.mark.parametrize(
    "alg", [a for a in algorithms.of() if a.phases and a.closed_form], ids=lambda a: a.name
)  # every record with a schedule and a closed form; hierarchical: below
def test_one_switch_matches_the_closed_form(p, alg):
    fab = parse_fabric(f"flat:hosts={p},rate=100G,link-latency=0,alpha=7us,reduce-rate=20GB/s")
    a, b, c = alg.closed_form(p)
    want = a * 7e-6 + b * S * 8 / 100e9 + c * S / 20e9
    assert run(fab, p, alg.name).time_s == pytest.approx(want, rel=1e-9)
    assert want == pytest.approx(model_time(alg.name, S, p, 7e-6, 8 / 100e9, 1 / 20e9), rel=1e-12)


@pytest.mark.parametrize("hosts,k", [(3, 2), (4, 3), (5, 4)])
def test_hierarchical_matches_its_closed_form_with_intra_host_flows(hosts, k):
    fab = parse_fabric(f"flat:hosts={hosts},rate=100G,link-latency=0,host-rate=40GB/s,gamma=0.1ns")
    c = hierarchical_coefficients(k, hosts)
    alpha, b_in, b_out, g = 5e-6, 1 / 40e9, 8 / 100e9, 1e-10
    want = (c["a_intra"] + c["a_inter"]) * alpha + c["b_intra"] * S * b_in
    want += c["b_inter"] * S * b_out + c["c"] * S * g
    assert run(fab, hosts * k, OURS[-1], per_host=k).time_s == pytest.approx(want, rel=1e-9)


def test_hop_latency_is_paid_per_message():
    fab = parse_fabric("flat:hosts=4,rate=100G,link-latency=3us,alpha=5us")
    ring = OURS[0]
    assert run(fab, 4, ring).time_s == pytest.approx(
        model_time(ring, S, 4, 5e-6 + 6e-6, 8 / 100e9), rel=1e-9
    )


def test_recursive_doubling_on_an_oversubscribed_leaf_spine_by_hand():
    # 4 leaves x 4 hosts, one spine, 2:1: the uplink is 4 x 100G / 2 = 200G. Distances 1, 2
    # stay in a leaf (S/B each); at 4 and 8 four flows share each uplink and each spine
    # downlink: 200G / 4 = 50G each, 2 S/B. Total 4 alpha + (1 + 1 + 2 + 2) S/B.
    fab = parse_fabric(
        "leaf-spine:leaves=4,spines=1,hosts-per-leaf=4,rate=100G,oversubscription=2,link-latency=0"
    )
    assert fab.link_rate[fab.link_class == 2][0] == pytest.approx(200e9 / 8)
    r = run(fab, 16, "recursive-doubling" if "recursive-doubling" in OURS else OURS[1])
    assert r.time_s == pytest.approx(4 * 5e-6 + 6 * S * 8 / 100e9, rel=1e-9)
    assert r.ideal_s == pytest.approx(4 * 5e-6 + 4 * S * 8 / 100e9, rel=1e-9)
    assert r.max_flows_per_uplink == 4
    assert r.bottleneck in ("leaf-up", "spine-down")


def test_max_min_rates_and_events_by_hand():
    # f0 on L0 (cap 1); f1 on L0 and L1 (cap 2); f2 on L1: L0 splits 0.5/0.5, f2 gets 1.5.
    a = sp.csr_matrix(np.array([[1.0, 0], [1, 1], [0, 1]]))
    cap = np.array([1.0, 2.0])
    r = maxmin.rates(a, a.T.tocsr(), cap, np.ones(3, bool))
    assert r == pytest.approx([0.5, 0.5, 1.5])
    # bytes 1, 1, 6: f0, f1 end at t=2 (f2 has sent 3), then f2 alone at 2: 3/2 more.
    assert maxmin.drain(a, cap, np.array([1.0, 1.0, 6.0])) == pytest.approx([2, 2, 3.5])


def test_equal_sizes_shortcut_equals_the_event_by_event_drain():
    fab = parse_fabric("fat-tree:k=4,rate=100G,hash-seed=3")
    rng = np.random.default_rng(1)
    src, dst = rng.integers(0, 16, 40), rng.integers(0, 16, 40)
    keep = src // 2 != dst // 2
    a = fab.route_many(src[keep], dst[keep], np.arange(keep.sum()))
    n = np.ones(a.shape[0])
    fast = maxmin.drain(a, fab.link_rate, n)
    slow = maxmin.drain_events(a, a.T.tocsr(), fab.link_rate, n)
    assert fast == pytest.approx(slow, rel=1e-9)
    assert len(set(np.round(fast * 1e12))) > 2  # the case has several rates


def _balls_in_bins_max(h: int, s: int) -> dict:
    """P(largest bin = m) for h balls thrown uniformly into s bins, by enumeration."""
    counts = {}
    for throw in itertools.product(range(s), repeat=h):
        m = max(np.bincount(throw, minlength=s))
        counts[m] = counts.get(m, 0) + 1
    return {m: c / s**h for m, c in counts.items()}


@pytest.mark.parametrize("h,s", [(4, 4), (6, 3)])
def test_l4_worst_uplink_follows_balls_into_bins(h, s):
    want = _balls_in_bins_max(h, s)
    base = parse_fabric(f"leaf-spine:leaves=2,spines={s},hosts-per-leaf={h},hash=l4")
    seeds = 3000
    seen = {}
    for seed in range(seeds):
        import dataclasses

        fab = dataclasses.replace(base, hash_seed=seed)
        a = fab.route_many(np.arange(h), h + np.arange(h), np.arange(h))
        up = np.asarray(a.sum(axis=0)).ravel()[fab.link_class == 2][:s]  # leaf 0's uplinks
        seen[int(up.max())] = seen.get(int(up.max()), 0) + 1
    for m, prob in want.items():
        sigma = math.sqrt(prob * (1 - prob) / seeds)
        assert abs(seen.get(m, 0) / seeds - prob) < 4 * sigma + 1e-3, (m, prob, seen)


def test_l3_keeps_a_pair_on_one_path_and_spray_never_collides():
    l3 = parse_fabric("fat-tree:k=4,hash=l3,hash-seed=5,hash-polarize=yes")
    up0 = l3.shape.bases()[1]
    spine = lambda ids: [(int(i) - up0) % 2 for i in ids if l3.link_class[i] == 2]  # noqa: E731
    for a, b in [(0, 15), (3, 9), (0, 2), (6, 7)]:
        paths = {tuple(l3.route(a, b, k)[0][0]) for k in range(20)}
        assert len(paths) == 1
        # a symmetric hash: the way back leaves through the same spine index of its pod
        assert spine(paths.pop()) == spine(l3.route(b, a, 0)[0][0])
    l4 = parse_fabric("fat-tree:k=4,hash=l4,hash-seed=5")
    assert len({tuple(l4.route(0, 15, k)[0][0]) for k in range(20)}) > 1
    spray = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=8,rate=100G,hash=spray")
    r = run(spray, 16, OURS[1])
    assert r.collisions == 0
    assert r.max_flows_per_uplink == pytest.approx(8 / 4)
    l4 = parse_fabric("leaf-spine:leaves=2,spines=4,hosts-per-leaf=8,rate=100G,hash=l4")
    assert run(l4, 16, OURS[1]).time_s > r.time_s  # collisions cost time


def test_polarized_hashing_uses_one_core_per_plane():
    def cores_used(polarize):
        fab = parse_fabric(f"fat-tree:k=8,hash=l4,hash-polarize={polarize}")
        src = np.repeat(np.arange(16), 8)
        dst = 64 + np.tile(np.arange(8), 16) * 8 % 64 + src % 8
        a = fab.route_many(src, dst, np.arange(src.size))
        used = np.asarray(a.sum(axis=0)).ravel()[fab.link_class == 4] > 0
        return int(used.reshape(8, 4, 4).any(axis=0).sum())  # (pods, spines, cores per spine)

    assert cores_used("yes") == 4  # core c of plane s only when c == s: k/2 of k^2/4
    assert cores_used("no") == 16


@pytest.mark.parametrize("alg", [a for a in OURS])
@pytest.mark.parametrize("p", [4, 8])
def test_exact_equals_phase_synchronous_where_nothing_is_shared(alg, p):
    fab = parse_fabric(f"flat:hosts={p},rate=100G,gamma=0.05ns")
    sync, ex = run(fab, p, alg, 1 << 20), run(fab, p, alg, 1 << 20, exact=True)
    assert ex.time_s == pytest.approx(sync.time_s, rel=1e-9)
    assert ex.messages.size and np.isfinite(ex.messages).all()


def test_exact_ring_dependencies():
    g = messages(OURS[0], 4, 4096)
    assert g.size == 4 * 6
    i = 4 * 2 + 1  # rank 1's message of step 2
    assert g.src_rank[i] == 1
    want = {4 * 1 + 1, 4 * 1 + 0}  # its own send of step 1, and rank 0's message to it
    assert set(g.deps(i).tolist()) == want


def test_ideal_and_placement():
    fab = parse_fabric("leaf-spine:leaves=4,spines=2,hosts-per-leaf=4,rate=100G,oversubscription=4")
    packed = run(fab, 16, OURS[0], mode="packed")
    spread = run(fab, 16, OURS[0], mode="spread")
    assert packed.extra["cross_leaf_bytes"] < spread.extra["cross_leaf_bytes"]
    assert packed.time_s <= spread.time_s
    assert place(8, fab, 1, "spread").tolist() == [0, 4, 8, 12, 1, 5, 9, 13]
    assert sorted(place(16, fab, 2, "random", 3).tolist()) == sorted(np.arange(16) // 2)
    with pytest.raises(UsageError, match="16 hosts x 1 ranks per host = 16 slots, got 17"):
        place(17, fab)


@pytest.mark.parametrize(
    "spec,match",
    [
        ("flat:hosts=4,rate=fast", r"rate: expected a rate such as 100G.*got 'fast'"),
        (
            "flat:hosts=4,link-latency=1parsec",
            r"link-latency: expected a time such as 1us.*'1parsec'",
        ),
        ("flat:hosts=4,colour=red", r"unknown key 'colour'"),
        ("leaf-spine:leaves=2,spines=2", r"leaf-spine needs hosts-per-leaf="),
        ("fat-tree:k=5", r"k: expected an even radix"),
        ("torus:n=4", r"expected a preset"),
        ("flat:hosts=4,hash=ecmp", r"hash: expected one of l3\|l4\|spray, got 'ecmp'"),
        ("flat:hosts=0", r"hosts: expected a whole number >= 1, got '0'"),
        (
            "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,uplink-rate=1G,oversubscription=2",
            "not both",
        ),
        (
            "clos3:pods=2,leaves-per-pod=2,spines-per-pod=3,hosts-per-leaf=2,super-spines=4",
            "super-spines: expected a multiple of spines-per-pod=3",
        ),
    ],
)
def test_bad_specs_name_the_key_and_value(spec, match):
    with pytest.raises(UsageError, match=match):
        parse_fabric(spec)


def test_units_files_and_sources(tmp_path):
    f = tmp_path / "fab.toml"
    f.write_text(
        'topology = "clos3"\npods = 2\nleaves-per-pod = 2\nspines-per-pod = 2\n'
        'hosts-per-leaf = 4\nsuper-spines = 4\nrate = "200G"\noversubscription = "2:1"\n'
        'core-oversubscription = 2\nalpha = "2us"\nreduce-rate = "10GB/s"\n'
    )
    fab = parse_fabric(str(f))
    assert fab.hosts == 16 and fab.alpha == 2e-6 and fab.gamma == pytest.approx(1e-10)
    assert fab.shape.uplink_rate == pytest.approx(4 * 25e9 / (2 * 2))
    assert fab.shape.core_rate == pytest.approx(2 * fab.shape.uplink_rate / (2 * 2))
    assert fab.source["rate"] == "file" and fab.source["mtu"] == "default"
    assert fab.source["uplink-rate"].startswith("derived")
    j = tmp_path / "fab.json"
    j.write_text('{"topology": "flat", "hosts": 3, "rate": "25G", "link_latency": "500ns"}')
    fab = parse_fabric(str(j))
    assert fab.link_rate[0] == 25e9 / 8 and fab.link_latency[0] == pytest.approx(5e-7)
    assert parse_fabric("fat-tree:k=16").hosts == 16**3 // 4


@pytest.mark.parametrize("hashing", ["l3", "l4"])
@pytest.mark.parametrize("alg", [OURS[1], OURS[2]])
def test_matches_the_packages_ecmp_model_over_seeds(alg, hashing):
    # collective/ecmp.py enumerates every hash outcome of the ECMP study's fabric (4 hosts,
    # 2 leaves, 2 spines, one flow per rank pair) in a fluid model; with alpha = latency = 0
    # and equal link rates, max-min sharing gives each step the same time as its most loaded
    # link, so the simulator's mean busbw over seeds must match the model's mean. The model's
    # leaves share one hash seed (as Linux leaves do): hash-polarize=yes.
    import dataclasses

    from dist_logreg.collective.ecmp import predict

    want = predict(alg, 1, hashing)["busbw"]  # in units of the link rate, every outcome
    base = parse_fabric(
        f"leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,rate=8,alpha=0,"
        f"link-latency=0,hash={hashing},hash-polarize=yes"
    )
    got = []
    for seed in range(400):
        fab = dataclasses.replace(base, hash_seed=seed)
        t = run(fab, 4, alg, 1 << 20).time_s
        got.append(2 * 3 / 4 * (1 << 20) / t / 1.0)  # link rate 8 bit/s = 1 B/s
    got = np.array(got)
    assert got.max() <= want.max() * (1 + 1e-9) and got.min() >= want.min() * (1 - 1e-9)
    sigma = want.std() / math.sqrt(got.size)
    assert abs(got.mean() - want.mean()) < 4 * sigma + 1e-12
