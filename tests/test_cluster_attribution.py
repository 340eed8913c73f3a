"""Fabric files, attribution, `cluster set` checks, failed jobs: no namespaces needed."""

import json
import re

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import attribution, change, fabricfiles, jobs, lifecycle, tcpinfo
from dist_logreg.ops.cluster.state import Spec
from dist_logreg.report import runs
from tests.test_cluster_units import fabric_state

SS = """\
ESTAB 0      0       198.18.0.1:39268 198.18.0.3:1024
\t bbr wscale:10,10 rto:204 rtt:0.053/0.031 mss:1448 bytes_sent:164 bytes_acked:165 segs_out:7
0      2109392 198.18.0.1:39274 198.18.0.4:1024
\t bbr wscale:10,10 rto:408 bytes_sent:37196605 bytes_retrans:78184 retrans:0/54 lost:0
"""


def test_ss_output_gives_each_connection_its_retransmissions():
    got = tcpinfo.parse(SS)
    assert got[("198.18.0.1", "198.18.0.3", 39268, 1024)] == {"retransmits": 0, "bytes_sent": 164}
    assert got[("198.18.0.1", "198.18.0.4", 39274, 1024)] == {
        "retransmits": 54,  # the total after the slash, not the unacked count before it
        "bytes_sent": 37196605,
    }


def _flow(c, src, dst, sport, nbytes, spine):
    leaf = {h[len("fab-") :]: f"l{j}" for h, j in c.leaf_of.items()}
    return {
        "src": src,
        "dst": dst,
        "sport": sport,
        "dport": 1024,
        "bytes": nbytes,
        "src_ranks": [int(src[1:])],
        "dst_ranks": [int(dst[1:])],
        "src_leaf": leaf[src],
        "dst_leaf": leaf[dst],
        "spine": spine,
        "elephant": nbytes >= 64 * 1024,
    }


def test_a_flow_is_tied_to_the_lossy_link_it_crossed_and_its_retransmissions():
    c = fabric_state()
    c.spec.topology, c.spec.loss_links = "leaf-spine", {"l0-s1": 1.0}
    fl = [_flow(c, "h0", "h3", 40000, 1 << 20, "s1"), _flow(c, "h1", "h2", 40001, 1 << 20, "s0")]
    tcp = {("198.18.0.1", "198.18.0.4", 40000, 1024): {"retransmits": 54, "bytes_sent": 1}}
    attribution.annotate(c, fl, tcp)
    assert fl[0]["links"] == ["h0", "l0-s1", "l1-s1", "h3"]  # host, both uplinks, host
    assert fl[0]["lossy_links"] == {"l0-s1": 1.0} and fl[0]["retransmits"] == 54
    assert fl[1]["lossy_links"] == {} and fl[1]["retransmits"] == 0
    lines = attribution.loss_lines(fl, {"p50": 0.010, "p99": 0.194})
    assert lines == [
        "  loss            h0>h3 crossed l0-s1 (1% loss): 54 retransmissions, p99 +184 ms"
    ]


def test_a_collision_needs_a_sibling_at_most_half_as_loaded_not_idle():
    c = fabric_state()
    big = 10 << 20
    # leaf 0: two elephants of two pairs on s1 (20 MiB), a third on s0 (10 MiB = half)
    fl = [
        _flow(c, "h0", "h2", 1, big, "s1"),
        _flow(c, "h1", "h3", 2, big, "s1"),
        _flow(c, "h1", "h2", 3, big, "s0"),
    ]
    found = {x["link"]: x for x in attribution.collisions(c, fl)}
    assert "l0>s1" in found and found["l0>s1"]["siblings"] == {"l0>s0": big}
    assert found["l0>s1"]["idle"] == []  # named although its sibling was not idle
    # a sibling carrying more than half is no collision
    fl.append(_flow(c, "h0", "h3", 4, 1 << 20, "s0"))
    assert "l0>s1" not in {x["link"] for x in attribution.collisions(c, fl)}
    imb = attribution.imbalance(c, fl)
    total = 2 * big + big + (1 << 20)
    assert imb["l0>"] == pytest.approx(2 * big / (total / 2))
    assert imb["l1>"] is None  # nothing left leaf 1


def test_fabric_files_are_read_by_the_module_that_writes_them(tmp_path):
    links = [
        {
            "id": "h0",
            "class": "host",
            "directions": {
                "h0>l0": {
                    "way": "up",
                    "bytes": 10,
                    "packets": 1,
                    "shaper_drops": 0,
                    "loss_drops": 2,
                    "Gbps": 0.0,
                },
                "l0>h0": {
                    "way": "down",
                    "bytes": 7,
                    "packets": 1,
                    "shaper_drops": 1,
                    "loss_drops": 0,
                    "Gbps": 0.0,
                },
            },
        }
    ]
    fabricfiles.write_links(tmp_path / "links.json", {"cluster": "x", "links": links})
    rows = fabricfiles.read_links(tmp_path / "links.json")
    assert [(r["name"], r["direction"], r["bytes"]) for r in rows] == [
        ("h0", "up", 10.0),
        ("h0", "down", 7.0),
    ]
    c = fabric_state()
    fl = [_flow(c, "h0", "h2", 1, 500, "s1")]
    fabricfiles.write_flows(
        tmp_path / "flows.json", {"cluster": "x"}, [{"label": "ring", "flows": fl}]
    )
    maps = fabricfiles.read_flows(tmp_path / "flows.json")
    assert maps[0]["label"] == "ring" and maps[0]["flows"][0]["spine"] == "s1"


@pytest.mark.parametrize(
    "name, doc, message",
    [
        ("links.json", {"links": []}, "expected a `cluster run` file with schema"),
        (
            "links.json",
            {"schema": fabricfiles.LINKS_SCHEMA, "links": [{"id": "h0"}]},
            "links[0]: expected keys id, class, directions",
        ),
        (
            "links.json",
            {
                "schema": fabricfiles.LINKS_SCHEMA,
                "links": [
                    {
                        "id": "h0",
                        "directions": {
                            "h0>l0": {
                                "way": "up",
                                "bytes": "big",
                                "packets": 1,
                                "shaper_drops": 0,
                                "loss_drops": 0,
                            }
                        },
                    }
                ],
            },
            "bytes: expected a count >= 0, got 'big'",
        ),
        (
            "flows.json",
            {"schema": fabricfiles.FLOWS_SCHEMA, "maps": [{"flows": [{"src": 1}]}]},
            "maps[0].flows[0].src: expected a string, got 1",
        ),
    ],
)
def test_the_report_refuses_a_bad_fabric_file_naming_the_key(tmp_path, name, doc, message):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    reader = fabricfiles.read_links if name == "links.json" else fabricfiles.read_flows
    with pytest.raises(UsageError, match=re.escape(message)):
        reader(path)


def test_the_report_reads_what_a_cluster_run_wrote(tmp_path):
    """The reader behind `dist-logreg report` takes the fabric files of a train run."""
    from tests.fake_runs import write_train_run

    run = runs.load(write_train_run(tmp_path / "r", tag="t", fabric=True))
    assert {r["name"] for r in run.links} == {"l0-s0", "l0-s1", "l1-s0", "l1-s1"}
    assert run.flows[0]["label"] == "job" and len(run.flows[0]["flows"]) == 3


def test_a_bench_of_several_algorithms_runs_one_job_per_algorithm(tmp_path):
    out = tmp_path / "b.json"
    prog = ["bench", "--allreduce", "ring,rabenseifner", "--out", str(out)]
    got = jobs.parts(prog, out)
    assert [label for label, _, _ in got] == ["ring", "rabenseifner"]
    assert got[0][1][2] == "ring" and got[0][1][-1] == str(tmp_path / "b.part-ring.json")
    assert len(jobs.parts([*prog, "--fit", "m.json"], out)) == 1  # a fit needs them together
    assert jobs.parts(["train", "--out", "r"], tmp_path) == [
        ("job", ["train", "--out", "r"], tmp_path)
    ]


def test_a_killed_rank_is_said_not_hidden():
    lines = jobs.failed_lines(137, "job")
    assert "the job failed, exit status 137: a process was killed by signal 9" in lines[0]
    assert "out-of-memory" in lines[0] and "no fabric summary" in lines[0]


def test_a_subnet_too_small_for_the_hosts_says_so():
    with pytest.raises(
        UsageError, match=re.escape("--subnet: 198.18.0.0/31 has 2 addresses, room for 0 hosts")
    ) as exc:
        lifecycle.check(Spec(subnet="198.18.0.0/31", hosts=2))
    assert "2 hosts need a /29 or larger" in str(exc.value)
    assert "-1" not in str(exc.value)
    lifecycle.check(Spec(subnet="198.18.0.0/29", hosts=2))  # 8 - 3 = 5 hosts fit


@pytest.mark.parametrize(
    "ch, message",
    [
        (change.Change(), "expected at least one of --rate"),
        (change.Change(loss_links={"l9-s0": 1}), "--loss-link: expected a link among"),
        (change.Change(loss_pct=120), "--loss: expected a percentage in [0, 100], got 120"),
        (change.Change(burst=10), "--burst: expected at least 1514 bytes"),
        (change.Change(hash="l3"), "--hash: only for a leaf-spine cluster"),
    ],
)
def test_bad_changes_are_refused_before_anything_changes(ch, message):
    c = fabric_state()
    c.spec.topology = "flat"  # --hash is for leaf-spine only
    with pytest.raises(UsageError, match=re.escape(message)):
        change._check(c, ch, [link.id for link in c.links])
