"""Defects of issue 29's fifteenth attack (Q-...), each a test that failed before its fix."""

from __future__ import annotations

import json

import pytest

from tests.test_model_cli import dl


def _run(tmp_path, **summary):
    (tmp_path / "t").mkdir()
    base = {"steps": 60, "world_size": 2, "time_s": {"compute": 20 * 4e-5}}
    base["allreduce"] = {"calls": 20, "bytes": 20 * 88, "algorithm": "ring"}
    (tmp_path / "t" / "summary.json").write_text(json.dumps({**base, **summary}))
    return tmp_path / "t"


def test_a_resumed_runs_calls_and_compute_are_over_the_steps_it_ran(tmp_path):
    """Q-H1: a run resumed at step 40 of 60 (its summary counts this attempt's 20 steps)
    was "0.333333 allreduce(s) of 88 B per step" with a third of its compute."""
    run = _run(tmp_path, steps_run=20, resumed_from_step=40)
    args = ["--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2", "--algorithm", "ring"]
    r = dl("simulate", *args, "--out", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    assert "1 allreduce(s) of 88 B per step" in r.stdout
    doc = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert doc["run"]["calls_per_step"] == 1 and doc["run"]["compute_s_per_step"] == 4e-5
    assert doc["step"]["rows"][0]["compute_s"] == pytest.approx(4e-5)  # the two tables agree
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0


@pytest.mark.parametrize("summary", [{"steps_run": 40}, {"steps": 10**12}])
def test_calls_that_are_not_whole_a_step_are_refused(tmp_path, summary):
    """Q-H1: 20 calls over 40 steps, or 40 over 10^12 ("step 0.00 ns"), were taken."""
    run = _run(tmp_path, **summary)
    r = dl("simulate", "--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2")
    assert r.returncode == 2
    assert "allreduce.calls / steps_run: expected a whole number of allreduce calls a step" in (
        r.stderr
    )


def _peak_zero(p):
    p["peak_queue_bytes"] = 0


def _peak_half(p):
    p["peak_queue_bytes"] //= 2


def _nic_below(p):
    p["peak_host_nic_bytes"] = 0


@pytest.mark.parametrize(
    "edit, key",
    [
        (_peak_zero, "packet.peak_queue_bytes: expected"),
        (_peak_half, "packet.peak_queue_bytes: expected"),
        (_nic_below, "packet.links_detail[0].peak_queue_bytes: expected at most"),
    ],
)
def test_a_packet_rows_peak_is_its_busiest_ports(tmp_path, edit, key):
    """Q-H2: a row's peak queue of 0 B (or half) was tabled beside its own switch ports'
    peaks of 9000 B in links_detail and a queue plot of 5944 B on one of them, exit 0."""
    from tests.test_trust_packet import HAVE_NS3

    if not HAVE_NS3:
        pytest.skip("ns-3 not installed: pip install -e '.[packet]'")
    args = ["--engine", "packet", "--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"]
    args += ["--ranks", "4", "--bytes", "256K", "--algorithm", "rabenseifner"]
    out = tmp_path / "p"
    assert dl("simulate", *args, "--out", str(out)).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    pk = doc["results"][0]["packet"]
    assert pk["peak_queue_bytes"] > 0 and pk["peak_host_nic_bytes"] > 0  # the case itself
    assert dl("report", str(out), "--out", str(tmp_path / "a")).returncode == 0
    edit(pk)
    (out / "simulate.json").write_text(json.dumps(doc))
    r = dl("report", str(out), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and f"results[0].{key}" in r.stderr, r.stderr[-1000:]


@pytest.mark.parametrize("value", [float("nan"), -1.0, "abc"])
def test_every_workload_of_a_sweep_over_runs_is_held_to_the_schema(tmp_path, value):
    """Q-M1: ``step.workloads[0].forward_s`` NaN, -1 or a string was accepted (only a
    workload some row's bound needed was read)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _run(tmp_path / name, steps_run=20)
    grid = tmp_path / "g.toml"
    runs = f'["{tmp_path / "a" / "t"}", "{tmp_path / "b" / "t"}"]'
    grid.write_text(f'fabric = "flat:hosts=8"\nranks = [2, 4]\nrun = {runs}\nalgorithm = "ring"\n')
    out = tmp_path / "s"
    assert dl("simulate", "--sweep", str(grid), "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "r0")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    doc["step"]["workloads"][0]["forward_s"] = value
    (out / "simulate.json").write_text(json.dumps(doc))
    r = dl("report", str(out), "--out", str(tmp_path / "r1"))
    assert r.returncode == 2 and "step.workloads[0].forward_s: expected" in r.stderr


@pytest.mark.parametrize(
    "spelled",
    [
        ["none", "Straggler:Factor=2"],
        ["NONE", "straggler:factor=2"],
        ["none", " straggler:factor=2"],
    ],
)
def test_a_sweeps_scenarios_are_written_as_simulate_spells_them(tmp_path, spelled):
    """Q-H3: a sweep over ``NONE`` or ``Straggler:Factor=2`` (which simulate reads) wrote
    those spellings into its rows, and report refused its own file."""
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'fabric = "flat:hosts=4"\nranks = [4]\nscenario = {json.dumps(spelled)}\n'
        'workload = "params=1K,forward=1ms"\nalgorithm = "ring"\n'
    )
    assert dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s")).returncode == 0
    rows = json.loads((tmp_path / "s" / "simulate.json").read_text())["results"]
    assert [r["scenario"] for r in rows] == ["none", "straggler:factor=2"]
    assert all("slowdown" in r for r in rows)  # "none" is the twin the others are held to
    r = dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("where", ["grid", "command line"])
def test_resume_refuses_when_a_file_the_grid_names_changed(tmp_path, monkeypatch, where):
    """Q-H4: a fabric file edited between the interrupt and --resume: the rows of two fabrics
    under one fabric block (400G, then 10G links), exit 0."""
    from tests.helpers import interrupt_sweep

    fab = tmp_path / "fab.json"
    fab.write_text('{"topology": "flat", "hosts": 4}\n')
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    text = 'ranks = 4\nalgorithm = "ring"\nbytes = ["64K", "1M"]\n'
    grid.write_text(text + (f'fabric = "{fab}"\n' if where == "grid" else ""))
    extra = ["--fabric", str(fab)] if where != "grid" else []
    interrupt_sweep(monkeypatch, ["--sweep", str(grid), "--out", str(out), *extra], 1)
    fab.write_text('{"topology": "flat", "hosts": 4, "rate": "10G"}\n')
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume", *extra)
    assert r.returncode == 2 and "a file it names changed since" in r.stderr, r.stderr
    assert not (out / "simulate.json").exists()


def _sweep_edit(d, where, value):
    *path, last = where
    for k in path:
        d = d[k]
    d[last] = value


@pytest.mark.parametrize(
    "where, value, key",
    [
        (("fabrics", 0, "params", "mtu", "value"), -9000, "fabrics[0]: expected the file's fabric"),
        (("sweep", "points"), -32, "sweep.points: expected"),
        (("sweep", "mpi_ranks"), 0.5, "sweep.mpi_ranks: expected"),
        (("cost_models", 0, "gamma_s_per_byte", "ring"), -2e-11, "cost_models[0].gamma_s_per_byte"),
        (("cost_models", 1, "alpha_s", "ring"), "fast", "cost_models[1].alpha_s.ring"),
    ],
)
def test_a_sweeps_own_blocks_are_bounded(tmp_path, where, value, key):
    """Q-M5: a sweep's ``fabrics[0]`` (beside its ``fabric``), ``sweep`` and ``cost_models``
    blocks took values no run writes (an MTU of -9000, -32 points, a negative gamma that
    lowered the floor the rows are held to)."""
    from tests.test_simulate_attack import _model

    paths = []
    for name, alpha in (("a", 3e-6), ("b", 30e-6)):
        (tmp_path / name).mkdir()
        paths.append(str(_model(tmp_path / name, {"ring": alpha})))
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'fabric = "flat:hosts=4"\ncost-model = {json.dumps(paths)}\nranks = 4\n'
        'algorithm = "ring"\nbytes = "1K"\n'
    )
    out = tmp_path / "s"
    assert dl("simulate", "--sweep", str(grid), "--out", str(out)).returncode == 0
    assert dl("report", str(out), "--out", str(tmp_path / "r0")).returncode == 0
    doc = json.loads((out / "simulate.json").read_text())
    _sweep_edit(doc, where, value)
    (out / "simulate.json").write_text(json.dumps(doc))
    r = dl("report", str(out), "--out", str(tmp_path / "r1"))
    assert r.returncode == 2 and key in r.stderr, r.stderr


def test_a_sweeps_report_names_each_rows_point(tmp_path):
    """Q-M6, P-M6: a sweep's rows of two workloads were tabled under the first's heading,
    with no column saying which workload, scenario or fabric a row was."""
    w = ["params=1M,forward=1ms,backward=2ms", "params=4M,buckets=1M,forward=1ms,backward=2ms"]
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'fabric = ["flat:hosts=8", "fat-tree:k=4"]\nranks = 8\nalgorithm = "ring"\n'
        f'workload = {json.dumps(w)}\nscenario = ["none", "straggler:factor=2"]\n'
    )
    assert dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s")).returncode == 0
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| fabric | workload | scenario | algorithm | ranks | step |" in md
    assert "| fabric | workload | scenario | algorithm | ranks | bytes |" in md
    step = md.split("### Training step")[1].split("###")[0]
    assert f"Training step: {w[0]}" not in md and all(x in step for x in w)
    assert step.count("| fat-tree:k=4 |") == 4 and step.count("| flat:hosts=8 |") == 4


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_clusters_state_that_is_no_file_is_one_line(tmp_path, kind):
    """Q-H5: ``--fabric cluster:NAME`` read state.json whole, unchecked: a FIFO hung, a link
    to /dev/zero was a MemoryError traceback."""
    import os
    import subprocess
    import sys

    (tmp_path / "c1").mkdir()
    state = tmp_path / "c1" / "state.json"
    os.mkfifo(state) if kind == "fifo" else state.symlink_to("/dev/zero")
    env = {**os.environ, "DIST_LOGREG_CLUSTER_STATE": str(tmp_path)}
    args = ["simulate", "--fabric", "cluster:c1", "--ranks", "2", "--bytes", "1K"]
    r = subprocess.run(
        [sys.executable, "-m", "dist_logreg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2, r.stderr[-1000:]
    assert f"{state}: expected a regular file" in r.stderr and "Traceback" not in r.stderr


def test_a_sharded_run_is_not_simulated_as_allreduces(tmp_path):
    """Q-H8: a ``--sync sharded`` run (a reduce-scatter and an allgather a step, counted as
    two calls) was simulated and predicted as two allreduces a step: twice its comm."""
    from dist_logreg.cli.simulate_train import read_summary
    from dist_logreg.errors import UsageError

    run = _run(tmp_path, steps_run=20, sync={"mode": "sharded"})
    r = dl("simulate", "--run", str(run), "--fabric", "flat:hosts=4", "--ranks", "2")
    assert r.returncode == 2 and "sync.mode: sharded (a reduce-scatter and an allgather" in (
        r.stderr
    )
    summary = json.loads((run / "summary.json").read_text())
    summary.update(steps_run=20, allreduce={**summary["allreduce"], "bytes_per_call": 88})
    summary["allreduce"]["latency_s"] = {"p50": 1e-5}
    summary["time_s"] = {"data": 1e-4, "compute": 1e-4, "update": 1e-5}
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UsageError, match="sync.mode: sharded"):
        read_summary(str(run))


def test_the_rails_benchmarks_free_scale_up_is_a_fabric_simulate_takes():
    """Q-M9: ``scaleup-rate=1000TB/s`` (docs/rails.md, benchmarks/bench_rails.py) was over
    the spec's bound of 1e14 B/s: the benchmark behind the rails table could not run."""
    import re
    from pathlib import Path

    from dist_logreg.sim.fabric import parse_fabric

    text = (Path(__file__).parent.parent / "benchmarks" / "bench_rails.py").read_text()
    free = re.search(r'FREE_SCALEUP = "([^"]+)"', text).group(1)
    fab = parse_fabric(f"rail:hosts-per-unit=4,units=2,spines=2,{free}")
    assert fab.values["scaleup-rate"] == 100e12
    assert free in (Path(__file__).parent.parent / "docs" / "rails.md").read_text()


@pytest.mark.parametrize("kind", ["fifo", "dangling", "device"])
def test_a_run_whose_summary_is_no_file_is_named(tmp_path, kind):
    """Q-M8: "a directory without either" for a summary.json that is a FIFO, a dangling link
    or a link to /dev/zero: the file was never named."""
    import os

    run = tmp_path / "r"
    run.mkdir()
    s = run / "summary.json"
    {"fifo": lambda: os.mkfifo(s), "dangling": lambda: s.symlink_to(tmp_path / "gone")}.get(
        kind, lambda: s.symlink_to("/dev/zero")
    )()
    r = dl("report", str(run), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and f"{s}:" in r.stderr and "without either" not in r.stderr


def test_the_console_tables_columns_stay_apart_at_any_length():
    """Q-L1: ``1 TiB1099511627776.00 s1099511627776.00 s    1.00 B/s...``"""
    from dist_logreg.sim.text import lines

    args = ["--fabric", "flat:hosts=2,rate=16bit", "--ranks", "2", "--bytes", "500G"]
    r = dl("simulate", *args, "--algorithm", "ring", "--json")
    doc = json.loads(r.stdout)
    row = next(x for x in lines(doc) if x.startswith("ring"))
    assert "500 GiB 268435456000.00 s 268435456000.00 s " in row
