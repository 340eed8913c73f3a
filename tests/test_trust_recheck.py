"""G-H3 (the seventh attack on issue 29) and its class: ``report`` rebuilds each
``simulate.json`` fabric from its spec (``sim/recheck.py``) and holds every seed of every
row to the engines' own lower bound (``sim/bounds.py``), so a file edited to make its fabric
faster, or its times faster than the fabric allows, is refused; the host-boundary term of
that bound, by hand."""

from __future__ import annotations

import json

import pytest

from tests.test_model_cli import dl
from tests.test_trust_report import one_line

LEAF_SPINE = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,alpha=0"
#: the attack's genuine rail run: one GPU a host, a NIC of two 50 GB/s ports sprayed
RAIL1 = (
    "rail:hosts-per-unit=2,units=2,rails=1,gpus-per-host=1,spines=2,nic-ports=2,"
    "dual-tor=yes,hash=spray"
)


def _simulate(tmp_path, name, *args):
    out = tmp_path / name
    r = dl("simulate", *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _edit(folder, edit):
    path = folder / "simulate.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return folder


def _faster(k):
    """Every time of every row k x shorter, busbw and algbw k x higher (consistent)."""

    def edit(doc):
        for r in doc["results"]:
            for key in ("time_s", "time_s_worst", "ideal_s"):
                r[key] /= k
            r["time_s_seeds"] = [t / k for t in r["time_s_seeds"]]
            r["algbw"] *= k
            r["busbw"] *= k

    return edit


def _report(tmp_path, folder):
    n = len(list(tmp_path.glob("rep-*")))
    return dl("report", str(folder), "--out", str(tmp_path / f"rep-{n}"))


@pytest.fixture(scope="module")
def leaf_spine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ls")
    return _simulate(tmp, "ls", "--fabric", LEAF_SPINE, "--ranks", "4", "--bytes", "1M")


@pytest.mark.parametrize(
    "key, edit",
    [  # each one key the attack added; the fabric's kind has none of them
        ("fabric.shape.scaleup_rate", lambda d: d["fabric"]["shape"].update(scaleup_rate=1e12)),
        ("fabric.shape.nic_rate", lambda d: d["fabric"]["shape"].update(nic_rate=1e12)),
        (
            "fabric.params.nic-ports",
            lambda d: d["fabric"]["params"].update({"nic-ports": {"value": 4, "source": "spec"}}),
        ),
        (
            "fabric.params.planes",
            lambda d: d["fabric"]["params"].update({"planes": {"value": 4, "source": "spec"}}),
        ),
        ("fabric.params.spines", lambda d: d["fabric"]["params"]["spines"].update(value=4)),
        ("fabric.shape.uplink_rate", lambda d: d["fabric"]["shape"].update(uplink_rate=2e11)),
        ("fabric.links", lambda d: d["fabric"].update(links=3)),
    ],
)
def test_a_key_the_spec_does_not_build_is_refused(tmp_path, leaf_spine, key, edit):
    folder = tmp_path / "ls"
    folder.mkdir()
    (folder / "simulate.json").write_text((leaf_spine / "simulate.json").read_text())
    assert _report(tmp_path, folder).returncode == 0  # as simulate wrote it
    line = one_line(_report(tmp_path, _edit(folder, edit)))
    assert f"{key}: expected" in line and "what the spec 'leaf-spine:" in line, line


def test_a_genuine_rail_run_made_faster_is_refused(tmp_path):
    """G-H3: the genuine run reports; its times / 8 are below the bound: a ring of 4 ranks
    sends 2(3/4) x 100 MiB from each rank over its two 50 GB/s ports: 1.5 x 104857600 B /
    1e11 B/s = 1.5729 ms, + alpha 5 us + two 1 us hops = 1.57986 ms (hand)."""
    run = _simulate(tmp_path, "rail", "--fabric", RAIL1, "--ranks", "4", "--bytes", "100M")
    assert _report(tmp_path, run).returncode == 0
    line = one_line(_report(tmp_path, _edit(run, _faster(8))))
    assert "time_s_seeds[0]: expected at least 0.00157986 s" in line, line


def test_a_host_is_held_to_the_links_that_leave_it(tmp_path):
    """8 ranks, 2 a host, on a flat fabric of 100 GB/s links (host-rate 100 GB/s): a rank's
    links allow a ring of 1 MiB 2(7/8) x 1 MiB / 200 GB/s = 9.175 us; the bytes that must
    leave a host (all 1 MiB: the other hosts need its part of every element) over its one
    100 GB/s link take 10.486 us (hand). A time just under the second is refused, and its
    busbw is under what the report's host-link check allows (200 GB/s)."""
    n, spec = 1 << 20, "flat:hosts=4,rate=800G,host-rate=100GB/s,alpha=0,link-latency=0"
    run = _simulate(
        tmp_path,
        "h2",
        *("--fabric", spec, "--ranks", "8", "--ranks-per-host", "2", "--bytes", "1M"),
    )
    t = json.loads((run / "simulate.json").read_text())["results"][0]["time_s"]
    k = t / (0.95 * n / 100e9)
    assert k > 1 and 1.75 * n / (t / k) < 200e9
    line = one_line(_report(tmp_path, _edit(run, _faster(k))))
    assert "time_s_seeds[0]: expected at least 1.04858e-05 s" in line, line


def test_the_engines_bound_counts_a_rail_hosts_nics_not_its_scale_up():
    """16 ranks on two 8-GPU rail hosts (alpha and latency 0): a rank's own links (8 x 450
    GB/s scale-up, 8 x 50 GB/s NICs, PXN, + 7 x host-rate) allow 0.42 us for a ring of
    1 MiB; the 1 MiB that must leave a host over its 8 NICs of 50 GB/s take 2.62144 us."""
    from dist_logreg.sim.bounds import lower_bound_s
    from dist_logreg.sim.fabric import parse_fabric
    from dist_logreg.sim.job import Job
    from dist_logreg.sim.placement import place

    fab = parse_fabric("rail:hosts-per-unit=2,spines=2,alpha=0,link-latency=0")
    job = Job(fab, place(16, fab), "ring", 1 << 20)
    assert lower_bound_s(job) == pytest.approx((1 << 20) / 400e9, rel=1e-12)


def test_a_leaf_is_held_to_its_uplinks(tmp_path):
    """H-H1 (eighth attack): 4 ranks under each of two leaves joined by one 12.5 GB/s
    uplink (oversubscription 16): an allreduce of 100 MiB moves all of it across each
    leaf's boundary, 104857600 B / 12.5e9 B/s = 8.388608 ms, + alpha 5 us + two 1 us hops (hand);
    the attack's genuine run with its times x 0.35 (ring 5.18 ms) was drawn."""
    spec = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4,oversubscription=16"
    run = _simulate(tmp_path, "os", "--fabric", spec, "--ranks", "8", "--bytes", "100M")
    assert _report(tmp_path, run).returncode == 0
    line = one_line(_report(tmp_path, _edit(run, _faster(1 / 0.35))))
    assert "time_s_seeds[0]: expected at least 0.00839561 s" in line, line


@pytest.mark.parametrize("algorithm", ["recursive-doubling", "rabenseifner"])
def test_an_uneven_host_runs_and_reports(tmp_path, algorithm):
    """H-H2 (eighth attack): 3 ranks, two on one host (900 GB/s between them), one alone
    behind a 50 GB/s NIC: recursive doubling folds rank 0 into rank 1 inside the host, so
    rank 2 sends only 100 MiB, not 2(p-1)/p of it; the bound charged the average at the
    slowest rank's rate and ended the genuine run in a RuntimeError. It runs, its time at
    least what rank 2 must send and take in at 50 GB/s (2.097 ms, hand), and reports."""
    spec = "flat:hosts=2,host-rate=900GB/s"
    run = _simulate(
        tmp_path,
        "uneven",
        *("--fabric", spec, "--ranks", "3", "--ranks-per-host", "2", "--bytes", "100M"),
        *("--algorithm", algorithm),
    )
    t = json.loads((run / "simulate.json").read_text())["results"][0]["time_s"]
    assert t >= 104857600 / 50e9
    assert _report(tmp_path, run).returncode == 0


@pytest.mark.parametrize(
    "scenario, fabric, k, bound",
    [  # H-H3 (eighth attack): the bound of the fabric the row ran on, the scenario applied
        # each leaf's two uplinks 100x slower (2 x 0.5 GB/s): 100 MiB out of a leaf, 104.86 ms,
        # + alpha 5 us + two 1 us hops = 104.864608 ms (hand)
        ("degrade:factor=100,class=leaf-up", "", 0.05, "0.104865"),
        # spine 0 failed: one 12.5 GB/s uplink a leaf left: 8.388608 + 0.007 ms (hand)
        ("fail:spine=0", ",oversubscription=8", 0.4, "0.00839561"),
    ],
)
def test_a_scenario_row_is_held_to_the_fabric_it_ran_on(tmp_path, scenario, fabric, k, bound):
    spec = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4" + fabric
    run = _simulate(
        tmp_path,
        "sc",
        *("--fabric", spec, "--ranks", "8", "--bytes", "100M", "--scenario", scenario),
    )
    assert _report(tmp_path, run).returncode == 0
    line = one_line(_report(tmp_path, _edit(run, _faster(1 / k))))
    assert f"time_s_seeds[0]: expected at least {bound} s" in line, line


def test_a_scenario_block_that_is_not_its_spec_is_refused(tmp_path):
    spec = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"
    run = _simulate(
        tmp_path,
        "sc",
        *("--fabric", spec, "--ranks", "8", "--bytes", "1M"),
        *("--scenario", "degrade:factor=100,class=leaf-up"),
    )
    edit = lambda d: d["scenario"].update(factor=1.0)  # noqa: E731
    line = one_line(_report(tmp_path, _edit(run, edit)))
    assert "scenario.factor: expected 100 (what its spec" in line, line


def test_a_neighbour_job_is_held_to_its_own_bound(tmp_path):
    """The second job of a neighbour row (4 ranks, one a host, a ring of 1 MiB on 50 GB/s
    links): 1.5 x 1048576 B / 5e10 B/s + alpha 5 us + two 1 us hops = 38.457 us at least
    (hand); its times alone and together edited 1000x faster (its slowdown unchanged) are
    refused, and a neighbour of another size than its scenario says."""
    spec = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"
    run = _simulate(
        tmp_path,
        "nb",
        *("--fabric", spec, "--ranks", "4", "--bytes", "1M", "--algorithm", "ring"),
        *("--scenario", "neighbour:ranks=4", "--exact"),
    )
    assert _report(tmp_path, run).returncode == 0

    def faster(d):
        nb = d["results"][0]["jobs"]["neighbour"]
        nb["alone_s"] /= 1000
        nb["together_s"] /= 1000

    line = one_line(_report(tmp_path, _edit(run, faster)))
    assert "jobs.neighbour.alone_s: expected at least 3.84573e-05 s" in line, line
    edit = lambda d: d["results"][0]["jobs"]["neighbour"].update(bytes=1)  # noqa: E731
    line = one_line(_report(tmp_path, _edit(run, edit)))
    assert "jobs.neighbour.bytes: expected 1.04858e+06 (what the scenario" in line, line


@pytest.fixture(scope="module")
def step_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("step")
    return _simulate(
        tmp,
        "wl",
        *("--fabric", "flat:hosts=2", "--ranks", "2", "--algorithm", "ring"),
        *("--workload", "params=1e6,buckets=1M,forward=1ms,backward=2ms"),
    )


@pytest.mark.parametrize(
    "key, edit, want",
    [  # 4 MB of fp32 in buckets of 1 MiB (3 x 1048576 + 854272 B), 2 ranks, 50 GB/s links:
        # a ring of b bytes is at least b / 5e10 + alpha 5 us + two 1 us hops (hand)
        ("rows[0].comm_s", lambda s: s["rows"][0].update(comm_s=5e-5), "0.000108"),
        # the last bucket (854272 B) is ready when backward ends: 3 ms + 24.0854 us
        ("rows[0].step_s", lambda s: s["rows"][0].update(step_s=3.00001e-3), "0.00302409"),
        (
            "timeline.buckets[0]",
            lambda s: s["timeline"]["buckets"][0].update(
                end_s=s["timeline"]["buckets"][0]["start_s"] + 1e-6
            ),
            "2.79715e-05",
        ),
    ],
)
def test_a_step_is_held_to_its_buckets_bounds(tmp_path, step_run, key, edit, want):
    folder = tmp_path / "wl"
    folder.mkdir()
    (folder / "simulate.json").write_text((step_run / "simulate.json").read_text())
    assert _report(tmp_path, folder).returncode == 0
    line = one_line(_report(tmp_path, _edit(folder, lambda d: edit(d["step"]))))
    assert f"step.{key}: expected at least {want} s" in line, line


def test_each_step_pays_the_path_between_its_ranks(tmp_path):
    """H-H4 (eighth attack): two ranks under two leaves joined by one spine, alpha 0, links
    of 50 us: every message crosses four links (200 us), a ring's two dependent steps 400
    us at least (hand); the run with its times and ideal x 0.55 was drawn (the floor
    counted two links a step)."""
    spec = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=1,alpha=0,link-latency=50us"
    run = _simulate(
        tmp_path, "hop", *("--fabric", spec, "--ranks", "2", "--bytes", "1", "--algorithm", "ring")
    )
    assert _report(tmp_path, run).returncode == 0

    def edit(d):
        _faster(1 / 0.55)(d)
        d["results"][0]["ideal_s"] = d["results"][0]["time_s"]

    line = one_line(_report(tmp_path, _edit(run, edit)))
    assert "time_s_seeds[0]: expected at least 0.0004 s" in line, line


def test_each_step_pays_the_path_of_its_own_messages(tmp_path):
    """H-H5 (eighth attack): 4 ranks packed 2 a leaf, alpha 0, links of 50 us: every one of
    the ring's 6 dependent steps carries a message across the spine (4 links, 200 us), so
    1200 us at least; recursive doubling's first step stays in the leaf (2 links), its second
    crosses (4): 300 us (hand). The rows at 0.6 and 0.7 of that were drawn (the floor took
    the closest pair each step); the longest chain of dependent messages now holds them."""
    spec = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=2,alpha=0,link-latency=50us"
    run = _simulate(
        tmp_path,
        "hop4",
        *("--fabric", spec, "--ranks", "4", "--bytes", "1"),
        *("--algorithm", "ring,recursive-doubling"),
    )
    assert _report(tmp_path, run).returncode == 0

    def slower(k, row):
        def edit(d):
            r = d["results"][row]
            r.update(time_s=r["time_s"] * k, time_s_worst=r["time_s_worst"] * k)
            r["ideal_s"] *= k
            r["time_s_seeds"] = [t * k for t in r["time_s_seeds"]]
            r.update(algbw=r["algbw"] / k, busbw=r["busbw"] / k, ratio_to_ideal=1.0)

        return edit

    line = one_line(_report(tmp_path, _edit(run, slower(0.6, 0))))
    assert "results[0].time_s_seeds[0]: expected at least 0.0012 s" in line, line
    _edit(run, slower(1 / 0.6, 0))
    line = one_line(_report(tmp_path, _edit(run, slower(0.7, 1))))
    assert "results[1].time_s_seeds[0]: expected at least 0.0003 s" in line, line


def test_a_scattered_placement_is_redrawn_per_seed(tmp_path):
    """Each seed scatters the ranks anew (here: 2 ranks in one pod or two, 4 or 6 links
    apart): each seed is held to its own placement's bound, and the run reports."""
    spec = "clos3:pods=2,leaves-per-pod=4,spines-per-pod=2,hosts-per-leaf=2,super-spines=4"
    run = _simulate(
        tmp_path,
        "sc",
        *("--fabric", spec, "--ranks", "2", "--bytes", "1", "--algorithm", "rabenseifner"),
        *("--placement", "scatter", "--placement-seed", "4", "--seeds", "6"),
    )
    seeds = json.loads((run / "simulate.json").read_text())["results"][0]["time_s_seeds"]
    assert len(set(seeds)) > 1  # the seeds' placements differ
    r = _report(tmp_path, run)
    assert r.returncode == 0, r.stderr


def test_an_ideal_below_the_host_links_is_refused(tmp_path, leaf_spine):
    """H-H6 (eighth attack): ideal_s is the non-blocking fabric's time (only the hosts'
    links finite): a ring of 1 MiB on 4 ranks, one a host, 50 GB/s links, at least 1.5 x
    1048576 B / 5e10 B/s + two 1 us hops (alpha 0) = 33.457 us (hand); 1 us is refused."""
    folder = tmp_path / "ls"
    folder.mkdir()
    (folder / "simulate.json").write_text((leaf_spine / "simulate.json").read_text())

    def edit(d):
        d["results"][0].update(ideal_s=1e-6, ratio_to_ideal=d["results"][0]["time_s"] / 1e-6)

    line = one_line(_report(tmp_path, _edit(folder, edit)))
    assert "results[0].ideal_s: expected at least 3.34573e-05 s" in line, line


@pytest.mark.parametrize(
    "key, edit, want",
    [  # H-H7 (eighth attack): a step row is what its workload and its own times give
        ("compute_s", {"compute_s": 3e-4}, "expected 0.003 "),  # forward 1 ms + backward 2 ms
        ("efficiency", {"efficiency": 50.0}, "expected 1 "),  # the fewest ranks: 1 by definition
        ("comm_fraction", {"comm_fraction": 1e-4}, "(what its workload and the results give)"),
    ],
)
def test_a_step_row_is_what_its_workload_gives(tmp_path, step_run, key, edit, want):
    folder = tmp_path / "wl"
    folder.mkdir()
    (folder / "simulate.json").write_text((step_run / "simulate.json").read_text())
    line = one_line(_report(tmp_path, _edit(folder, lambda d: d["step"]["rows"][0].update(edit))))
    assert f"step.rows[0].{key}: {want}" in line or (
        f"step.rows[0].{key}: expected" in line and want in line
    ), line


@pytest.mark.parametrize(
    "key, edit",
    [  # H-H8 (eighth attack): the timeline is the step's schedule, replayed from the results
        # bucket 1 started when ready, overlapping bucket 0 on the same links at solo speed
        (
            "buckets[1].start_s",
            lambda b: b[1].update(
                start_s=b[1]["ready_s"], end_s=b[1]["end_s"] - (b[1]["start_s"] - b[1]["ready_s"])
            ),
        ),
        ("buckets[0].ready_s", lambda b: b[0].update(ready_s=0.0)),  # before the forward pass
    ],
)
def test_a_timeline_is_the_steps_schedule(tmp_path, key, edit):
    folder = _simulate(  # a backward of 10 us: the buckets queue behind each other
        tmp_path,
        "wlq",
        *("--fabric", "flat:hosts=2", "--ranks", "2", "--algorithm", "ring"),
        *("--workload", "params=1e6,buckets=1M,forward=1ms,backward=10us"),
    )
    buckets = json.loads((folder / "simulate.json").read_text())["step"]["timeline"]["buckets"]
    assert buckets[1]["start_s"] > buckets[1]["ready_s"]  # bucket 1 waited for bucket 0
    line = one_line(
        _report(tmp_path, _edit(folder, lambda d: edit(d["step"]["timeline"]["buckets"])))
    )
    assert f"step.timeline.{key}: expected" in line, line


def test_a_step_row_without_its_scaling_is_one_line(tmp_path, step_run):
    folder = tmp_path / "wl"
    folder.mkdir()
    (folder / "simulate.json").write_text((step_run / "simulate.json").read_text())
    line = one_line(_report(tmp_path, _edit(folder, lambda d: d["step"]["rows"][0].pop("scaling"))))
    assert "step.rows[0].scaling: expected weak or strong, got None" in line, line


def test_a_neighbour_rows_first_job_and_start_are_held(tmp_path):
    """I-H1, I-H2 (ninth attack): the first job alone is held to its own bound (a ring of
    1 MiB on 4 ranks, one a host: 6 dependent steps x (alpha 5 us + two 1 us links) = 42 us,
    above its bytes' 38.457 us, hand), and the neighbour starts when its scenario says."""
    spec = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"
    run = _simulate(
        tmp_path,
        "nb",
        *("--fabric", spec, "--ranks", "4", "--bytes", "1M", "--algorithm", "ring"),
        *("--scenario", "neighbour:ranks=4", "--exact"),
    )

    def alone(d):
        r = d["results"][0]
        r["alone_s"] = r["jobs"]["first"]["alone_s"] = 1e-6
        r["slowdown"] = r["jobs"]["first"]["slowdown"] = r["time_s"] / 1e-6

    original = (run / "simulate.json").read_text()
    line = one_line(_report(tmp_path, _edit(run, alone)))
    assert "jobs.first.alone_s: expected at least 4.2e-05 s" in line, line
    (run / "simulate.json").write_text(original)
    late = lambda d: d["results"][0]["jobs"]["neighbour"].update(start_s=1.0)  # noqa: E731
    line = one_line(_report(tmp_path, _edit(run, late)))
    assert "jobs.neighbour.start_s: expected 0 (what the scenario" in line, line


def test_a_link_class_is_busy_at_least_its_bytes_need(tmp_path):
    """I-H3 (ninth attack): 8 ranks, 4 under each leaf, one 12.5 GB/s uplink a leaf: all of
    100 MiB leaves each leaf over its uplink, 8.39 ms of a row's time: a leaf-up
    utilisation of 0.001 is refused (at most 10 % below the bytes' need is let through)."""
    spec = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4,oversubscription=16"
    run = _simulate(tmp_path, "u", "--fabric", spec, "--ranks", "8", "--bytes", "100M")

    def idle(d):
        for c in d["results"][0]["links"].values():
            c.update(max_util=0.001, mean_util=0.001)

    line = one_line(_report(tmp_path, _edit(run, idle)))
    assert "results[0].links." in line and ".max_util: expected at least" in line, line


def test_a_link_class_mean_is_held_too(tmp_path):
    """I-H7 (ninth attack): all 8 hosts hold a rank of a 100 MiB allreduce through one
    12.5 GB/s uplink a leaf: the leaf uplinks' mean busy share is at least 0.57 of the
    row's time; 0.001 is refused (the mean is held to 45 % of its bytes' need at least)."""
    spec = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4,oversubscription=16"
    run = _simulate(tmp_path, "m", "--fabric", spec, "--ranks", "8", "--bytes", "100M")

    def idle(d):
        for c in d["results"][0]["links"].values():
            c.update(mean_util=0.001)

    line = one_line(_report(tmp_path, _edit(run, idle)))
    assert ".mean_util: expected at least" in line, line


@pytest.fixture(scope="module")
def packet_run(tmp_path_factory):
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    tmp = tmp_path_factory.mktemp("pk")
    return _simulate(
        tmp,
        "pk",
        *("--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "2M", "--algorithm", "ring"),
        *("--engine", "packet"),
    )


def _first_fast(p):
    p["message_done_s"][0] = p["message_start_s"][0] + 1e-9  # 512 KiB in 1 ns


def test_a_message_is_held_to_its_hosts_link_not_a_switchs(tmp_path, packet_run):
    """Tenth attack J-H1: the floor of a message divided its bytes by the busiest node's
    links (the switch's four) plus host_rate for every other rank; a rank alone on its host
    pushes at most its one link: a ring step's 512 KiB at the host link's rate."""
    data = json.loads((packet_run / "simulate.json").read_text())
    rate = data["fabric"]["shape"]["rate"]  # the host link, bytes/s
    floor = (2 << 20) / 4 / rate
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text(json.dumps(data))

    def half(d):
        p = d["results"][0]["packet"]
        p["message_done_s"][0] = p["message_start_s"][0] + floor / 2

    line = one_line(_report(tmp_path, _edit(folder, half)))
    assert "message_done_s[0]: expected at least" in line, line


def test_a_sweeps_rail_packet_row_is_held_to_its_own_fabric(tmp_path, packet_run):
    """Tenth attack J-H2: a genuine packet sweep over a leaf-spine and a rail fabric was
    refused: the rail row's two GPUs of one host talk over the scale-up links (450 GB/s),
    and its messages were held to the first fabric's fastest link (100 GB/s)."""
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        'fabric = ["leaf-spine:leaves=2,spines=1,hosts-per-leaf=2",'
        ' "rail:hosts-per-unit=2,units=1,rails=2,gpus-per-host=2,spines=1"]\n'
        'ranks = 2\nbytes = "1M"\nalgorithm = "ring"\nengine = "packet"\ntransport = "roce"\n'
    )
    out = _simulate(tmp_path, "sw", "--sweep", str(toml))
    doc = json.loads((out / "simulate.json").read_text())
    rail = [r for r in doc["results"] if r["fabric"].startswith("rail")]
    # each of its two messages moves 1 MiB / 2 faster than the leaf-spine's host link could
    spent = sum(
        d - s
        for d, s in zip(
            *(rail[0]["packet"][k] for k in ("message_done_s", "message_start_s")), strict=True
        )
    )
    assert spent < 2 * (1 << 20) / 100e9, spent  # what the old check asked for
    assert _report(tmp_path, out).returncode == 0


def _port_over_its_queue(p):
    """J-H3: one switch port at 2 MiB in its detail and the row's peak: under the bytes that
    reached it (3 MiB of a 4-rank 2 MiB ring), over its 1 MiB drop-tail."""
    assert p["options"]["queue"] == 1 << 20 and p["options"]["pfc"] == "off"
    port = next(iter(p["queue"]["links"]))  # the file's queue series: switch ports only
    (detail,) = [x for x in p["links_detail"] if x["link"] == port]
    assert detail["wire_bytes"] > 2 << 20
    detail["peak_queue_bytes"] = p["peak_queue_bytes"] = 2 << 20  # its samples kept


def _qp_over_its_nic(p):
    """J-H5: a queue pair between two hosts paced at 1.5 x the host link (the fabric's
    host-rate, 100 GB/s between ranks of one host, is faster still: the old bound)."""
    p["rates"] = {"0>1": {"t_s": [0.0], "bytes_per_s": [1.5 * 50e9]}}


@pytest.mark.parametrize(
    "key, edit",
    [
        (
            # 1 MiB + a frame in service (MTU 9000 B) and its headers, twice over
            f"peak_queue_bytes: expected at most {(1 << 20) + 2 * 9000 + 2 * 9216:.6g} B (a",
            _port_over_its_queue,
        ),
        ("rates.0>1.bytes_per_s: expected at most 5e+10 B/s", _qp_over_its_nic),
    ],
)
def test_a_packet_row_is_held_to_its_ports_and_nics(tmp_path, packet_run, key, edit):
    """Tenth attack J-H3, J-H5 (a flat fabric of 400G host links and a host-rate of
    100 GB/s, TCP, 1 MiB ports)."""
    data = json.loads((packet_run / "simulate.json").read_text())
    assert data["fabric"]["shape"]["rate"] == 50e9
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text(json.dumps(data))
    line = one_line(_report(tmp_path, _edit(folder, lambda d: edit(d["results"][0]["packet"]))))
    assert key in line, line


def _paused_five(p):
    """I-H6: five PAUSE frames with PFC off, on a link and in the row's total (the report
    holds the total to its links': L-H13)."""
    p["pause_frames"] = p["links_detail"][0]["pauses"] = 5


def _lost_five(p):
    """J-H9: five packets lost on a link, the row's total saying so too (the report holds
    the total to its links': L-H13), where no loss is set."""
    p["lost"] = p["links_detail"][0]["lost"] = 5


def _port_full_from_the_start(p):
    """J-H7: one switch port at its own peak from t = 0 to the end (under its 1 MiB limit):
    no byte has reached a port at 0 s."""
    port = next(iter(p["queue"]["links"]))
    series = p["queue"]["links"][port]
    assert series[0] == 0
    p["queue"]["links"][port] = [500_000] * len(series)  # the row's and the port's peak too
    p["peak_queue_bytes"] = 500_000
    for x in p["links_detail"]:
        if x["link"] == port:
            assert x["wire_bytes"] > 500_000
            x["peak_queue_bytes"] = 500_000


@pytest.mark.parametrize(
    "key, edit",
    [
        ("packet.lost: expected 0 (options.loss is 0", _lost_five),  # J-H9
        ("B at 0 s (what reached its switch since 0 s", _port_full_from_the_start),
    ],
)
def test_a_packet_row_is_held_to_its_loss_and_its_queues_in_time(tmp_path, packet_run, key, edit):
    """Tenth attack J-H7, J-H9: a queue full from 0 s; packets lost with no loss set."""
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text((packet_run / "simulate.json").read_text())
    line = one_line(_report(tmp_path, _edit(folder, lambda d: edit(d["results"][0]["packet"]))))
    assert key in line, line


def test_each_message_is_held_to_its_own_bytes():
    """Tenth attack J-H8: each message was held to the least message's bytes. Rabenseifner
    at 4 ranks of 2 MiB, one a host on 50 GB/s links: reduce-scatter's first step sends
    1 MiB, its second 512 KiB, allgather mirrors it (the packet engine's message order)."""
    from dist_logreg.sim.bounds import message_floors_s
    from dist_logreg.sim.fabric import parse_fabric
    from dist_logreg.sim.job import Job
    from dist_logreg.sim.placement import place

    fab = parse_fabric("flat:hosts=4")
    floors = message_floors_s(Job(fab, place(4, fab), "rabenseifner", 2 << 20))
    mib, half = (1 << 20) / 50e9, (512 << 10) / 50e9
    assert floors.tolist() == pytest.approx([mib] * 4 + [half] * 8 + [mib] * 4, rel=1e-12)


def test_two_jobs_that_share_no_link_are_not_slowed(tmp_path):
    """Tenth attack J-H6: a neighbour row's first job, two ranks inside one host (its bytes
    never leave it), drawn slowed 10 x by a neighbour on six other hosts."""
    out = _simulate(
        tmp_path,
        "nb",
        *("--fabric", "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4", "--ranks", "2"),
        *("--ranks-per-host", "2", "--exact", "--bytes", "1M", "--algorithm", "ring"),
        *("--scenario", "neighbour:ranks=6,placement=spread"),
    )
    assert _report(tmp_path, out).returncode == 0

    line = one_line(_report(tmp_path, _edit(out, _slower(10.0))))
    assert "jobs.first.together_s: expected its alone_s" in line, line
    assert "(they share no link)" in line, line


def _slower(factor):
    def edit(d):  # consistent: the row's times, bandwidths and slowdowns with it
        r = d["results"][0]
        first = r["jobs"]["first"]
        first["together_s"] = t = factor * first["alone_s"]
        first["slowdown"] = r["slowdown"] = factor
        k = t / r["time_s"]
        r["time_s"] = r["time_s_worst"] = t
        r["time_s_seeds"] = [t]
        r["algbw"] /= k
        r["busbw"] /= k
        r["ratio_to_ideal"] = t / r["ideal_s"]

    return edit


def test_a_job_that_ends_alone_before_its_neighbour_starts_is_not_slowed(tmp_path):
    """Eleventh attack K-H1: the first job (64 us alone) drawn 2 ms together with a
    neighbour starting at 1 ms: the rule compared the start with the edited together time.
    The two share leaf 1's links, so only the time rule holds them."""
    out = _simulate(
        tmp_path,
        "nb",
        *("--fabric", "leaf-spine:leaves=3,spines=1,hosts-per-leaf=2", "--ranks", "3"),
        *("--exact", "--bytes", "1M", "--algorithm", "ring"),
        *("--scenario", "neighbour:ranks=3,start=1ms"),
    )
    assert _report(tmp_path, out).returncode == 0
    alone = json.loads((out / "simulate.json").read_text())["results"][0]["jobs"]["first"]
    assert alone["alone_s"] < 1e-3
    line = one_line(_report(tmp_path, _edit(out, _slower(2e-3 / alone["alone_s"]))))
    assert "jobs.first.together_s: expected its alone_s" in line, line
    assert "(the neighbour starts after it ends alone)" in line, line


@pytest.mark.parametrize(
    "args",
    [  # J-H10: two ranks a host, 1 B: the intra-host messages done at their start (in ns)
        ("leaf-spine:leaves=2,spines=1,hosts-per-leaf=2", "--ranks", "4", "--ranks-per-host")
        + ("2", "--algorithm", "ring"),
        (  # J-H12: the messages' times add up to 0 ns
            "leaf-spine:leaves=2,spines=2,hosts-per-leaf=3,rate=400G,link-latency=1us,"
            "alpha=2us,host-rate=10GB/s",
            *("--ranks", "2", "--ranks-per-host", "2", "--placement", "scatter"),
            *("--algorithm", "rabenseifner-far,hierarchical", "--transport", "roce"),
            *("--pfc", "on", "--ecn", "64K", "--buffer", "4M"),
        ),
    ],
)
def test_a_packet_run_in_the_engines_nanoseconds_reports(tmp_path, args):
    """Tenth attack J-H10, J-H12: genuine packet runs of 1 B were refused: ns-3's clock is
    whole nanoseconds, and a byte inside a host takes picoseconds."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    out = _simulate(tmp_path, "pk", "--engine", "packet", "--bytes", "1", "--fabric", *args)
    r = _report(tmp_path, out)
    assert r.returncode == 0, r.stderr


def test_a_packet_run_shorter_than_the_engines_clock_is_refused(tmp_path):
    """Tenth attack J-H11: 1 B at 1600G with no latency: 0 s in ns-3's whole nanoseconds,
    below the job's bound, and a ZeroDivisionError traceback naming it. Refused with one
    line, before ns-3 runs: the flow engine's 0.005 ns is under 1 ns x 2 a link of the
    leaf-spine's longest path (4 links, and one) for each of the ring's 2 steps: 20 ns."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    fabric = "leaf-spine:leaves=2,spines=1,hosts-per-leaf=2,rate=1600G,link-latency=0ns,alpha=0"
    r = dl(
        *("simulate", "--engine", "packet", "--transport", "roce", "--ranks", "2"),
        *("--fabric", fabric, "--bytes", "1", "--algorithm", "ring", "--out", str(tmp_path / "o")),
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "under what ns-3's clock" in one_line(r) and "(20 ns)" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_a_packet_row_is_held_to_its_chains_rounding_not_more(tmp_path):
    """Eleventh attack K-H3: the clock's slack was 64 ns x p (2 us at 32 ranks), so a 1 B
    recursive doubling over two leaves drawn at 0.82 x its time passed. Its 5 steps each
    pay two 200 ns links (four across the spine): at least 2.4 us; the slack is now 1 ns
    x 2 x (4 links + 1) a step, 50 ns."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    out = _simulate(
        tmp_path,
        "rd",
        *("--engine", "packet", "--ranks", "32", "--bytes", "1"),
        *("--fabric", "leaf-spine:leaves=2,spines=1,hosts-per-leaf=16,link-latency=200ns,alpha=0"),
        *("--algorithm", "recursive-doubling"),
    )
    assert _report(tmp_path, out).returncode == 0

    def faster(d):
        r = d["results"][0]
        assert r["time_s"] >= 2.4e-6 - 50e-9
        k = r["time_s"] / 2.0e-6
        _faster(k)(d)  # and every time of the packet block, the links as busy over less time
        for key in ("message_start_s", "message_done_s"):
            r["packet"][key] = [t / k for t in r["packet"][key]]
        r["packet"]["queue"]["t_s"] = [t / k for t in r["packet"]["queue"]["t_s"]]
        for x in r["links"].values():
            x.update({u: min(x[u] * k, 1.0) for u in ("max_util", "mean_util")})

    line = one_line(_report(tmp_path, _edit(out, faster)))
    assert "time_s_seeds[0]: expected at least 2.35e-06 s" in line, line


def test_a_packet_row_without_its_start_times_is_held_from_0s(tmp_path, packet_run):
    """Eleventh attack K-H2: with ``message_start_s`` gone every message floor was
    skipped: each message is held to its floor from the collective's start."""
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text((packet_run / "simulate.json").read_text())

    def nostart(d):
        p = d["results"][0]["packet"]
        del p["message_start_s"]
        p["message_done_s"][0] = 2e-9

    line = one_line(_report(tmp_path, _edit(folder, nostart)))
    assert "message_done_s[0]: expected at least" in line, line


def test_a_flow_row_builds_no_packet_messages(monkeypatch, leaf_spine):
    """Eleventh attack K-H4: every row's packet message floors were built, packet or not:
    a flow ring of 8192 ranks (134 M messages) ended in a MemoryError traceback."""
    from dist_logreg.sim import bounds, recheck

    def boom(*_):
        raise AssertionError("built a flow row's packet messages")

    monkeypatch.setattr(bounds, "message_floors_s", boom)
    recheck.check(json.loads((leaf_spine / "simulate.json").read_text()))


@pytest.fixture(scope="module")
def rail_host(tmp_path_factory):
    """Four GPUs of one rail host: a ring of 100 MiB over their 450 GB/s scale-up links."""
    spec = "rail:hosts-per-unit=2,units=2,rails=2,gpus-per-host=4,spines=1"
    args = ("--fabric", spec, "--ranks", "4", "--bytes", "100M", "--algorithm", "ring")
    return _simulate(tmp_path_factory.mktemp("rail"), "rail", *args)


@pytest.mark.parametrize("key", ["max_util", "mean_util"])
def test_a_gpus_own_links_are_held_busy(tmp_path, rail_host, key):
    """Tenth attack J-H4: a rank whose links are of two classes (a rail GPU's scale-up link
    and its NIC, on its host's one node) had no floor: every class drawn 0.1 % busy. Each
    GPU must send its 100 MiB over its own scale-up link (the only path to the others):
    busiest >= 0.9 x 100 MiB / 450 GB/s / time; the class's 16 links (4 hosts x 4 GPUs)
    together >= 0.45 x 4 x 100 MiB / (16 x 450 GB/s) / time."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "simulate.json").write_text((rail_host / "simulate.json").read_text())
    time_s = json.loads((folder / "simulate.json").read_text())["results"][0]["time_s"]
    least = {
        "max_util": 0.9 * (100 << 20) / 450e9 / time_s,
        "mean_util": 0.45 * 4 * (100 << 20) / (16 * 450e9) / time_s,
    }[key]

    def idle(d):
        for x in d["results"][0]["links"].values():
            x[key] = min(x[key], 0.001)
            x["mean_util"] = min(x["mean_util"], x["max_util"])

    line = one_line(_report(tmp_path, _edit(folder, idle)))
    assert f"links.scaleup-up.{key}: expected at least {least:.6g}" in line, line


@pytest.mark.parametrize(
    "key, edit",
    [  # I-H4..I-H6, I-H8 (ninth attack): a TCP run's packet block against its own physics
        ("message_done_s[0]: expected at least", _first_fast),
        ("pause_frames: expected 0 (options.pfc is off)", _paused_five),
        (  # every peak raised together (the row's too), as the attack did
            "peak_queue_bytes: expected at most the bytes that reached the port",
            lambda p: [
                x.update(peak_queue_bytes=1 << 26)
                for x in [p, *p["links_detail"]]
                if "peak_queue_bytes" in x
            ],
        ),
    ],
)
def test_a_packet_block_is_held_to_its_physics(tmp_path, packet_run, key, edit):
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text((packet_run / "simulate.json").read_text())
    assert _report(tmp_path, folder).returncode == 0
    line = one_line(_report(tmp_path, _edit(folder, lambda d: edit(d["results"][0]["packet"]))))
    assert key in line, line


def test_an_algorithm_simulate_never_runs_is_refused(tmp_path, leaf_spine):
    """F-M5: the MPI library's choice has no schedule; simulate refuses it, so a row of it
    is an edited file."""
    folder = tmp_path / "ls"
    folder.mkdir()
    (folder / "simulate.json").write_text((leaf_spine / "simulate.json").read_text())
    line = one_line(
        _report(tmp_path, _edit(folder, lambda d: d["results"][0].update(algorithm="mpi")))
    )
    assert "results[0].algorithm: expected one simulate runs" in line, line


def test_a_fabric_file_gone_and_a_cost_model_still_report(tmp_path):
    """The rebuild reads a fabric file's keys from the block (the file may be gone) and a
    cost model's alpha as the model's (per size segment): genuine runs of both report."""
    from dist_logreg.collective import costfile
    from tests.test_costmodel import one_segment_model

    fabric = tmp_path / "fab.toml"
    fabric.write_text('topology = "leaf-spine"\nleaves = 2\nspines = 2\nhosts-per-leaf = 2\n')
    a = _simulate(tmp_path, "file", "--fabric", str(fabric), "--ranks", "4", "--bytes", "1M")
    fabric.unlink()
    assert _report(tmp_path, a).returncode == 0, _report(tmp_path, a).stderr
    costfile.save(one_segment_model(), tmp_path / "model.json")
    b = _simulate(
        tmp_path,
        "model",
        *("--fabric", "flat:hosts=5,rate=100G", "--ranks", "5", "--bytes", "3M"),
        *("--algorithm", "ring", "--cost-model", str(tmp_path / "model.json")),
    )
    r = _report(tmp_path, b)
    assert r.returncode == 0, r.stderr
    # a fabric file's block edited: its keys are read from the block; the counts disagree
    edit = lambda d: d["fabric"]["params"]["spines"].update(value=8)  # noqa: E731
    line = one_line(_report(tmp_path, _edit(a, edit)))
    assert "fabric.links: expected" in line, line


@pytest.mark.parametrize(
    "algorithm, want",
    [  # 8 ranks, 2 a host (flat, 100 GB/s links): a host holds k/p = 1/4 of the ranks
        ("ring", 1.0),  # allreduce: all n out
        ("reduce-scatter/ring", 3 / 4),  # (p-k)/p of n out
        ("allgather/ring", 3 / 4),  # (p-k)/p of n in
    ],
)
def test_host_cut_by_hand(algorithm, want):
    from dist_logreg.sim.bounds import cut_s
    from dist_logreg.sim.fabric import parse_fabric
    from dist_logreg.sim.job import Job
    from dist_logreg.sim.placement import place

    fab = parse_fabric("flat:hosts=4,rate=800G")
    job = Job(fab, place(8, fab, 2), algorithm, 1 << 20)
    assert cut_s(job) == pytest.approx(want * (1 << 20) / 100e9, rel=1e-12)
    one_host = Job(fab, place(2, fab, 2), algorithm, 1 << 20)
    assert cut_s(one_host) == 0.0  # nothing leaves a host that holds every rank


@pytest.fixture(scope="module")
def lossy_link_run(tmp_path_factory):
    """RoCE on 4 hosts with 1% loss on one link only (host1>leaf0): a genuine run."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "2M", "--algorithm", "ring"]
    args += ["--engine", "packet", "--transport", "roce", "--loss-link", "host1>leaf0=1"]
    return _simulate(tmp_path_factory.mktemp("lossy"), "lossy", *args)


def _lost_moved(p):
    """The lost packets of host1>leaf0 written on host0>leaf0, which --loss-link spares."""
    by = {x["link"]: x for x in p["links_detail"]}
    assert by["host1>leaf0"]["lost"] > 0 and by["host0>leaf0"]["lost"] == 0
    by["host0>leaf0"]["lost"], by["host1>leaf0"]["lost"] = by["host1>leaf0"]["lost"], 0


def test_packets_are_lost_only_on_the_links_loss_link_names(tmp_path, lossy_link_run):
    """Eleventh attack K-M1: with --loss-link alone, lost packets on a link it does not name
    were accepted. The genuine file is accepted; the moved count is refused, naming it."""
    assert _report(tmp_path, lossy_link_run).returncode == 0
    folder = tmp_path / "pk"
    folder.mkdir()
    (folder / "simulate.json").write_text((lossy_link_run / "simulate.json").read_text())
    line = one_line(
        _report(tmp_path, _edit(folder, lambda d: _lost_moved(d["results"][0]["packet"])))
    )
    assert "links_detail[0].lost: expected 0 on 'host0>leaf0'" in line, line
    assert "--loss-link names another link" in line, line
