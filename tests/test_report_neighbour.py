"""``report`` on a ``simulate.json`` with ``--scenario neighbour:...`` (issue 30): each job's
time alone, together and its slowdown in ``report.md``, equal to the file's numbers (read
back from the page, to the digits it prints); the schema refuses a slowdown not above 0, a
non-finite one, one that is not together / alone. And ``simulate``'s console compares the
phase-synchronous time with the exact time alone, not with the two jobs together."""

import copy
import json
import math
import re
import subprocess
import sys

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.report import simulate as report_sim

RATE, LAT, ALPHA = 50e9, 1e-6, 5e-6  # 400G in B/s; the fabric's defaults
N = 1 << 20
# two 4-rank rings spread over a 2:1 leaf-spine with spray (as tests/test_sim_neighbour.py)
LEAF_SPINE = (
    "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,oversubscription=2,hash=spray,"
    f"rate=400G,link-latency={LAT},alpha={ALPHA}"
)
UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def dist_logreg(*args):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``simulate --exact`` with a neighbour, then ``report`` of it: (stdout, doc, report.md)."""
    d = tmp_path_factory.mktemp("neighbour")
    sim = dist_logreg(
        "simulate",
        "--exact",
        *("--fabric", LEAF_SPINE, "--ranks", "2,4", "--placement", "spread"),
        *("--algorithm", "ring,rabenseifner", "--bytes", "1M"),
        *("--scenario", "neighbour:ranks=4,placement=spread", "--out", str(d / "sim")),
    )
    assert sim.returncode == 0, sim.stderr
    rep = dist_logreg("report", str(d / "sim"), "--out", str(d / "rep"))
    assert rep.returncode == 0, rep.stderr
    assert (d / "rep" / "1-sim-neighbour.png").stat().st_size > 0
    doc = json.loads((d / "sim" / "simulate.json").read_text())
    return sim.stdout, doc, (d / "rep" / "report.md").read_text()


def seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * UNIT[unit]


def table_rows(md: str) -> list[list[str]]:
    """The rows of the report's neighbour table, cells stripped."""
    part = md.split("### Two jobs on one fabric", 1)[1]
    lines = [x for x in part.splitlines() if x.startswith("|")]
    return [[c.strip() for c in x.strip("|").split("|")] for x in lines[2:]]


def test_report_md_shows_each_jobs_alone_together_and_slowdown_as_in_simulate_json(made):
    _, doc, md = made
    rows = table_rows(md)
    want = [(r, name) for r in doc["results"] for name in ("first", "neighbour")]
    assert len(rows) == len(want) == 8
    for cells, (r, name) in zip(rows, want, strict=True):
        j = r["jobs"][name]
        assert cells[:6] == [
            r["algorithm"],
            str(r["ranks"]),
            "1 MiB",
            name,
            j["algorithm"],
            str(j["ranks"]),
        ]
        # six significant digits on the page: the file's value to half a unit in the sixth
        for cell, key in zip(cells[7:9], ("alone_s", "together_s"), strict=True):
            assert seconds(cell) == pytest.approx(j[key], rel=5e-6), (cell, key, j)
        assert float(cells[9]) == pytest.approx(j["slowdown"], abs=5e-7)
        assert j["slowdown"] == pytest.approx(j["together_s"] / j["alone_s"], rel=1e-12)
    # the independent number: 4-rank rings, 6 steps of N/4 over 4 hops, alone at the NIC's
    # rate, together 2 flows per spine link, half of it (tests/test_sim_neighbour.py)
    ring4 = [r for r in doc["results"] if r["algorithm"] == "ring" and r["ranks"] == 4][0]
    x = N / 4
    assert ring4["alone_s"] == pytest.approx(6 * (ALPHA + x / RATE + 4 * LAT), rel=1e-9)
    assert ring4["time_s"] == pytest.approx(6 * (ALPHA + x / (RATE / 2) + 4 * LAT), rel=1e-9)


def test_console_compares_the_phase_synchronous_time_with_the_exact_time_alone(made):
    out, doc, _ = made
    lines = [x for x in out.splitlines() if "phase-synchronous" in x and "=" in x]
    assert len(lines) == len(doc["results"]) == 4
    for line, r in zip(lines, doc["results"], strict=True):
        ratio = float(re.search(r"exact alone / phase-sync alone = ([0-9.]+)\)", line).group(1))
        assert ratio == pytest.approx(r["alone_s"] / r["phase_sync_s"], abs=5e-4)
    # the 4-rank ring alone: every flow alike, so event by event is phase by phase (1.000);
    # with the neighbour it is 2 x slower on the spines, which the old line divided by
    ring4 = lines[2]
    assert "= 1.000)" in ring4, ring4
    assert doc["results"][2]["time_s"] / doc["results"][2]["phase_sync_s"] > 1.3


def refused(doc, words, tmp_path):
    with pytest.raises(UsageError) as err:
        report_sim.check(tmp_path / "simulate.json", doc)
    assert words in str(err.value), err.value
    assert len(str(err.value).splitlines()) == 1
    return str(err.value)


def test_the_file_as_written_is_read(made, tmp_path):
    report_sim.check(tmp_path / "simulate.json", made[1])


@pytest.mark.parametrize(
    "where, value, words",
    [
        # below 1 is allowed (max-min is not monotone), but not other than together / alone
        (("slowdown",), 0.5, "results[0].slowdown: expected"),
        (("jobs", "neighbour", "slowdown"), 0.9, "jobs.neighbour.slowdown: expected together_s"),
        (("slowdown",), -1.0, "results[0].slowdown: expected a slowdown"),
        (("slowdown",), math.nan, "results[0].slowdown: expected a slowdown"),
        (("jobs", "first", "together_s"), math.inf, "jobs.first.together_s: expected a finite"),
        (("alone_s",), -1.0, "results[0].alone_s: expected a finite number of seconds"),
        (("jobs", "first", "ranks"), 2.5, "jobs.first.ranks: expected a number of ranks"),
        (("jobs", "neighbour", "algorithm"), "\x1b[2J", "without control characters"),
    ],
)
def test_a_neighbour_key_out_of_bounds_is_refused_naming_it(made, tmp_path, where, value, words):
    doc = copy.deepcopy(made[1])
    d = doc["results"][0]
    for k in where[:-1]:
        d = d[k]
    d[where[-1]] = value
    refused(doc, words, tmp_path)


def test_numbers_that_disagree_are_refused(made, tmp_path):
    doc = copy.deepcopy(made[1])
    doc["results"][1]["jobs"]["neighbour"]["slowdown"] *= 1.01  # not together / alone
    refused(doc, "results[1].jobs.neighbour.slowdown: expected together_s / alone_s", tmp_path)
    doc = copy.deepcopy(made[1])
    doc["results"][1]["alone_s"] *= 0.99  # not the first job's
    refused(doc, "results[1].alone_s: expected jobs.first.alone_s", tmp_path)
    doc = copy.deepcopy(made[1])
    del doc["results"][3]["jobs"]
    refused(doc, "results[3]: expected keys jobs (a neighbour row)", tmp_path)
