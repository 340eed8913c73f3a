"""The medium and low defects left from issue 29 ("Trust, round 3"): a ``simulate.json`` that
breaks physics or carries escape sequences, ``cluster set`` values nft/tc refuse, a packet
sweep over ``--max-wall``, ``--flows ""``, a flows.json with non-finite or fractional values,
Ctrl-C while ``model fit`` starts, the ``bench --fit`` -> ``simulate --cost-model`` hand-off
with a ``hierarchical-2d:INTER`` name, a symbolic link as the ``--out`` folder, and the
console table and ``--help`` cosmetics. Each case is a row of ``docs/bad-input.md``."""

import copy
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import change, validate
from dist_logreg.sim.engine import get_engine
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from tests.helpers import BIN, run_mpi
from tests.test_cluster_units import fabric_state
from tests.test_model_cli import dl
from tests.test_trust_sim_files import DATA, _flows, one_line

FLAT = ["--fabric", "flat:hosts=4,rate=100G", "--ranks", "4", "--algorithm", "ring"]
ESC = "\x1b[2J"

NS3 = all(importlib.util.find_spec(m) is not None for m in ("ns", "cppyy"))


def _sim(tmp_path, *args) -> dict:
    out = tmp_path / "made"
    r = dl("simulate", *args, "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads((out / "simulate.json").read_text())


@pytest.fixture(scope="module")
def sim_doc(tmp_path_factory):
    return _sim(tmp_path_factory.mktemp("sim"), *FLAT, "--bytes", "64K", "--seeds", "3")


def _report(tmp_path, doc):
    (tmp_path / "s").mkdir(exist_ok=True)
    path = tmp_path / "s" / "simulate.json"
    path.write_text(json.dumps(doc))
    return dl("report", str(path), "--out", str(tmp_path / "o"))


# -- 1. a simulate.json that breaks physics -----------------------------------------------------


def _faster_than_ideal(doc):
    r = doc["results"][0]
    r["time_s"] = r["time_s_worst"] = r["ideal_s"] * 0.5
    r["time_s_seeds"] = [r["time_s"]] * len(r["time_s_seeds"])
    r["ratio_to_ideal"] = 0.5  # its ratio with it: the time is what is refused


def _busbw_above_the_link(doc):
    # 100 Gbit/s host links are 12.5 GB/s: no rank pushes more
    doc["results"][0]["busbw"] = 2 * doc["fabric"]["shape"]["rate"]


def _median_not_a_seed(doc):
    r = doc["results"][0]
    r["time_s"] = 10 * r["time_s_worst"]
    r["ratio_to_ideal"] = r["time_s"] / r["ideal_s"]  # its ratio with it


@pytest.mark.parametrize(
    "change_doc, words",
    [
        (_faster_than_ideal, ["results[0].time_s", "ideal_s", "breaks physics"]),
        (_busbw_above_the_link, ["results[0].busbw", "at most 1.25e+10 B/s", "breaks physics"]),
        (_median_not_a_seed, ["results[0].time_s", "time_s_worst", "breaks physics"]),
    ],
)
def test_a_simulate_json_that_breaks_physics_is_refused(tmp_path, sim_doc, change_doc, words):
    doc = copy.deepcopy(sim_doc)
    change_doc(doc)
    one_line(_report(tmp_path, doc), "simulate.json", *words)
    assert not (tmp_path / "o").exists()  # nothing written


def test_an_event_by_event_run_below_the_phase_ideal_still_reports(tmp_path):
    """The ideal is the phase-synchronous one: event by event, ranks of one host run ahead
    of its phases (hierarchical, 4 ranks a host, no alpha: 0.75 of it). Not refused."""
    doc = _sim(
        tmp_path,
        *("--fabric", "flat:hosts=8,alpha=0,link-latency=0", "--ranks", "8"),
        *("--ranks-per-host", "4", "--algorithm", "hierarchical", "--bytes", "1000", "--exact"),
    )
    assert doc["results"][0]["time_s"] < doc["results"][0]["ideal_s"]
    r = _report(tmp_path, doc)
    assert r.returncode == 0, r.stderr


# -- 2. control characters in a simulate.json's strings -----------------------------------------


@pytest.mark.parametrize(
    "key", ["fabric.spec", "placement.mode", "engine", "mode", "results.0.algorithm", "links"]
)
def test_escape_sequences_in_a_simulate_json_never_reach_the_report(tmp_path, sim_doc, key):
    doc = copy.deepcopy(sim_doc)
    if key == "links":
        row = doc["results"][0]["links"]
        row[f"host{ESC}up"] = row.pop("host-up")
    else:
        *head, last = key.split(".")
        node = doc
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = f"x{ESC}y"
    line = one_line(_report(tmp_path, doc), "simulate.json", "control characters", "\\x1b")
    assert "\x1b" not in line
    for name in ("report.md", "report.html"):
        assert not (tmp_path / "o" / name).exists()


def test_the_report_of_a_clean_simulate_json_has_no_control_characters(tmp_path, sim_doc):
    r = _report(tmp_path, sim_doc)
    assert r.returncode == 0, r.stderr
    for name in ("report.md", "report.html"):
        text = (tmp_path / "o" / name).read_text()
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), name


# -- 3. cluster values nft and tc refuse --------------------------------------------------------


def test_a_loss_nft_rounds_to_every_packet_is_refused_first():
    def loss(pct):
        return validate.check_link_values(
            rates={},
            loss_pct=pct,
            loss_links={},
            link_ids=["h0"],
            burst=None,
            queue=None,
            mtu=1500,
        )

    # 99.9999999 % of 1000000 is 1000000: "numgen random mod 1000000 < 1000000" (raw nft error)
    with pytest.raises(UsageError, match=r"--loss: expected a percentage below 100, at most "):
        loss(99.9999999)
    assert loss(99.9999) == []  # 999999 ppm: what nft takes


@pytest.mark.parametrize(
    "ch, message",
    [
        (change.Change(queue=0), "--queue: expected at least 1514 bytes (one full-size frame)"),
        (change.Change(burst=0), "--burst: expected at least 1514 bytes (one full-size frame)"),
        (change.Change(loss_pct=99.9999999), "--loss: expected a percentage below 100"),
        (change.Change(loss_links={"h0": 99.99999}), "--loss-link h0: expected a percentage"),
    ],
)
def test_cluster_set_checks_zero_and_near_total_loss_before_anything(ch, message):
    c = fabric_state()
    with pytest.raises(UsageError, match=re.escape(message)):
        change._check(c, ch, [link.id for link in c.links])


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(queue=0), "--queue: expected at least 1514 bytes"),
        (dict(loss_pct=99.9999999), "--loss: expected a percentage below 100, at most 99.9999"),
    ],
)
def test_cluster_up_checks_the_same_values_before_building(kw, message):
    from dist_logreg.ops.cluster import lifecycle
    from dist_logreg.ops.cluster.state import Spec

    spec = Spec(name="i29l", subnet="198.18.61.0/24", hosts=2, **kw)
    with pytest.raises(UsageError, match=re.escape(message)):
        lifecycle.check(spec)


# -- 4. a packet sweep over --max-wall ----------------------------------------------------------


@pytest.mark.skipif(not NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
def test_a_packet_sweep_is_estimated_whole_before_it_starts(tmp_path):
    fab = parse_fabric("flat:hosts=4")
    eng = get_engine("packet")
    one = eng.prepare(Job(fab, place(4, fab), "ring", 8 << 20))[-1]
    limit = 1.5 * one  # each run fits; three seeds of it do not
    t0 = time.perf_counter()
    r = dl(
        "simulate",
        *("--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring", "--bytes", "8M"),
        *("--seeds", "3", "--engine", "packet", "--max-wall", f"{limit:.6f}s"),
    )
    one_line(r, "--engine packet", "3 runs (1 point(s) x 3 seed(s))", "--max-wall")
    assert time.perf_counter() - t0 < 60  # refused before ns-3 ran anything


# -- 6. simulate --flows "" ---------------------------------------------------------------------


def test_an_empty_flows_path_is_refused():
    one_line(dl("simulate", *FLAT, "--flows", ""), "--flows", "''")


# -- 7. flows.json with non-finite or fractional values -----------------------------------------


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("hash", float("nan"), ["hash", "nan"]),
        ("flows.0.sport", float("nan"), ["flows[0].sport", "nan"]),
        ("flows.0.dport", 2.5, ["flows[0].dport", "2.5"]),
        ("flows.0.packets", float("inf"), ["flows[0].packets", "inf"]),
        ("flows.0.src_ranks", [0.5], ["flows[0].src_ranks[0]", "0.5"]),
        ("ranks_per_host", float("nan"), ["ranks_per_host", "nan"]),
    ],
)
def test_a_flows_json_with_non_finite_or_fractional_values_is_refused(
    tmp_path, monkeypatch, key, value, words
):
    doc = json.loads((DATA / "flows.json").read_text())
    *head, last = key.split(".")
    node = doc
    for k in head:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[last] = value
    one_line(_flows(tmp_path, monkeypatch, doc), "--flows", *words)


# -- 8. Ctrl-C while model fit starts -----------------------------------------------------------


def _bench_file(path):
    records = [
        {
            "algorithm": "ring",
            "bytes": b,
            "time_s": 1e-5 + b * 1e-9,
            "world_size": 2,
            "reduce_s": b / 8 * 1e-10,
        }
        for b in (1024, 8192, 65536, 524288)
    ]
    path.write_text(json.dumps({"records": records}))
    return path


def test_ctrl_c_while_model_fit_loads_is_one_line(tmp_path):
    bench = _bench_file(tmp_path / "b.json")
    p = subprocess.Popen(
        [sys.executable, "-m", "dist_logreg", "model", "fit", str(bench)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    # once numpy loads, the command line is loading (dist_logreg alone loads no numpy): the
    # interpreter's own start, which no program can guard, is over, however loaded the machine
    maps, deadline = f"/proc/{p.pid}/maps", time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        try:
            with open(maps) as fh:
                if "_multiarray_umath" in fh.read():
                    break
        except OSError:
            break
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert p.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted (SIGINT)" in err, err
    assert not (tmp_path / "model.json").exists()


def test_ctrl_c_during_the_fit_is_one_line(tmp_path, monkeypatch):
    from dist_logreg.collective import benchfit

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchfit, "fit_records", interrupted)
    out = tmp_path / "m.json"
    try:
        r = dl("model", "fit", str(_bench_file(tmp_path / "b.json")), "--out", str(out))
    except KeyboardInterrupt:  # what it did: a traceback
        pytest.fail("KeyboardInterrupt escaped model fit")
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "dist-logreg model fit: interrupted (SIGINT); nothing written"
    assert not out.exists()


# -- 9. bench --fit -> simulate --cost-model, hierarchical-2d:INTER -----------------------------


def test_bench_fit_hands_a_hierarchical_inter_model_to_simulate(tmp_path):
    alg = "hierarchical-2d:ring"
    bench = run_mpi(
        2,
        [str(BIN / "dist-logreg"), "bench", "--allreduce", alg, "--min-bytes", "4K"]
        + ["--max-bytes", "4M", "--factor", "8", "--iters", "5", "--out", "b.json"]
        + ["--fit", "model.json"],
        timeout=300,
        cwd=tmp_path,
    )
    assert bench.returncode == 0, bench.stderr[-2000:]
    model = json.loads((tmp_path / "model.json").read_text())
    seg = model["algorithms"][alg]["segments"][0]
    alpha = (seg["inter"] or seg["intra"])["alpha_s"]  # one host: the intra fit stands in
    r = dl(
        "simulate",
        *("--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "64K,1M", "--algorithm", alg),
        *("--cost-model", str(tmp_path / "model.json"), "--json"),
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [x["algorithm"] for x in doc["results"]] == [alg, alg]
    assert doc["cost_model"]["alpha_s"] == {alg: pytest.approx(alpha, rel=1e-12)}
    assert doc["cost_model"]["gamma_s_per_byte"][alg] == pytest.approx(
        model["gamma"][0]["s_per_byte"], rel=1e-12
    )
    # every time holds at least the fitted alpha of each of the schedule's steps
    assert min(x["time_s"] for x in doc["results"]) >= alpha


# -- 5. a symbolic link as the --out folder -----------------------------------------------------


def test_a_symlinked_out_folder_is_written_into_never_through_a_link_at_the_file(tmp_path):
    """Documented, not refused (docs/bad-input.md): a link to a folder is how a scratch
    disk is used; what is never followed is a link at the output FILE's name, and nothing
    there is replaced without --force, whichever way the folder was reached."""
    target = tmp_path / "scratch"
    target.mkdir()
    link = tmp_path / "out"
    link.symlink_to(target, target_is_directory=True)
    assert dl("simulate", *FLAT, "--bytes", "1K", "--out", str(link)).returncode == 0
    assert (target / "simulate.json").is_file() and link.is_symlink()
    again = dl("simulate", *FLAT, "--bytes", "1K", "--out", str(link))
    one_line(again, "--out", "the file exists")
    (target / "simulate.json").unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (target / "simulate.json").symlink_to(victim)
    one_line(dl("simulate", *FLAT, "--bytes", "1K", "--out", str(link)), "symbolic link")
    assert victim.read_text() == "keep"
    fit = dl("model", "fit", str(_bench_file(tmp_path / "b.json")), "--out", f"{link}/m.json")
    assert fit.returncode == 0, fit.stderr
    assert (target / "m.json").is_file()


@pytest.mark.timeout(300)
def test_train_and_bench_with_a_symlinked_folder(tmp_path):
    """train --out LINK writes into the folder and keeps the link; bench --out names a FILE,
    so a link there (to a folder or not) is refused before the sweep, as before."""
    from tests.test_trust_outputs import TRAIN

    target = tmp_path / "scratch"
    target.mkdir()
    link = tmp_path / "run"
    link.symlink_to(target, target_is_directory=True)
    r = run_mpi(1, [str(BIN / "dist-logreg"), "train", *TRAIN, "--out", str(link)], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (target / "summary.json").is_file() and link.is_symlink()
    again = run_mpi(1, [str(BIN / "dist-logreg"), "train", *TRAIN, "--out", str(link)], timeout=120)
    assert again.returncode == 2 and "holds another run's results" in again.stderr
    bench = run_mpi(
        1, [str(BIN / "dist-logreg"), "bench", "--max-bytes", "64", "--out", str(link)], timeout=120
    )
    assert bench.returncode == 2 and "symbolic link" in bench.stderr, bench.stderr[-2000:]


# -- 10. the console table and --help -----------------------------------------------------------


def test_the_console_table_fits_long_algorithm_names():
    r = dl(
        "simulate",
        *("--fabric", "flat:hosts=8", "--ranks", "8", "--bytes", "1M"),
        *("--algorithm", "ring,hierarchical-2d:rabenseifner"),
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(x for x in lines if x.startswith("algorithm"))
    rows = [x for x in lines if x.startswith(("ring ", "hierarchical-2d:rabenseifner "))]
    assert len(rows) == 2
    for column in ("ranks", "busbw", "bottleneck"):
        end = head.index(column) + len(column)
        cells = [re.match(r"\S+", row[head.index(column) :]) for row in rows]
        if column == "bottleneck":  # left-aligned: starts where its header starts
            assert all(c and c.start() == 0 for c in cells), rows
        else:  # right-aligned: every cell ends where its header ends
            assert all(row[end - 1] != " " and row[end] == " " for row in rows), (column, rows)


def test_simulate_help_names_every_scenario_and_the_pfc_units():
    r = subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0
    assert "background:permutation=F" in r.stdout
    for flag in ("--pfc-xoff", "--pfc-xon", "--pfc-headroom"):
        assert f"{flag} BYTES" in r.stdout, flag
        assert f"PACKET_{flag[2:].upper().replace('-', '_')}" not in r.stdout
