"""``dist-logreg report``, third attack on issue 29: every key it reads is checked (a
simulate.json's sweep tags, workload seconds, packet series, the relations between its
numbers; a bench JSON's every key), and its outputs go through the one writer."""

import copy
import errno
import json
import os
import signal

import pytest

from tests.test_model_cli import dl
from tests.test_trust_report import one_line


def fabric_block(spec: str) -> dict:
    """The fabric block simulate writes for ``spec`` (the report rebuilds it from its spec
    and refuses one that disagrees, so a hand-made file carries the real one)."""
    from dist_logreg.sim.fabric import parse_fabric
    from dist_logreg.sim.runner import fabric_doc

    return fabric_doc(parse_fabric(spec), spec)


T = 1e-5  # 1 KiB in 10 us at 4 ranks: busbw = 1024 / T x 2(p-1)/p, by hand
ROW = {
    "algorithm": "ring",
    "bytes": 1024,
    "ranks": 4,
    "time_s": T,
    "time_s_worst": 1.2 * T,
    "time_s_seeds": [T, 1.2 * T],
    "ideal_s": 0.5 * T,
    "algbw": 1024 / T,
    "busbw": 1024 / T * 1.5,
    "bottleneck": "host-up",
    # a ring rank sends 2 x 3/4 x 1024 = 1536 B: 0.003072 of a 400 Gbit/s link for 10 us
    "links": {"host-up": {"max_util": 0.003072, "mean_util": 0.003072}},
}
SIM = {
    "format": "dist-logreg simulate",
    "engine": "flow",
    "mode": "event",
    # alpha 0.5 us, links of 0.25 us: a 4-rank ring's floor is 6 x (0.5 + 2 x 0.25) us =
    # 6 us, under the row's 10 us
    "fabric": fabric_block("flat:hosts=4,alpha=0.5us,link-latency=0.25us"),
    "placement": {"mode": "packed", "seeds": 2},
    "results": [ROW],
}
STEP = {
    # one bucket of 1 KiB (256 fp32 parameters), as simulate describes it
    "workload": {
        **{"params": 256.0, "dtype_bytes": 4, "bucket_bytes": 25 << 20, "optimizer_s": 0.0},
        **{"overlap": True, "sync": "allreduce", "strong": 0, "bucket_sizes": []},
        **{"spec": "params=256,forward=1ms,backward=2ms", "gradient_bytes": 1024, "buckets": 1},
        **{"forward_s": 1e-3, "backward_s": 2e-3},
    },
    # the one bucket is ready when backward ends (3 ms) and its ring takes ROW's time T
    "rows": [
        {
            "ranks": 4,
            "algorithm": "ring",
            "step_s": 3e-3 + T,
            "compute_s": 3e-3,
            "comm_s": T,
            "exposed_s": (3e-3 + T) - 3e-3,
            "comm_fraction": ((3e-3 + T) - 3e-3) / (3e-3 + T),
            "efficiency": 1.0,
            "buckets": 1,
            "scaling": "weak",
        }
    ],
    "timeline": {
        "ranks": 4,
        "algorithm": "ring",
        "buckets": [
            {
                "bucket": 0,
                "collective": "ring",
                "bytes": 1024,
                "ready_s": 3e-3,
                "start_s": 3e-3,
                "end_s": 3e-3 + T,
            }
        ],
    },
}


def sim_dir(tmp_path, edit=None, step=False):
    doc = copy.deepcopy(SIM)
    if step:
        doc["step"] = copy.deepcopy(STEP)
    if edit:
        edit(doc)
    d = tmp_path / "sim"
    d.mkdir()
    (d / "simulate.json").write_text(json.dumps(doc))
    return d


def row(**kw):
    return lambda d: d["results"][0].update(kw)


def wl(**kw):
    return lambda d: d["step"]["workload"].update(kw)


def both_rows(d):
    d["results"].append({**d["results"][0], "scenario": "none"})
    d["results"][0]["scenario"] = {"a": 1}


PACKET = {"queue": {"t_s": [0.0, 1e-6], "links": {"host-up": [1.0, 2.0, 3.0]}}}


@pytest.mark.parametrize(
    "edit, step, want",
    [  # D1: a sweep's tag that is not a string (the report groups rows by it)
        (both_rows, False, "results[0].scenario: expected a string, got {'a': 1}"),
        (row(fabric=[1]), False, "results[0].fabric: expected a string, got [1]"),
        (row(workload={"x": 1}), False, "results[0].workload: expected a string"),
        # D2: the workload's seconds the timeline draws
        (wl(forward_s="x"), True, "step.workload.forward_s: expected a finite number of seconds"),
        (wl(forward_s=1e308), True, "step.workload.forward_s: expected a finite number"),
        (wl(backward_s=float("nan")), True, "step.workload.backward_s: expected a finite"),
        (
            lambda d: d["step"]["timeline"].update(algorithm={"x": [1]}),
            True,
            "step.timeline.algorithm: expected a string",
        ),
        # D3: a packet series of another length than its times
        (
            row(packet={**PACKET, "message_done_s": [-1.0]}),
            False,
            "results[0].packet.queue.links.host-up: expected 2 values (one per t_s), got 3",
        ),
        # D4: numbers that contradict each other or physics
        (
            row(busbw=9e9),
            False,
            "results[0].busbw: expected bytes / time_s x its collective's factor, 2(p-1)/p",
        ),
        (
            lambda d: d["results"][0].update(
                time_s=0.0, time_s_worst=0.0, time_s_seeds=[0.0], ideal_s=0.0
            ),
            False,
            "results[0].time_s: expected more than 0 s for 1024 B at 4 ranks, got 0",
        ),
        (row(algbw=1.0), False, "results[0].algbw: expected bytes / time_s, got 1"),
        (
            row(time_s_worst=5.0),
            False,
            "results[0].time_s_worst: expected the slowest seed's time, max of time_s_seeds",
        ),
        (
            row(links={"host-up": {"max_util": 5.0, "mean_util": 0.1}}),
            False,
            "results[0].links.host-up.max_util: expected a utilisation",
        ),
        (
            row(links={"host-up": {"max_util": 0.2, "mean_util": 0.7}}),
            False,
            "results[0].links.host-up.mean_util: expected at most max_util 0.2, got 0.7",
        ),
        (
            lambda d: d["step"]["rows"][0].update(step_s=1e-9),
            True,
            "step.rows[0].step_s: expected at least compute_s 0.003 s, got 1e-09",
        ),
        (
            lambda d: d["step"]["timeline"]["buckets"][0].update(end_s=0.0),
            True,
            "step.timeline.buckets[0]: expected ready_s <= start_s <= end_s",
        ),
    ],
)
def test_bad_simulate_json_is_one_line_and_exit_2(tmp_path, edit, step, want):
    out = tmp_path / "o"
    line = one_line(dl("report", str(sim_dir(tmp_path, edit, step)), "--out", str(out)))
    assert want in line, line
    assert "simulate.json" in line and not out.exists()


def test_the_hand_made_simulate_json_is_reported(tmp_path):
    """The base the cases above break is itself a good file (so each case fails on its key)."""
    out = tmp_path / "o"
    r = dl("report", str(sim_dir(tmp_path, step=True)), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "report.md").is_file() and (out / "1-sim-step.png").is_file()


# --- D5, D6, D7, D23: the report's files go through the one writer --------------------------


def test_a_link_at_an_output_name_is_never_written_through(tmp_path):
    src = sim_dir(tmp_path)
    out, victim = tmp_path / "o", tmp_path / "precious.txt"
    out.mkdir()
    victim.write_text("KEEP")
    for name in ("report.md", "report.json", "1-sim-time.png"):
        (out / name).symlink_to(victim)
    line = one_line(dl("report", str(src), "--out", str(out)))
    assert "expected a new file name, got a symbolic link" in line, line
    assert victim.read_text() == "KEEP"
    r = dl("report", str(src), "--out", str(out), "--force")  # replaces the links themselves
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "KEEP"
    assert not (out / "report.md").is_symlink() and (out / "report.md").read_text().startswith("#")


def test_an_earlier_report_is_kept_without_force(tmp_path):
    src, out = sim_dir(tmp_path), tmp_path / "o"
    out.mkdir()
    (out / "report.md").write_text("OLD")
    line = one_line(dl("report", str(src), "--out", str(out)))
    assert f"--out {out}: holds another report (report.md); expected a new directory" in line
    assert (out / "report.md").read_text() == "OLD" and sorted(os.listdir(out)) == ["report.md"]
    assert dl("report", str(src), "--out", str(out), "--force").returncode == 0
    assert (out / "report.md").read_text() != "OLD" and (out / "1-sim-time.png").is_file()


def test_an_unwritable_out_is_one_line_before_any_plot(tmp_path, monkeypatch):
    """A read-only file system (EROFS, as a ``mount -o ro`` gives even to root): the probe
    in ``--out`` fails, before anything is drawn."""
    import tempfile

    from dist_logreg.report import plots

    def erofs(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    drawn = []
    monkeypatch.setattr(tempfile, "mkdtemp", erofs)
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append(path))
    out = tmp_path / "o"
    out.mkdir()
    line = one_line(dl("report", str(sim_dir(tmp_path)), "--out", str(out)))
    assert line == f"dist-logreg: error: --out {out}: cannot write there: Read-only file system"
    assert drawn == [] and os.listdir(out) == []


def test_sigint_while_drawing_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C lands after the first plot is drawn: exit 130, and neither the plot nor the
    folder ``report`` made is left (before: the plots drawn so far stayed)."""
    from dist_logreg.report import plots

    save = plots.save

    def save_then_interrupt(fig, path):
        save(fig, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "save", save_then_interrupt)
    out = tmp_path / "o"
    r = dl("report", str(sim_dir(tmp_path)), "--out", str(out))
    assert r.returncode == 130 and "interrupted (SIGINT); nothing done" in r.stderr
    assert not out.exists()


def test_sigint_while_the_files_are_moved_in_finishes_and_says_so(tmp_path, monkeypatch):
    """Ctrl-C between two renames: held until every file is in place, then said, exit 130."""
    from dist_logreg.cli import report as cli_report

    calls = []
    real = cli_report.write_output

    def write_then_sigint(*a, **k):
        real(*a, **k)
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)
        calls.append(a[0])

    monkeypatch.setattr(cli_report, "write_output", write_then_sigint)
    out = tmp_path / "o"
    r = dl("report", str(sim_dir(tmp_path)), "--out", str(out))
    assert r.returncode == 130, r.stderr
    assert f"interrupted (SIGINT) after the report was written to {out}/" in r.stderr
    assert sorted(p.name for p in calls) == sorted(os.listdir(out))
    assert {"report.md", "report.html", "report.json"} <= set(os.listdir(out))


# --- D9, D10, D11: a bench JSON, every key the report reads ---------------------------------

#: One allreduce record at 2 ranks, by hand: 64 KiB in 40 us is 1.6384 GB/s (algbw), and the
#: factor 2(p-1)/p = 1 at p = 2 makes busbw the same.
REC = {
    "collective": "allreduce",
    "algorithm": "ring",
    "bytes": 65536,
    "time_s": 4e-5,
    "time_s_p50": 3.9e-5,
    "time_s_p99": 5e-5,
    "time_s_min": 3e-5,
    "time_s_max": 6e-5,
    "time_s_ci95": None,
    "algbw": 65536 / 4e-5 / 1e9,
    "busbw": 65536 / 4e-5 / 1e9,
    "busbw_factor": 1.0,
    "wrong": 0,
    "world_size": 2,
}
BENCH = {"run": {"tag": "b", "command_line": ["bench"], "cluster": None}, "records": [REC]}


def bench_file(tmp_path, edit=None):
    doc = copy.deepcopy(BENCH)
    if edit:
        edit(doc)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    return path


def rec(**kw):
    return lambda d: d["records"][0].update(kw)


def top(**kw):
    return lambda d: d.update(kw)


def run(**kw):
    return lambda d: d["run"].update(kw)


@pytest.mark.parametrize(
    "edit, want",
    [  # D9: keys the report reads, of the wrong type or unbounded
        (rec(time_s_p50="x"), "record 0: time_s_p50: expected a finite number of seconds"),
        (rec(time_s_ci95=[1, 2]), "record 0: time_s_ci95: expected a finite number of seconds"),
        (rec(bytes=10**400), "record 0: bytes: expected a whole number of bytes"),
        (top(link_rate_bps="abc"), "link_rate_bps: expected a finite rate in bit/s > 0"),
        (top(link_rate_bps=[1]), "link_rate_bps: expected a finite rate in bit/s > 0"),
        (top(run=[1]), "run: expected an object (the run block) or null, got list [1]"),
        (top(run="x"), "run: expected an object (the run block) or null, got str 'x'"),
        (run(cluster=[1]), "run.cluster: expected an object, got list [1]"),
        (run(tag={"a": 1}), "run.tag: expected a string, got {'a': 1}"),
        (rec(collective=[1]), "record 0: collective: expected a string, got [1]"),
        # D10: numbers no network gives, or that contradict each other
        (rec(busbw=1e6), "record 0: busbw: expected bytes / time_s x the collective's factor"),
        (rec(busbw=1e300), "record 0: busbw: expected a finite number of GB/s"),
        (rec(algbw=5.0), "record 0: algbw: expected bytes / time_s = 1.6384 GB/s, got 5"),
        (rec(time_s=1e-300), "record 0: time_s: expected a finite number of seconds >= 1e-09"),
        (rec(time_s_p99=float("nan")), "record 0: time_s_p99: expected a finite number"),
        (rec(time_s_min=1.0, time_s_max=1e-9), "record 0: time_s_p50: expected at least"),
        (rec(time_s_min=5e-5), "record 0: time_s_p50: expected at least time_s_min 5e-05 s"),
        (rec(world_size=0), "record 0: world_size: expected a number of ranks from 1"),
        (top(link_rate_bps=float("nan")), "link_rate_bps: expected a finite rate in bit/s"),
    ],
)
def test_bad_bench_json_is_one_line_and_exit_2(tmp_path, edit, want):
    path, out = bench_file(tmp_path, edit), tmp_path / "o"
    line = one_line(dl("report", str(path), "--out", str(out)))
    assert f"bench JSON {path}: " in line and want in line, line
    assert not out.exists()


def test_the_hand_made_bench_json_is_reported(tmp_path):
    r = dl("report", str(bench_file(tmp_path)), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "1.638" in (tmp_path / "o" / "report.md").read_text()  # 65536 B / 40 us, GB/s


def test_a_p2p_bench_file_is_named_for_what_it_is(tmp_path):
    """D11: ``bench --p2p``'s own output: not "expected keys algorithm, busbw" (a damaged
    file), but what it is and that report does not draw it yet."""
    recs = [{"p2p": "latency", "pair": [0, 1], "bytes": 8, "time_s": 2.7e-6, "GBps": 0.003}]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"run": {"tag": "p"}, "records": recs}))
    line = one_line(dl("report", str(path), "--out", str(tmp_path / "o")))
    assert "a bench --p2p file" in line and "does not draw point-to-point records" in line


def test_a_dangling_simulate_json_link_is_named(tmp_path):
    """D8: a folder whose simulate.json is a link to nothing: said so, not "a directory
    without summary.json"."""
    d = tmp_path / "dangling"
    d.mkdir()
    (d / "simulate.json").symlink_to(tmp_path / "nonexistent")
    line = one_line(dl("report", str(d), "--out", str(tmp_path / "o")))
    assert "simulate.json: a symbolic link to" in line and "which does not exist" in line, line


def _many_algorithms(d):
    """201 series (one per algorithm name), each row valid on its own."""
    d["results"] = [{**d["results"][0], "algorithm": f"alg{i}"} for i in range(201)]


@pytest.mark.parametrize(
    "edit, want",
    [  # D36: 100,000 rows of 1,000 algorithms ran past 2 min in matplotlib's legend
        (_many_algorithms, "results: expected at most 200 series"),
        (row(algorithm="a" * 201), "results[0].algorithm: expected a name of at most 200"),
    ],
)
def test_a_file_too_large_to_draw_is_refused_before_drawing(tmp_path, edit, want):
    out = tmp_path / "o"
    line = one_line(dl("report", str(sim_dir(tmp_path, edit)), "--out", str(out)))
    assert want in line, line
    assert not out.exists()


@pytest.mark.parametrize("spec, nbytes", [("flat:hosts=4,rate=8bit", "1M")])
def test_what_simulate_writes_its_report_reads(tmp_path, spec, nbytes):
    """D34: an allreduce of 18 days (1 MiB at 8 bit/s) was written by simulate with exit 0
    and refused by report: one set of bounds (simulate refuses --bytes 0 itself)."""
    sim = tmp_path / "s"
    r = dl("simulate", "--fabric", spec, "--ranks", "4", "--bytes", nbytes, "--out", str(sim))
    assert r.returncode == 0, r.stderr
    rep = dl("report", str(sim), "--out", str(tmp_path / "r"))
    assert rep.returncode == 0, rep.stderr


def _rows(n):
    def edit(d):
        d["results"] = [dict(d["results"][0]) for _ in range(n)]

    return edit


def test_a_file_of_too_many_rows_is_refused_before_drawing(tmp_path):
    """Attack 4: 200 series x 500 rank counts (100,000 valid rows) ran past 2 min."""
    out = tmp_path / "o"
    line = one_line(dl("report", str(sim_dir(tmp_path, _rows(20_001))), "--out", str(out)))
    assert "results: expected at most 20,000 rows to draw, got 20,001" in line, line
    assert not out.exists()


def test_sigterm_while_drawing_leaves_nothing(tmp_path):
    """Attack 4: a SIGTERM (timeout, kill) while drawing left the hidden drawing folder."""
    from dist_logreg.cli.report import staged

    out = tmp_path / "o"

    def draw(folder):
        (folder / "half.png").write_bytes(b"x")
        os.kill(os.getpid(), signal.SIGTERM)
        return [folder / "half.png"]

    with pytest.raises(KeyboardInterrupt):
        staged(out, False, draw)
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --- a fourth attack: packet data and bench files the report could not draw ------------------


def _packet(queue=1.0, done=T):  # the last message done at the row (median seed) time
    def edit(d):
        d["results"][0]["packet"] = {
            "queue": {"t_s": [0.0, 1e-6], "links": {"host-up": [0.0, queue]}},
            "message_done_s": [done],
        }

    return edit


@pytest.mark.parametrize(
    "edit, want",
    [
        (_packet(queue=1e15), "packet.queue.links.host-up[1]: expected a queue in bytes"),
        (_packet(done=1.0), "packet.message_done_s[0]: expected a message done after it"),
    ],
)
def test_unphysical_packet_data_is_refused(tmp_path, edit, want):
    out = tmp_path / "o"
    line = one_line(dl("report", str(sim_dir(tmp_path, edit)), "--out", str(out)))
    assert want in line, line
    assert not out.exists()


def test_the_packet_base_is_reported(tmp_path):
    """The case above with physical values reports (so each case fails on its key)."""
    r = dl("report", str(sim_dir(tmp_path, _packet())), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr


def test_a_bench_file_too_large_to_draw_is_refused(tmp_path):
    """100,000 records of a fourth attack's bench file ran past 2 min."""
    path = bench_file(tmp_path, lambda d: d.update(records=d["records"] * 5001))
    line = one_line(dl("report", str(path), "--out", str(tmp_path / "o")))
    assert "records: expected at most 5,000 records to draw, got 5,001" in line, line
