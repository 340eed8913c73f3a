"""Defects of issue 29's twelfth attack (L-...), each a test that failed before its fix."""

from __future__ import annotations

import json

import pytest

from dist_logreg.cli import simulate_sweep
from dist_logreg.cli.main import main as cli_main_fn
from dist_logreg.sim.sweep import PARTIAL
from tests.test_model_cli import dl
from tests.test_trust_report import one_line

GRID = 'fabric = "flat:hosts=4"\nranks = [2, 4]\nalgorithm = "ring"\nbytes = "64K"\n'


@pytest.fixture
def interrupted(tmp_path, monkeypatch):
    """A two-point sweep stopped (Ctrl-C) after its first point: ``(grid, out)``."""
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    grid.write_text(GRID)
    real = simulate_sweep.run_point

    def stop_at_one(*a):
        if a[3] == 1:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(simulate_sweep, "run_point", stop_at_one)
    assert cli_main_fn(["simulate", "--sweep", str(grid), "--out", str(out)]) == 130
    monkeypatch.setattr(simulate_sweep, "run_point", real)
    return grid, out


def _faster(point):
    r = point["results"][0]
    for k in ("time_s", "time_s_worst", "ideal_s"):
        r[k] /= 1000
    r["time_s_seeds"] = [t / 1000 for t in r["time_s_seeds"]]
    r["busbw"] *= 1000
    r["algbw"] *= 1000


def _nan(point):
    point["results"][0]["time_s"] = float("nan")


@pytest.mark.parametrize(
    "edit, words",
    [
        (
            lambda p: p.clear(),
            "done.0: expected keys format, engine",
        ),  # L-H3: a point that is no result
        (lambda p: p.update(results=[1]), "done.0: results[0]: expected"),
        (_nan, "done.0: results[0].time_s: expected"),  # L-H3: json.loads takes NaN
        (_faster, "done.0: results[0]."),  # L-H4: 1000x its links' time
    ],
)
def test_resume_holds_each_finished_point_as_report_holds_a_file(interrupted, edit, words):
    """Twelfth attack L-H3, L-H4: a partial file's point was read with no schema: {} or a
    list of numbers ran the rest, then a KeyError traceback; NaN a ValueError traceback; a
    point 1000x faster than its links went into simulate.json (4.18 TB/s busbw on 50 GB/s
    links), exit 0. Now one line naming the file and the point, before any point runs."""
    grid, out = interrupted
    doc = json.loads((out / PARTIAL).read_text())
    edit(doc["done"]["0"])
    (out / PARTIAL).write_text(json.dumps(doc))
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume")
    line = one_line(r)
    assert line.startswith(f"dist-logreg: error: --resume {out / PARTIAL}: {words}"), line
    assert not (out / "simulate.json").exists()


def test_resume_takes_a_genuine_point(interrupted):
    grid, out = interrupted
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert [x["point"] for x in json.loads((out / "simulate.json").read_text())["results"]] == [
        0,
        1,
    ]


@pytest.mark.parametrize("calls", [3 * 10**6, 10**15])
def test_simulate_run_refuses_more_calls_a_step_than_a_workload_has_buckets(tmp_path, calls):
    """Twelfth attack L-H1, L-H2: a summary.json of 10^15 8-byte allreduce calls in one step
    built a tuple of them (MemoryError traceback); 3 million ran 45 s into a 582 MB
    simulate.json that report then refused (more than 2,097,152 buckets). Now refused first."""
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "steps": 1,
        "world_size": 2,
        "allreduce": {"calls": calls, "bytes": float(calls * 8)},
        "time_s": {"compute": 0.01},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    args = ["--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring"]
    line = one_line(dl("simulate", *args, "--out", str(tmp_path / "o")))
    assert (
        f"--run {run / 'summary.json'}: allreduce.calls / steps: expected at most 2,097,152" in line
    )
    assert f"got {calls} / 1" in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("gamma_from", ["spec", "cost model"])
def test_report_takes_a_packet_run_that_reduces_after_its_last_message(tmp_path, gamma_from):
    """Twelfth attack L-H6 (a genuine output refused): recursive doubling reduces the whole
    vector after its last message arrives, so with a gamma the row's time is the last
    message plus gamma x bytes; report demanded the last message done at the row's time."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--ranks", "4", "--bytes", "64K", "--engine", "packet"]
    args += ["--algorithm", "recursive-doubling", "--out", str(tmp_path / "pk")]
    if gamma_from == "spec":
        args += ["--fabric", "flat:hosts=4,gamma=0.05ns"]
    else:
        from dist_logreg.collective import costfile
        from tests.test_costmodel import one_segment_model

        costfile.save(one_segment_model(), tmp_path / "model.json")
        args += ["--fabric", "flat:hosts=4", "--cost-model", str(tmp_path / "model.json")]
    r = dl("simulate", *args)
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "pk" / "simulate.json").read_text())["results"][0]
    assert max(row["packet"]["message_done_s"]) < min(row["time_s_seeds"])  # the case itself
    r = dl("report", str(tmp_path / "pk"), "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "edit, words",
    [
        ({"time_s_p50": 0.0}, "time_s_p50: expected at least time_s_min"),
        ({"time_s_p50": 0.0, "time_s_p99": 0.0}, "time_s_p50: expected at least time_s_min"),
        ({"time_s_max": 0.0}, "time_s_max: expected at least time_s_min"),
        ({"time_s_min": None, "time_s_max": 0.0}, "time_s: expected the mean, between"),
    ],
)
def test_a_bench_spread_of_zero_is_held_to_its_order(tmp_path, edit, words):
    """Twelfth attack L-H7: the spread's order skipped a 0 (falsy), so a p50, p99 or max of
    0 s beside a min of 6.7 us was drawn; each is a value like any other."""
    from tests.fake_runs import write_bench

    path = write_bench(tmp_path / "b.json")
    doc = json.loads(path.read_text())
    doc["records"][1].update(edit)
    doc["records"][1] = {k: v for k, v in doc["records"][1].items() if v is not None}
    path.write_text(json.dumps(doc))
    line = one_line(dl("report", str(path), "--out", str(tmp_path / "o")))
    assert f"record 1: {words}" in line, line


SIM = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "2", "--algorithm", "ring"]


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("deep.json", '{"params":' + "[" * 50000 + "]" * 50000 + "}", "expected JSON, got ("),
        ("twice.toml", "params = 1e6\nPARAMS = 1e9\n", "params: expected each key once"),
        ("twice.json", '{"params": 1e6, "params": 2e6}', "expected each key once in an object"),
    ],
)
def test_a_workload_file_nested_deep_or_with_a_key_twice_is_one_line(tmp_path, name, text, words):
    """Twelfth attack L-H5 (RecursionError traceback), L-M1 (the last of two spellings, or of
    a JSON key given twice, kept silently: 82 ms for the PARAMS of 1e9)."""
    path = tmp_path / name
    path.write_text(text)
    line = one_line(dl(*SIM, "--workload", str(path)))
    assert line.startswith(f"dist-logreg: error: --workload {path}: "), line
    assert words in line, line


def test_a_summary_with_a_key_twice_is_refused(tmp_path):
    """Twelfth attack L-M2: ``"steps": NaN, "steps": 40`` in a summary.json was read as 40
    (JSON keeps the last); every JSON reader now refuses a key given twice."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(
        '{"steps": NaN, "steps": 40, "world_size": 2, "allreduce": {"calls": 40, "bytes": 320},'
        ' "time_s": {"compute": 0.01}}'
    )
    line = one_line(dl(*SIM, "--run", str(run)))
    assert f"--run {run / 'summary.json'}" in line, line
    assert "expected each key once in an object, got 'steps' twice" in line, line
