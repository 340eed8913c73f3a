"""Defects of issue 29's twelfth attack (L-...), each a test that failed before its fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dist_logreg.cli import simulate_sweep
from dist_logreg.cli.main import main as cli_main_fn
from dist_logreg.sim.sweep import PARTIAL
from tests.helpers import WORLD_SIZES, run_mpi, train_cmd
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


def _thousand_times_faster(point):
    r = point["results"][0]
    for k in ("time_s", "time_s_worst", "ideal_s"):
        r[k] /= 1000
    r["time_s_seeds"] = [t / 1000 for t in r["time_s_seeds"]]
    r["busbw"] *= 1000
    r["algbw"] *= 1000


def _nan_time(point):
    point["results"][0]["time_s"] = float("nan")


@pytest.mark.parametrize(
    "edit, words",
    [
        (
            lambda p: p.clear(),
            "done.0: expected keys format, engine",
        ),  # L-H3: a point that is no result
        (lambda p: p.update(results=[1]), "done.0: results[0]: expected"),
        (_nan_time, "done.0: results[0].time_s: expected"),  # L-H3: json.loads takes NaN
        (_thousand_times_faster, "done.0: results[0]."),  # L-H4: 1000x its links' time
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
    simulate.json that report then refused (more than the 2,097,152 buckets of then). Now refused
    first, at the bound a workload has."""
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
        f"--run {run / 'summary.json'}: allreduce.calls / steps: expected at most 262,144" in line
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
        ({"time_s_p50": 0.0}, "time_s_p50: expected a finite number of seconds >= 1e-09"),
        ({"time_s_p50": 2e-9}, "time_s_p50: expected at least time_s_min"),
        ({"time_s_max": 2e-9}, "time_s_max: expected at least time_s_min"),
        ({"time_s_min": None, "time_s_max": 2e-9}, "time_s: expected the mean, between"),
        ({"time_s_min": 0.0}, "time_s_min: expected a finite number of seconds >= 1e-09"),
    ],
)
def test_a_bench_spread_of_zero_is_held_to_its_order(tmp_path, edit, words):
    """Twelfth attack L-H7: the spread's order skipped a 0 (falsy), so a p50, p99 or max of
    0 s beside a min of 6.7 us was drawn; each is a value like any other, and a call's time
    is at least the clock's 1 ns (a time_s_min of 0: thirteenth attack, M-M5)."""
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


# --- L-H10, L-H11, L-H12: a checkpoint or model.npz that is a FIFO, or whose member's
# header claims more than the member holds -------------------------------------------------


def _lying_member(path, member: str) -> None:
    """``path`` rewritten with ``member``.npy's header claiming 2^40 float64 (8 TiB) over 64
    bytes of data: numpy allocated the header's shape before reading."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    d = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    d = d + " " * (118 - len(d) - 1) + "\n"
    header = b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d.encode()
    members[f"{member}.npy"] = header + b"\0" * 64
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


def _checkpoints(tmp_path):
    import numpy as np

    from dist_logreg.train import checkpoint as ckpt
    from tests.test_checkpoint import META

    for step in (10, 20):
        ckpt.save(tmp_path, step, np.arange(5.0) * step, -np.arange(5.0), META, 10)
    return ckpt, META, tmp_path / "ckpt-00000020.npz"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["fifo", "header"])
def test_a_checkpoint_that_is_a_fifo_or_lies_in_its_header_is_skipped(tmp_path, how):
    """Twelfth attack L-H10 (``train --resume`` hung forever on a FIFO named like the newest
    checkpoint), L-H11 (a header of 2^40 floats: a MemoryError traceback, exit 1, which
    supervise restarted). Now the checkpoint is unreadable, named, and the previous one
    is taken, as for any corrupted checkpoint."""
    import os

    ckpt, meta, newest = _checkpoints(tmp_path)
    if how == "fifo":
        newest.unlink()
        os.mkfifo(newest)
        words = "expected a regular file, got a FIFO"
    else:
        _lying_member(newest, "params")
        words = "params: expected an array of plain numbers that its"
    with pytest.raises(ckpt.CheckpointError, match="unreadable") as exc:
        ckpt.load(newest)
    assert words in str(exc.value), exc.value
    assert how == "fifo" or "(8,796,093,022,208 B)" in str(exc.value), exc.value
    warned = []
    got, _ = ckpt.newest_usable(tmp_path, meta["trajectory"], 100, warned.append)
    assert got.step == 10 and "ckpt-00000020.npz" in warned[0] and words in warned[0], warned


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["fifo", "header"])
def test_a_model_that_is_a_fifo_or_lies_in_its_header_is_one_line(tmp_path, how):
    """Twelfth attack L-H12: ``predict --model DIR`` hung on a FIFO as model.npz, and a
    header of 2^40 floats was a MemoryError traceback."""
    import os

    import numpy as np

    from dist_logreg.errors import UsageError
    from dist_logreg.train.predict import load_model

    model = tmp_path / "model.npz"
    np.savez(model, coef=np.arange(4.0), intercept=np.array(0.5))
    assert load_model(tmp_path)[1] is not None  # the genuine one loads
    if how == "fifo":
        model.unlink()
        os.mkfifo(model)
        words = "expected a regular file, got a FIFO"
    else:
        _lying_member(model, "coef")
        words = "coef: expected an array of plain numbers that its"
    with pytest.raises(UsageError) as exc:
        load_model(tmp_path)
    assert str(exc.value).startswith(f"--model {model}: ") and words in str(exc.value), exc.value


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_train_resume_past_a_fifo_checkpoint_ends(tmp_path, n):
    """L-H10 end to end: ``mpirun -n N train --resume`` with the newest checkpoint replaced by
    a FIFO hung forever; now it warns, names it, and resumes from the one before."""
    import os

    out = tmp_path / "run"
    run = ["--samples", "2000", "--features", "8", "--batch-size", "64"]
    run += ["--checkpoint-every", "10", "--out", str(out)]
    r = run_mpi(n, train_cmd(*run, "--steps", "40"), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    newest = sorted((out / "checkpoints").glob("ckpt-00000040-*.npz"))[0]
    newest.unlink()
    os.mkfifo(newest)
    r = run_mpi(n, train_cmd(*run, "--steps", "50", "--resume"), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{newest.name}: unreadable: expected a regular file, got a FIFO" in r.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 50


# --- L-H8, L-H9: a training run's summary.json, config.json and traffic.json --------------


def _set(doc: dict, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    for k in head:
        doc = doc[k]
    doc[last] = value


#: 20 calls of 1048 B, the fastest in 100 us: at most 2 x 20,960 B / 100 us = 0.42 GB/s
_BUSY = {
    "algorithm": "ring",
    "bytes": 20960,
    "latency_s": {"min": 1e-4, "p50": 3e-4},
    "busbw_GBps": {"p50": 1e6},
}


@pytest.mark.parametrize(
    "file, key, value, words",
    [
        ("summary.json", "final_loss", "x", "final_loss: expected a finite loss >= 0"),
        ("summary.json", "final_loss", -0.537, "final_loss: expected a finite loss >= 0"),
        ("summary.json", "final_accuracy", 7.19, "final_accuracy: expected a fraction >= 0"),
        ("summary.json", "final_accuracy", float("nan"), "final_accuracy: expected a fraction"),
        ("summary.json", "steps", -40, "steps: expected a whole number of steps from 0"),
        ("summary.json", "allreduce", [1], "allreduce: expected an object, got list"),
        ("summary.json", "allreduce.latency_s", "fast", "allreduce.latency_s: expected an object"),
        ("summary.json", "allreduce.latency_s.p50", -4.64e-06, "latency_s.p50: expected a finite"),
        ("summary.json", "allreduce.busbw_GBps.p50", 1e300, "busbw_GBps.p50: expected a finite"),
        ("summary.json", "allreduce", _BUSY, "busbw_GBps.p50: expected at most 0.4192 GB/s"),
        ("summary.json", "allreduce.latency_s.p99", 1e-9, "latency_s.p99: expected at least p50"),
        ("summary.json", "comm_fraction.median", 1.5, "comm_fraction.median: expected a fraction"),
        ("summary.json", "run", [1], "run: expected an object, got list"),
        ("config.json", "", [1], "config.json: expected an object, got list"),
        ("traffic.json", "", [1], "traffic.json: expected an object, got list"),
        ("traffic.json", "bytes", [[1, 2]], "traffic.json: bytes: expected a 2 x 2 matrix of 2"),
    ],
)
def test_a_training_runs_files_are_read_through_their_schema(tmp_path, file, key, value, words):
    """Twelfth attack L-H8 (tracebacks: a str loss, a list for allreduce, run, config.json or
    traffic.json) and L-H9 (a loss of -0.537, an accuracy of 719 %, a latency of -4.64 us, a
    busbw of 1e300 GB/s drawn with exit 0)."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    path = run / file
    doc = json.loads(path.read_text()) if path.exists() else {}
    if key:
        _set(doc, key, value)
    else:
        doc = value
    path.write_text(json.dumps(doc))
    genuine = write_train_run(tmp_path / "ok", p=2, late_rank=1)
    assert dl("report", str(genuine), "--out", str(tmp_path / "a")).returncode == 0
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert f"{path}: " in line and words in line, line


def _rewrite(path, edit) -> None:
    """A checkpoint edited and its checksum recomputed, as a hand-edited file would be."""
    import numpy as np

    from dist_logreg.train.checkpoint import _digest

    with np.load(path, allow_pickle=False) as z:
        params, velocity = z["params"].copy(), z["velocity"].copy()
        meta = json.loads(str(z["meta"]))
    edit(meta, params)
    text = json.dumps(meta, sort_keys=True)
    checksum = np.array(_digest(text, params, velocity))
    np.savez(path, params=params, velocity=velocity, meta=np.array(text), checksum=checksum)


def _nan(meta, params):
    params[:] = float("nan")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m, p: m.update(step=10**12), "meta.step 1000000000000 differs from its name's"),
        (lambda m, p: m.update(step=-5), "meta.step: expected a whole number >= 0, got -5"),
        (lambda m, p: m.update(step=20.5), "meta.step: expected a whole number >= 0, got 20.5"),
        (_nan, "params: expected finite numbers, got nan or inf"),
    ],
)
def test_a_checkpoint_is_held_to_its_name_and_finite_numbers(tmp_path, edit, words):
    """Twelfth attack L-H15: a checkpoint named step 40 whose metadata said 10^12 was resumed
    "after step 10^12" and the finished run's summary replaced by one of zeros, exit 0;
    L-M5: NaN parameters or a step of -5 ended as "training diverged" (exit 4, which
    supervise never restarts). Each is now an unusable checkpoint; the previous one is used."""
    ckpt, meta, newest = _checkpoints(tmp_path)
    _rewrite(newest, edit)
    with pytest.raises(ckpt.CheckpointError, match="ckpt-00000020.npz") as exc:
        ckpt.load(newest)
    assert words in str(exc.value), exc.value
    warned = []
    got, _ = ckpt.newest_usable(tmp_path, meta["trajectory"], 100, warned.append)
    assert got.step == 10 and words in warned[0], warned


@pytest.mark.parametrize("beta", [0.0, 1e-300])
def test_a_model_file_with_no_bandwidth_cost_is_refused(tmp_path, beta):
    """Twelfth attack L-H14: ``model fit`` refuses a beta of 0 (an infinite bandwidth), but a
    model file holding one predicted 1 GiB allreduced in 6.9 us (155,396 GB/s), exit 0. The
    reader holds what the fit writes: beta at least 1e-15 s/B (a link of 1 PB/s)."""
    from dist_logreg.collective import costfile
    from tests.test_costmodel import one_segment_model

    model = one_segment_model()
    name = next(iter(model["algorithms"]))
    model["algorithms"][name]["segments"][0]["inter"]["beta_s_per_byte"] = beta
    path = tmp_path / "m.json"
    costfile.save(model, path)
    args = ["--model", str(path), "--ranks", "2", "--bytes", "1G", "--algorithm", name]
    line = one_line(dl("model", "predict", *args))
    assert f"model file {path}: algorithms.{name}.segments[0].inter.beta_s_per_byte: " in line
    assert "expected at least 1e-15 s/B" in line, line


@pytest.fixture(scope="module")
def roce_lossy(tmp_path_factory):
    """A genuine RoCE run with selective retransmission at 1 % loss: packets lost and
    retransmitted."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    out = tmp_path_factory.mktemp("roce") / "p"
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2", "--ranks", "4"]
    args += ["--bytes", "64K", "--algorithm", "ring", "--engine", "packet"]
    args += ["--transport", "roce", "--retransmit", "selective", "--loss", "1", "--rto", "100us"]
    r = dl("simulate", *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _first_lossy(p):
    return next(x for x in p["links_detail"] if x["lost"])


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda p: p.update(lost=3000), "packet.lost: expected the links' lost packets"),
        (lambda p: p.update(timeouts=-2), "packet.timeouts: expected a whole number from 0"),
        (lambda p: p.update(retransmitted_bytes=-25340), "retransmitted_bytes: expected a whole"),
        (lambda p: p.update(nacks=-1), "packet.nacks: expected a whole number from 0"),
        (lambda p: _first_lossy(p).update(wire_bytes=39), "lost: expected at most 0.975 (the link"),
    ],
)
def test_a_packet_rows_counts_are_whole_and_its_lost_packets_its_links(
    tmp_path, roce_lossy, edit, words
):
    """Twelfth attack L-H13: 3,000 (or 100,000) lost packets in a job of some 50 packets, and
    -2 timeouts, -25,340 retransmitted bytes, -1 NACKs were drawn, exit 0."""
    assert dl("report", str(roce_lossy), "--out", str(tmp_path / "a")).returncode == 0
    doc = json.loads((roce_lossy / "simulate.json").read_text())
    p = doc["results"][0]["packet"]
    assert p["lost"] > 0 and p["retransmitted_packets"] > 0  # the case itself
    edit(p)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(tmp_path / "e"), "--out", str(tmp_path / "o")))
    assert words in line, line


def test_a_roce_rows_retransmissions_are_shown(tmp_path, roce_lossy):
    """Twelfth attack L-M3: the counts table showed "-" (none) for a RoCE row's
    retransmissions; it reads retransmitted_packets where there is no TCP count."""
    p = json.loads((roce_lossy / "simulate.json").read_text())["results"][0]["packet"]
    assert dl("report", str(roce_lossy), "--out", str(tmp_path / "a")).returncode == 0
    md = (tmp_path / "a" / "report.md").read_text()
    row = next(x for x in md.splitlines() if x.startswith("| ring 64 KiB, roce"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == [str(p["drops"]), str(p["lost"]), str(p["retransmitted_packets"])]


# --- L-H18, L-H19, L-H20, L-H22, L-H23, L-H24 ---------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        (b'\xff\xfe{"step":0}\n', "line 41: expected a JSON object ("),
        (b"[" * 100000 + b"]" * 100000 + b"\n", "line 41: expected a JSON object ("),
    ],
)
def test_a_jsonl_line_not_utf8_or_nested_deep_is_one_line(tmp_path, text, words):
    """Twelfth attack L-H18: a byte that is not UTF-8, or a line nested 100,000 deep, in a
    run's metrics.jsonl was a UnicodeDecodeError or RecursionError traceback."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)  # 20 steps x 2 ranks: 40 lines
    with (run / "metrics.jsonl").open("ab") as fh:
        fh.write(text)
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert f"{run / 'metrics.jsonl'} {words}" in line, line


def _huge(path, size: int) -> None:
    """A sparse file of ``size`` bytes: nothing is written to the disk."""
    with path.open("wb") as fh:
        fh.truncate(size)


@pytest.mark.parametrize("name", ["summary.json", "config.json", "metrics.jsonl"])
def test_a_run_file_too_large_is_refused_before_it_is_read(tmp_path, name):
    """Twelfth attack L-H18, L-H19: a 4 GB summary.json, config.json or metrics.jsonl was
    read whole (a MemoryError traceback under a memory limit)."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    _huge(run / name, 4 << 30)
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert (
        str(run / name) in line
        and "expected at most" in line
        and "4294967296" in line.replace(",", "")
    )


@pytest.mark.parametrize(
    "command",
    [
        ["model", "fit", "{f}", "--out", "{d}/m.json"],
        ["report", "{f}", "--out", "{d}/rep"],
        ["model", "predict", "--model", "{f}", "--ranks", "2", "--bytes", "1K"],
        ["simulate", "--fabric", "flat:hosts=2", "--ranks", "2", "--cost-model", "{f}"],
    ],
)
def test_a_json_input_too_large_is_refused_before_it_is_read(tmp_path, command):
    """Twelfth attack L-H22: a 4 GB bench or model file was read whole by model fit, report,
    model predict and simulate --cost-model (MemoryError traceback)."""
    f = tmp_path / "big.json"
    _huge(f, 4 << 30)
    args = [a.format(f=f, d=tmp_path) for a in command]
    line = one_line(dl(*args))
    assert str(f) in line and "expected at most 268435456 bytes of JSON, got 4294967296" in line


@pytest.mark.parametrize(
    "edit, words",
    [
        (("time_s", "compute", -1.0), "time_s.compute: expected a finite number of seconds >= 0"),
        (("time_s", "compute", float("nan")), "time_s.compute: expected a finite number"),
        (("allreduce", "bytes_per_call", -88), "allreduce.bytes_per_call: expected a whole"),
        (("allreduce", "bytes_per_call", 1e300), "allreduce.bytes_per_call: expected a whole"),
        (("allreduce", "calls_per_step", -3), "allreduce.calls_per_step: expected a number"),
        (("time_s", "data", "x"), "time_s.data: expected a finite number of seconds"),
        ((None, "world_size", 0), "world_size: expected a number of ranks from 1"),
    ],
)
def test_model_predict_run_reads_the_summary_through_a_schema(tmp_path, edit, words):
    """Twelfth attack L-H20: ``model predict --run`` checked only that three values convert
    with float(): a compute of -1 s, NaN, a message of -88 B or 1e300 B, 0 ranks were
    predicted from (exit 0), a string was a TypeError traceback."""
    from dist_logreg.collective import costfile
    from tests.test_costmodel import one_segment_model

    model = tmp_path / "m.json"
    costfile.save(one_segment_model(), model)
    name = next(iter(one_segment_model()["algorithms"]))
    summary = {
        "world_size": 2,
        "steps_run": 40,
        "allreduce": {
            "algorithm": name,
            "bytes_per_call": 88,
            "calls_per_step": 1.0,
            "latency_s": {"p50": 1e-5},
        },
        "time_s": {"data": 0.001, "compute": 0.003, "update": 0.001},
        "comm_fraction": {"median": 0.5},
        "placement": {"host_of_rank": [0, 0]},
    }
    run = tmp_path / "run"
    run.mkdir()
    args = ["model", "predict", "--model", str(model), "--run", str(run), "--ranks", "4"]
    (run / "summary.json").write_text(json.dumps(summary))
    assert dl(*args).returncode == 0  # the genuine shape predicts
    block, key, value = edit
    (summary[block] if block else summary)[key] = value
    (run / "summary.json").write_text(json.dumps(summary))
    line = one_line(dl(*args))
    assert f"--run {run / 'summary.json'}: {words}" in line, line


@pytest.mark.parametrize(
    "option, key",
    [("--sweep", "ranks"), ("--workload", "params"), ("--config", "steps")],
)
def test_a_toml_file_nested_deep_is_one_line(tmp_path, option, key):
    """Twelfth attack L-H23: TOML nested 5,000 deep as --sweep, --workload or train
    --config was a RecursionError traceback (tomllib recurses per level)."""
    f = tmp_path / "deep.toml"
    f.write_text(f"{key} = " + "[" * 5000 + "]" * 5000 + "\n")
    if option == "--config":
        r = subprocess.run(
            [sys.executable, "-m", "dist_logreg", "train", "--config", str(f)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    else:
        r = dl("simulate", *SIM[1:], option, str(f))
    line = one_line(r)
    assert str(f) in line and "RecursionError" not in r.stderr, line


def test_a_neighbour_of_zero_bytes_is_refused(tmp_path):
    """Twelfth attack L-H24: ``--scenario neighbour:ranks=4,bytes=0`` ran (30 us "to move 0
    B") into a simulate.json that report refused; refused as --bytes 0 is."""
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4", "--ranks", "4"]
    args += ["--bytes", "1M", "--algorithm", "ring", "--exact"]
    line = one_line(dl("simulate", *args, "--scenario", "neighbour:ranks=4,bytes=0"))
    words = "bytes: expected 1 byte to 1T bytes per rank (as --bytes)"
    assert f"--scenario neighbour:ranks=4,bytes=0: {words}" in line


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_train_resume_with_a_fifo_as_the_runs_summary_ends(tmp_path, n):
    """Found beside the twelfth attack: ``train --resume`` read ``--out``'s summary.json (to
    see whether a completed run would be rewound) with a plain read: a FIFO there hung
    every rank. It is read as every JSON file is (a regular file, bounded), and the run is
    refused before training, as any non-file at a result's name is (M-H7)."""
    import os

    out = tmp_path / "run"
    run = ["--samples", "2000", "--features", "8", "--batch-size", "64"]
    run += ["--checkpoint-every", "10", "--out", str(out)]
    r = run_mpi(n, train_cmd(*run, "--steps", "20"), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    (out / "summary.json").unlink()
    os.mkfifo(out / "summary.json")
    r = run_mpi(n, train_cmd(*run, "--steps", "30", "--resume"), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]  # refused, as any non-file at a result's name
    assert f"--out {out}: summary.json: expected a regular file (or none), got a FIFO" in r.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_a_fifo_as_the_labels_of_a_sparse_npz_is_one_line(tmp_path, n):
    """Found beside the twelfth attack: ``--data X.npz,y.npy`` (a scipy sparse matrix and its
    labels) opened both without checking they are regular files: a FIFO hung every rank."""
    import os

    sp = pytest.importorskip("scipy.sparse")
    sp.save_npz(tmp_path / "X.npz", sp.random(100, 8, density=0.3, format="csr", random_state=0))
    os.mkfifo(tmp_path / "y.npy")
    data = f"{tmp_path / 'X.npz'},{tmp_path / 'y.npy'}"
    r = run_mpi(n, train_cmd("--data", data, "--steps", "5", "--batch-size", "10"), timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert f"data file {tmp_path / 'y.npy'}: expected a regular file, got a FIFO" in r.stderr


def _as_limit(gib: int):
    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))

    return limit


@pytest.mark.timeout(600)
def test_a_workload_at_its_bucket_bound_is_simulated_and_reported_in_bounded_memory(tmp_path):
    """Twelfth attack L-H25: a workload of 2,000,000 buckets (then within the bound) wrote a
    353 MB simulate.json whose report died of MemoryError after 3 min 40 s under 6 GB. The
    bound is now 262,144 buckets a step, and the report draws the step's timeline as one
    artist per collective (two per bucket took 1.8 GB at 65,536): both commands run at the
    bound under a 3 GiB address-space limit; one bucket more is refused."""
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"bucket-sizes": [8] * 262_144}))
    base = [sys.executable, "-m", "dist_logreg"]
    sim = [*base, "simulate", "--fabric", "flat:hosts=2", "--ranks", "2", "--algorithm", "ring"]
    r = subprocess.run(
        [*sim, "--workload", str(w), "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=280,
        preexec_fn=_as_limit(3),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(
        [*base, "report", str(tmp_path / "s"), "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
        timeout=280,
        preexec_fn=_as_limit(3),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "rep" / "1-sim-step.png").stat().st_size > 0
    w.write_text(json.dumps({"bucket-sizes": [8] * 262_145}))
    line = one_line(dl("simulate", *SIM[1:], "--workload", str(w)))
    assert "262,144" in line, line


@pytest.mark.parametrize(
    "collective, factor, want",
    [("allreduce", 2.0, 4 / 3), ("broadcast", 2.0, 1.0), ("allgather", 4 / 3, 2 / 3)],
)
def test_a_bench_records_busbw_factor_is_its_collectives(tmp_path, collective, factor, want):
    """Twelfth attack L-H26: the busbw check took the factor from the record itself, so an
    allreduce at 3 ranks given factor 2 (not 2(p-1)/p = 4/3), its busbw scaled to match,
    was drawn at 1.5 x the measured busbw. The genuine factor is accepted."""
    from tests.fake_runs import write_bench

    path = write_bench(tmp_path / "b.json", p=3)
    doc = json.loads(path.read_text())
    for rec in doc["records"]:
        rec["collective"], rec["busbw_factor"] = collective, want
        rec["busbw"] = rec["algbw"] * want
    path.write_text(json.dumps(doc))
    assert dl("report", str(path), "--out", str(tmp_path / "a")).returncode == 0
    rec = doc["records"][1]
    rec["busbw_factor"], rec["busbw"] = factor, rec["algbw"] * factor
    path.write_text(json.dumps(doc))
    line = one_line(dl("report", str(path), "--out", str(tmp_path / "o")))
    assert f"record 1: busbw_factor: expected {want:g} (nccl-tests' factor of {collective}" in line


def _bad_flow(doc):
    f = doc["maps"][0]["flows"][0]
    f.update(src=["h0"], dst={"a": 1}, sport="p", dport=-1, spine=3.5)


def _way(doc):
    link = doc["links"][0]
    name = next(iter(link["directions"]))
    link["directions"][name]["way"] = ["x"]


@pytest.mark.parametrize(
    "name, edit, words",
    [
        ("flows.json", _bad_flow, "maps[0].flows[0].src: expected a string, got ['h0']"),
        ("links.json", _way, "].way: expected up or down, got ['x']"),
        ("links.json", None, "expected JSON, got a file that is not (maximum recursion"),
    ],
)
def test_a_runs_cluster_files_are_read_through_their_schema(tmp_path, name, edit, words):
    """Twelfth attack L-H27: report read a run's links.json and flows.json with its own
    checks: nested deep, a RecursionError traceback; a flow of lists and objects with a
    spine of 3.5, or a direction's way ["x"], drawn as is. flows.json is read through the
    file kind's one schema, as simulate --flows reads it."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    assert dl("report", str(run), "--out", str(tmp_path / "a")).returncode == 0
    path = run / name
    if edit is None:
        path.write_text(
            '{"schema": "dist-logreg/links/1", "links": ' + "[" * 100000 + "]" * 100000 + "}"
        )
    else:
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert str(path) in line and words in line, line


def _summary(folder, calls: int, nbytes: int):
    folder.mkdir()
    doc = {
        "steps": 10,
        "world_size": 2,
        "allreduce": {"calls": 10 * calls, "bytes": float(10 * calls * nbytes)},
        "time_s": {"compute": 0.01},
    }
    (folder / "summary.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("scenarios", [None, '["none", "straggler:rank=0,factor=2"]'])
def test_a_sweep_over_runs_records_each_points_workload(tmp_path, scenarios):
    """Twelfth attack L-H28 (a genuine output refused): a sweep with a ``run`` axis kept the
    first run's workload in its step block, so report held the second run's rows (other
    buckets) to it. Each point's workload is recorded (``step.workloads``) and each row is
    held to its own: the genuine file is accepted, a row edited is not."""
    a, b = _summary(tmp_path / "a", 1, 88), _summary(tmp_path / "b", 2, 40)
    grid = tmp_path / "g.toml"
    text = f'fabric = "flat:hosts=4"\nrun = ["{a}", "{b}"]\nranks = [2, 4]\nalgorithm = "ring"\n'
    grid.write_text(text + (f"scenario = {scenarios}\n" if scenarios else ""))
    assert dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s")).returncode == 0
    doc = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert {w["buckets"] for w in doc["step"]["workloads"]} == {1, 2}
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0
    row = next(r for r in doc["step"]["rows"] if r["run"] == str(b))
    assert row["buckets"] == 2
    row["buckets"] = 1  # the first run's count
    (tmp_path / "s" / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "o")))
    assert ".buckets: expected 2" in line, line


def _packet_faster(doc: dict, k: float) -> None:
    """Every time of a packet row k times shorter, and what follows from them with it (as a
    forger keeps a file agreeing with itself)."""
    from tests.test_trust_recheck import _faster

    _faster(k)(doc)  # the rows' times, busbw and algbw
    for r in doc["results"]:
        for c in r.get("links", {}).values():
            c["max_util"] = min(1.0, c["max_util"] * k)
            c["mean_util"] = min(1.0, c["mean_util"] * k)
        p = r["packet"]
        for key in ("message_start_s", "message_done_s"):
            p[key] = [t / k if t >= 0 else t for t in p[key]]
        p["queue"]["t_s"] = [t / k for t in p["queue"]["t_s"]]
        for v in (p.get("rates") or {}).values():
            v["t_s"] = [t / k for t in v["t_s"]]
            v["bytes_per_s"] = [b * k for b in v["bytes_per_s"]]
        for x in p.get("links_detail", []):
            x["paused_s"] = x.get("paused_s", 0.0) / k
        if "flow_phase_sync_s" in p:
            p["flow_phase_sync_s"] /= k


def test_a_packet_row_with_link_delays_is_held_to_them(tmp_path):
    """Twelfth attack L-H29: a packet row naming any --link-delay had every hop dropped from
    its floors, so a genuine run told "host-up=1us, host-down=1us" (the fabric's own 1 us)
    was accepted 1.5 x faster. The floors now use the named delays."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2", "--ranks", "4"]
    args += ["--bytes", "64K", "--algorithm", "ring", "--engine", "packet", "--transport", "roce"]
    args += ["--link-delay", "host-up=1us", "--link-delay", "host-down=1us"]
    out = tmp_path / "p"
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0  # genuine
    doc = json.loads((out / "simulate.json").read_text())
    assert doc["results"][0]["packet"]["options"]["link_delay"]  # the case itself
    _packet_faster(doc, 1.5)
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    assert "results[0]" in line and "expected at least" in line, line


@pytest.mark.parametrize(
    "job, key, value, words",
    [
        ("first", "ranks", 4000, "jobs.first.ranks: expected the row's ranks 4"),
        ("first", "bytes", 65536000, "jobs.first.bytes: expected the row's bytes 65536"),
        ("first", "hosts", 4000, "jobs.first.hosts: expected 1 to the fabric's 8 hosts"),
        ("neighbour", "hosts", 4000, "jobs.neighbour.hosts: expected 1 to the fabric's 8 hosts"),
    ],
)
def test_a_neighbour_rows_first_job_is_the_row(tmp_path, job, key, value, words):
    """Twelfth attack L-H31: a neighbour row's first job of 4000 ranks on 4000 hosts of an
    8-host fabric, its bytes x 1000, was accepted and its ranks shown."""
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4", "--ranks", "4"]
    args += ["--bytes", "64K", "--exact", "--scenario", "neighbour:ranks=4,algorithm=ring,bytes=1M"]
    out = tmp_path / "n"
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    for r in doc["results"]:
        r["jobs"][job][key] = value
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    assert words in line, line


def test_flows_on_a_fabric_of_two_planes_is_one_line(tmp_path):
    """Twelfth attack L-H30: ``--flows`` on a two-plane rail fabric put a pinned spine past
    the fabric's links (ValueError traceback); one plane runs as before."""
    flows = tmp_path / "f.json"
    flow = {"src": "h0", "dst": "h2", "bytes": 1000, "spine": "s1"}
    flows.write_text(
        json.dumps({"schema": "dist-logreg/flows/1", "hash": "l4", "maps": [{"flows": [flow]}]})
    )
    rail = "rail:hosts-per-unit=2,units=2,rails=1,gpus-per-host=1,spines=2,nic-ports=2,dual-tor=yes"
    args = ["--flows", str(flows), "--ranks", "4", "--bytes", "1M"]
    args += ["--algorithm", "recursive-doubling"]
    assert dl("simulate", "--fabric", rail, *args).returncode == 0
    line = one_line(dl("simulate", "--fabric", rail + ",planes=2", *args))
    assert f"--flows {flows}: a flow map pins each flow to a spine of a one-plane" in line, line
    assert "planes=2" in line


def _paused_link(p):
    return next(x for x in p["links_detail"] if x["pauses"])


def _many_pauses(p):
    """200 frames on one paused link (and in the row's total): 790 KB at xoff - xon = 10 KiB
    make at most 2 x (2 + 77) = 158."""
    x = _paused_link(p)
    p["pause_frames"] += 200 - x["pauses"]
    x["pauses"] = 200


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda p: p.update(pause_frames=16000), "pause_frames: expected the links' PAUSE"),
        (lambda p: _paused_link(p).update(pauses=-2), ".pauses: expected a whole number from 0"),
        (_many_pauses, ".pauses: expected at most 158.463 (a PAUSE and a RESUME for every"),
    ],
)
def test_a_packet_rows_pauses_are_its_links_and_their_bytes(tmp_path, edit, words):
    """Twelfth attack L-H13 (PFC): a genuine run with 16 PAUSEs was drawn with 16,000, or
    with -2 on a link."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--fabric", "leaf-spine:leaves=2,spines=1,hosts-per-leaf=4,oversubscription=4"]
    args += ["--ranks", "8", "--bytes", "256K", "--algorithm", "recursive-doubling"]
    args += ["--engine", "packet", "--transport", "roce", "--pfc", "on"]
    args += ["--pfc-xoff", "20K", "--pfc-xon", "10K", "--cc", "none"]
    out = tmp_path / "p"
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    p = doc["results"][0]["packet"]
    assert p["pause_frames"] > 0 and _paused_link(p)["wire_bytes"] == 790848  # the case
    edit(p)
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    assert words in line, line


@pytest.mark.parametrize("block, value", [("results", 1000.0), ("step", 0.001), ("results", 1.0)])
def test_a_sweeps_slowdown_is_its_time_over_its_twins(tmp_path, block, value):
    """Twelfth attack L-M11: a sweep's ``slowdown`` (a row's time over the same row's with
    scenario none) was not checked: 0, 0.001 and 1000 were drawn."""
    grid = tmp_path / "g.toml"
    grid.write_text(
        'fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"\nranks = [4, 8]\n'
        'algorithm = "ring"\nworkload = "params=1e6,buckets=1M,forward=1ms,backward=2ms"\n'
        'scenario = ["none", "straggler:rank=0,factor=2", "degrade:class=leaf-up,factor=4"]\n'
    )
    out = tmp_path / "s"
    assert dl("simulate", "--sweep", str(grid), "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    rows = doc["results"] if block == "results" else doc["step"]["rows"]
    rows[-1]["slowdown"] = value
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    where = "results" if block == "results" else "step.rows"
    assert f"{where}[{len(rows) - 1}].slowdown: expected its" in line, line


def test_report_refuses_a_run_given_twice(tmp_path):
    """Twelfth attack L-M7: ``report t1 t1 t1/summary.json`` drew one run compared with
    itself as three (model fit refuses a bench file given twice)."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "t1", p=2, late_rank=1)
    line = one_line(dl("report", str(run), str(run / "summary.json"), "--out", str(tmp_path / "o")))
    assert f"RUN {run / 'summary.json'}: given twice (also as {run})" in line, line
    assert not (tmp_path / "o").exists()


def test_simulate_run_names_the_summarys_keys_when_compute_is_too_long(tmp_path):
    """Twelfth attack L-M8: a summary whose compute, strong scaled, passes 11.6 days a pass
    was refused naming a --workload key the user never gave."""
    run = tmp_path / "s4"
    run.mkdir()
    summary = {
        "steps": 1,
        "world_size": 10**6,
        "allreduce": {"calls": 1, "bytes": 88.0},
        "time_s": {"compute": 1e9},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    args = ["--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2", "--algorithm", "ring"]
    line = one_line(dl("simulate", *args))
    assert f"--run {run}/summary.json: time_s.compute / steps / 2 x world_size / ranks" in line
    assert "--workload" not in line, line


def test_a_list_with_an_empty_item_is_refused():
    """Twelfth attack L-L3: ``--bytes 1,,2`` was read as ``1,2``."""
    r = subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *SIM[1:3], "--ranks", "4"]
        + ["--bytes", "1,,2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "expected a comma-separated list with no empty item" in r.stderr


def test_a_sweeps_partial_file_has_the_results_mode(interrupted):
    """Twelfth attack L-L7: a sweep's partial file was mode 0600 (a colleague resuming a
    shared folder could not read it); it is written as every result is (umask applied)."""
    import os

    _, out = interrupted
    mask = os.umask(0)
    os.umask(mask)
    assert (out / PARTIAL).stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_predict_without_data_takes_every_row_of_a_sharded_run(tmp_path, n):
    """Found beside the twelfth attack: ``predict --model DIR`` (no --data) of a run trained
    with ``--sampling sharded`` built each rank's shard and then took its slice of it again:
    a 1000-row run was predicted as 500 rows at 2 ranks, with exit 0. Every row, at 1, 2
    and 3 ranks."""
    out = tmp_path / "run"
    run = ["--samples", "1000", "--features", "8", "--batch-size", "64", "--steps", "5"]
    r = run_mpi(2, train_cmd(*run, "--sampling", "sharded", "--out", str(out)), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    predict = [
        str(train_cmd()[0]),
        "predict",
        "--model",
        str(out),
        "--out",
        str(tmp_path / "p.csv"),
    ]
    r = run_mpi(n, predict, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "predict: 1000 rows" in r.stdout + r.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1 + 1000


@pytest.mark.parametrize(
    "other, key",
    [
        (["--fabric", "flat:hosts=4,rate=800G", "--ranks", "2"], "fabric.spec"),
        (["--fabric", "flat:hosts=4", "--ranks", "3"], "results[0].ranks"),
    ],
)
def test_resume_refuses_a_point_that_is_not_the_grids(interrupted, tmp_path, other, key):
    """Thirteenth attack M-H3: a finished point of another job (an 800G fabric's, a point of
    3 ranks) spliced into a partial file was taken as the grid's point 0: a sweep of
    flat:hosts=4 wrote a 97.96 GB/s busbw row (50 GB/s host links), exit 0."""
    grid, out = interrupted
    r = dl(
        "simulate", *other, "--algorithm", "ring", "--bytes", "64K", "--out", str(tmp_path / "x")
    )
    assert r.returncode == 0, r.stderr
    alien = json.loads((tmp_path / "x" / "simulate.json").read_text())
    for row in alien["results"]:
        row["point"] = 0
    alien.pop("wall_s", None)
    doc = json.loads((out / PARTIAL).read_text())
    doc["done"]["0"] = alien
    (out / PARTIAL).write_text(json.dumps(doc))
    line = one_line(dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume"))
    assert f"done.0: {key}: expected grid point 0 of {grid}" in line, line
    assert not (out / "simulate.json").exists()


# --- the thirteenth attack: a training run's numbers held to each other (M-H1, M-H2) -------


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A genuine 2-rank run: 40 steps of one 88 B allreduce."""
    out = tmp_path_factory.mktemp("t") / "t1"
    run = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "40"]
    r = run_mpi(2, train_cmd(*run, "--checkpoint-every", "10", "--out", str(out)), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _copy(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "copy")


def _summary_edit(tmp_path, run, edit):
    path = run / "summary.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return one_line(dl("report", str(run), "--out", str(tmp_path / "o")))


def _latency_near_its_least(d):
    """The latency p50 moved down beside an unchanged busbw (still above its least)."""
    lat = d["allreduce"]["latency_s"]
    assert lat["p50"] > 2 * lat["min"]  # the case: the run's calls spread
    lat["p50"] = 1.05 * lat["min"]


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d["allreduce"]["busbw_GBps"].update(p50=4.0), "busbw_GBps.p50: expected"),
        (_latency_near_its_least, "busbw_GBps.p50: expected"),
        (lambda d: d["comm_fraction"].update(median=0.001), "comm_fraction.median: expected"),
        (lambda d: d.update(final_loss=0.001), "final_loss: expected at least"),
    ],
)
def test_a_runs_headline_numbers_are_held_to_each_other(tmp_path, train_run, edit, words):
    """Thirteenth attack M-H1: a busbw 216 x what its 88 B calls give at their latency, a
    latency p50 moved beside its busbw, a comm fraction of 0.1 % for a run 58 % in its
    allreduce, a log-loss of 0.001 at 71.9 % accuracy were drawn, exit 0."""
    assert dl("report", str(train_run), "--out", str(tmp_path / "a")).returncode == 0
    line = _summary_edit(tmp_path, _copy(train_run, tmp_path), edit)
    assert words in line, line


def _jsonl_edit(run, name: str, key: str, value) -> None:
    path = run / name
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[3][key] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    "name, key, value, words",
    [
        ("steps.jsonl", "batch_loss", -5, "batch_loss: expected a finite log-loss >= 0"),
        ("steps.jsonl", "compute_s", 1e5, "compute_s: expected at most"),
        ("steps.jsonl", "step", 99999, "step: expected below the run's 40 steps"),
        ("metrics.jsonl", "seconds", 0, "seconds: expected a call of at least 1 ns"),
        ("metrics.jsonl", "seconds", 1e-12, "seconds: expected a call of at least 1 ns"),
        ("metrics.jsonl", "bytes", 1e18, "bytes: expected at most the 3520 B the run sent"),
    ],
)
def test_a_runs_rows_are_held_to_its_summary(tmp_path, train_run, name, key, value, words):
    """Thirteenth attack M-H2: a batch loss of -5, a call of 0 s or 1 ps, 1 EB in one call of
    an 88 B run, a 28-hour step of a 17 ms run, a step 99999 of a 40-step run were drawn."""
    run = _copy(train_run, tmp_path)
    _jsonl_edit(run, name, key, value)
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert f"{run / name}" in line and words in line, line


@pytest.mark.timeout(400)
def test_report_takes_a_run_resumed_at_another_world_size(tmp_path, train_run):
    """Found beside M-H2 (a genuine output refused): a 2-rank run resumed at 1 rank keeps
    the first attempt's rows of rank 1, which report refused as a rank outside the world."""
    run = _copy(train_run, tmp_path)
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "50"]
    r = run_mpi(1, train_cmd(*args, "--checkpoint-every", "10", "--out", str(run), "--resume"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["world_size"] == 1
    r = dl("report", str(run), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", WORLD_SIZES)
@pytest.mark.parametrize("name", ["metrics.jsonl", "steps.jsonl", "partial"])
def test_train_resume_does_not_append_through_a_link(tmp_path, train_run, n, name):
    """Thirteenth attack M-H7: ``train --resume`` appended its lines to the file a symbolic
    link at ``--out/metrics.jsonl`` (or ``steps.jsonl``) named, outside ``--out``, and the
    ranks' records went into the folder a link at ``partial`` named. Refused before
    training, what the link names untouched."""
    import shutil

    run = _copy(train_run, tmp_path)
    victim = tmp_path / "victim"
    if name == "partial":
        victim.mkdir()
        shutil.rmtree(run / name, ignore_errors=True)
    else:
        victim.write_text("ORIG\n")
        (run / name).unlink()
    (run / name).symlink_to(victim)
    args = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "50"]
    r = run_mpi(n, train_cmd(*args, "--checkpoint-every", "10", "--out", str(run), "--resume"))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    kind = "a folder" if name == "partial" else "a regular file"
    assert f"--out {run}: {name}: expected {kind} (or none), got a symbolic link" in r.stderr
    if name == "partial":
        assert list(victim.iterdir()) == []
    else:
        assert victim.read_text() == "ORIG\n"


SWALLOWED = """\
import os, signal, sys, weakref
sys.argv = ["dist-logreg", "report", *sys.argv[1:]]
from dist_logreg.cli import entry
import dist_logreg.report.build as build

real = build.build


class Dies:
    def __del__(self):  # a SIGTERM lands here, as in a weakref callback of matplotlib's
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass


def draw(*a, **k):
    Dies()
    return real(*a, **k)


build.build = draw
entry()
"""


def test_a_sigterm_swallowed_in_a_del_still_stops_report(tmp_path):
    """Thirteenth attack M-H6: a SIGTERM that landed in a ``__del__`` or weakref callback
    while report drew was printed as "Exception ignored" and lost: the report finished,
    exit 0. Now it stops as any SIGTERM does: one line, 143, nothing in --out."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-c", SWALLOWED, str(run), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 143, (r.returncode, r.stderr[-2000:])
    assert "interrupted (SIGTERM)" in r.stderr
    assert not out.exists()
    # and only that line: "Exception ignored in ... Traceback ... KeyboardInterrupt: SIGTERM"
    # came before it (fourteenth attack, P-H4)
    assert r.stderr.strip().splitlines() == ["dist-logreg: interrupted (SIGTERM); nothing done"]


def _wire_x40(p):
    for x in p["links_detail"]:
        x["wire_bytes"] *= 40


def _peak_90k(p):
    port = next(x for x in p["links_detail"] if x["link"].startswith("leaf"))
    port["peak_queue_bytes"] = p["peak_queue_bytes"] = 90000


@pytest.mark.parametrize(
    "edit, words",
    [
        (_wire_x40, "wire_bytes: expected at most"),
        (_peak_90k, "peak_queue_bytes: expected at most 56912 B (a switch port's own bound"),
    ],
)
def test_a_packet_rows_links_are_held_to_their_rate_and_share(tmp_path, edit, words):
    """Thirteenth attack M-H4: a peak queue of 90,000 B on ports whose share of a 60 KiB
    buffer (alpha 0.5) is 20 KiB, and every link's wire bytes x 40 (63 GB/s on a 50 GB/s
    link), were drawn, exit 0."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--engine", "packet", "--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "64K"]
    args += ["--algorithm", "ring", "--queue", "20K", "--buffer", "60K", "--buffer-alpha", "0.5"]
    out = tmp_path / "p"
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    edit(doc["results"][0]["packet"])
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    assert words in line, line


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m[0].__setitem__(0, 5000), "bytes[0][0]: expected 0 (a rank sends nothing"),
        (lambda m: m[0].__setitem__(1, 10**15), "bytes[0]: expected at most 60000 B sent by"),
    ],
)
def test_a_runs_traffic_is_held_to_what_it_allreduced(tmp_path, edit, words):
    """Thirteenth attack M-H5: 1 PB from rank 0 to rank 1 in a run of 136 B calls, and a
    rank sending 5000 B to itself, were drawn. The fake run: a 2-rank ring of 20 steps,
    1000 B a step each way; its summary says 20,000 B allreduced (log2 2 + 2 = 3 x that)."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    s = json.loads((run / "summary.json").read_text())
    s["allreduce"]["bytes"] = 20000
    (run / "summary.json").write_text(json.dumps(s))
    assert dl("report", str(run), "--out", str(tmp_path / "a")).returncode == 0
    t = json.loads((run / "traffic.json").read_text())
    edit(t["bytes"])
    (run / "traffic.json").write_text(json.dumps(t))
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert f"{run / 'traffic.json'}: {words}" in line, line


def test_an_allreduce_rows_busbw_is_its_own_factors(tmp_path):
    """Thirteenth attack M-M2: an allreduce row's busbw halved passed as a reduce-scatter's
    ((p-1)/p); each row is held to its own collective's factor."""
    out = tmp_path / "s"
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1M", "--algorithm", "ring"]
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    doc["results"][0]["busbw"] /= 2
    (out / "simulate.json").write_text(json.dumps(doc))
    line = one_line(dl("report", str(out), "--out", str(tmp_path / "o")))
    assert "results[0].busbw: expected bytes / time_s x its collective's factor" in line, line


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,oversubscription=٣"],
            "oversubscription: expected a positive number",
        ),
        (
            ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,oversubscription=1_000"],
            "oversubscription: expected a positive number",
        ),
        (
            ["--fabric", "flat:hosts=4", "--scenario", "background:fraction=٠.٥"],
            "fraction: expected a number",
        ),
        (["--fabric", "flat:hosts=4", "--seeds", "٣"], "expected a whole number >= 1"),
        (
            ["--fabric", "flat:hosts=4", "--placement-seed", "٣"],
            "expected a whole number from 0 to",
        ),
    ],
)
def test_numbers_are_plain_ascii(args, words):
    """Thirteenth attack M-M4: Python's int() and float() take Arabic-Indic digits and
    underscores, and several options did (``oversubscription=٣``, ``1_000``, ``--seeds ٣``)."""
    cmd = [sys.executable, "-m", "dist_logreg", "simulate", *args, "--ranks", "2", "--bytes", "1K"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and words in r.stderr, r.stderr[-1000:]
