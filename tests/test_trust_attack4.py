"""``dist-logreg report`` and ``simulate --flows``, fourth attack on issue 29: a scenario
sweep simulate wrote is reported, a spine the fabric lacks is refused, a bench JSON's busbw
above its recorded link rate is refused."""

import json

import pytest

from tests.test_model_cli import dl
from tests.test_trust_report import one_line


def test_report_reads_a_sweep_that_varies_scenario(tmp_path):
    # N-M13: a sweep row carries the scenario's slowdown, not a neighbour's jobs
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'fabric = "flat:hosts=4"\nranks = 4\nbytes = "64K"\nalgorithm = "ring"\n'
        'scenario = ["none", "background:fraction=0.5"]\n'
    )
    r = dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "sw"))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "sw" / "simulate.json").read_text())["results"]
    assert any("slowdown" in row and "jobs" not in row for row in rows)
    r = dl("report", str(tmp_path / "sw"), "--out", str(tmp_path / "rout"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rout" / "report.md").is_file()


@pytest.mark.parametrize("spines", [["s99", "s99"], ["s7"], ["s2", "s3"]])
def test_flows_naming_only_spines_the_fabric_lacks_are_refused(tmp_path, spines):
    # N-H4: spines were numbered from the smallest named, so s99 alone was spine 0
    flows = [
        {"src": f"h{i}", "dst": f"h{i + 2}", "spine": s, "bytes": 1000}
        for i, s in enumerate(spines)
    ]
    f = tmp_path / "flows.json"
    f.write_text(json.dumps({"schema": "dist-logreg/flows/1", "maps": [{"flows": flows}]}))
    fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"
    args = ["--ranks", "4", "--bytes", "1M", "--algorithm", "ring", "--placement", "spread"]
    r = dl("simulate", "--fabric", fabric, *args, "--flows", str(f))
    line = one_line(r)
    assert "flows[0].spine" in line and repr(spines[0]) in line and "s0..s1" in line, line


def test_flows_naming_the_fabrics_spines_still_pin(tmp_path):
    flows = [{"src": "h0", "dst": "h2", "spine": "s1", "bytes": 1000}]
    f = tmp_path / "flows.json"
    f.write_text(json.dumps({"schema": "dist-logreg/flows/1", "maps": [{"flows": flows}]}))
    fabric = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"
    r = dl("simulate", "--fabric", fabric, "--ranks", "4", "--flows", str(f), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fabric"]["pinned_paths"] == 1


def _bench_two_hosts(tmp_path, speedup, cluster=None):
    """2 ranks on 2 hosts of a 1 Gbit/s (0.125 GB/s) cluster: 1 MiB in 1 MiB / 0.1 GB/s,
    busbw = algbw x 2(p-1)/p = algbw; ``speedup`` divides the time, as the attack's file."""
    n, t = 1 << 20, (1 << 20) / 0.1e9 / speedup
    rec = {"algorithm": "ring", "bytes": n, "time_s": t, "time_s_min": t, "time_s_max": t}
    rec.update(algbw=n / t / 1e9, busbw=n / t / 1e9, busbw_factor=1.0, world_size=2)
    run = {"tag": "b", "world_size": 2, "cluster": cluster or {"rate": "1gbit"}}
    run["hosts"] = [{"name": "h0", "ranks": [0]}, {"name": "h1", "ranks": [1]}]
    tmp_path.mkdir(exist_ok=True)
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"run": run, "records": [rec]}))
    return dl("report", str(f), "--out", str(tmp_path / "rout"))


def test_bench_busbw_above_the_recorded_link_rate_is_refused(tmp_path):
    # N-H2: 1 MiB at 1000 GB/s across two hosts on 1 Gbit/s links, exit 0 before
    line = one_line(_bench_two_hosts(tmp_path, 1e4))
    assert "record 0: busbw" in line and "1gbit" in line and "physics" in line, line


def test_bench_busbw_below_the_recorded_link_rate_is_reported(tmp_path):
    # 0.1 GB/s on 0.125 GB/s links; and 1.2x faster, still within the 5% slack of the
    # shaper and the burst its bucket lets through at memory speed (here 1 MiB of 1 MiB)
    assert _bench_two_hosts(tmp_path, 1.0).returncode == 0
    r = _bench_two_hosts(tmp_path / "b", 1e4, {"rate": "1gbit", "burst_bytes": 1 << 20})
    assert r.returncode == 0, r.stderr


def test_bench_cluster_rate_that_is_no_rate_is_one_line(tmp_path):
    line = one_line(_bench_two_hosts(tmp_path, 1.0, {"rate": "fast"}))
    assert "run.cluster.rate" in line and "'fast'" in line, line


def test_report_time_zero_names_time_s(tmp_path):
    # N-M1: "0 B/s for 1024 B in 0 s" named busbw; 1024 B across 4 ranks take some time
    from tests.test_trust_report3 import ROW, SIM

    row = {**ROW, "time_s": 0.0, "time_s_seeds": [0.0, 0.0], "time_s_worst": 0.0}
    row.update(ideal_s=0.0, algbw=0.0)
    d = tmp_path / "run"
    d.mkdir()
    (d / "simulate.json").write_text(json.dumps({**SIM, "results": [row]}))
    line = one_line(dl("report", str(d), "--out", str(tmp_path / "rout")))
    assert "results[0].time_s: expected more than 0 s for 1024 B at 4 ranks, got 0" in line


def _report_sim(tmp_path, doc):
    d = tmp_path / "run"
    d.mkdir(parents=True)
    (d / "simulate.json").write_text(json.dumps(doc))
    return dl("report", str(d), "--out", str(tmp_path / "rout"))


def test_report_refuses_a_row_given_twice(tmp_path):
    # N-M14: every row twice was drawn, exit 0
    from tests.test_trust_report3 import ROW, SIM

    line = one_line(_report_sim(tmp_path, {**SIM, "results": [ROW, dict(ROW)]}))
    assert "results[1]: expected each row once, got results[0] again" in line, line


def test_report_refuses_a_wall_time_that_is_no_number(tmp_path):
    from tests.test_trust_report3 import SIM

    line = one_line(_report_sim(tmp_path, {**SIM, "wall_s": float("nan")}))
    assert "wall_s" in line and "nan" in line.lower(), line
    assert _report_sim(tmp_path / "ok", {**SIM, "wall_s": 0.5}).returncode == 0


def test_report_refuses_a_key_given_twice(tmp_path):
    # N-M14: `"time_s": NaN, "time_s": 5.4e-05`: JSON keeps the last, the NaN unseen
    from tests.test_trust_report3 import SIM

    d = tmp_path / "run"
    d.mkdir()
    text = json.dumps(SIM).replace('"time_s": ', '"time_s": NaN, "time_s": ', 1)
    (d / "simulate.json").write_text(text)
    line = one_line(dl("report", str(d), "--out", str(tmp_path / "rout")))
    assert "expected each key once in an object, got 'time_s' twice" in line, line
