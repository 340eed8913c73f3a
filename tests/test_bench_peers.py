"""benchmarks/bench_peers.py keeps working: its data, one worker, and its goal arithmetic."""

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_peers  # noqa: E402
import bench_report  # noqa: E402


def test_worker_runs_on_the_data_it_writes(tmp_path):
    shape = {"n": 300, "d": 8, "dtype": "float32", "batch": 32, "warmup": 1, "steps": 3}
    folder = bench_peers.make_data(tmp_path, shape)
    assert bench_peers.make_data(tmp_path, shape) == folder  # written once
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_peers.py"),
        "--worker",
        "numpy",
        "--shape-json",
        json.dumps(shape),
        "--data",
        str(folder),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.split("RESULT ", 1)[1])
    assert result["step_s"] > 0


def doc(trainer_blocks_wide):
    shape = {"n": 10, "d": 65_536, "dtype": "float32", "batch": 1024}
    steps = {
        "numpy": [0.04],
        "ddp": [0.05],
        "trainer rows": [0.03],
        "trainer blocks": [trainer_blocks_wide],
    }
    return {
        "size": "full",
        "rounds": 1,
        "ranks": 2,
        "load_average_before": [0, 0, 0],
        "load_average_after": [0, 0, 0],
        "wall_s": 1,
        "ddp_skipped": None,
        "shapes": {"narrow": {**shape, "d": 512, "dtype": "float64", "batch": 4096}, "wide": shape},
        "steps_s": {
            "narrow": {
                "numpy": [4.0],
                "ddp": [7.0],
                "trainer rows": [1.5],
                "trainer blocks": [0.9],
            },
            "wide": steps,
        },
        "trainer_details": {},
        "bandwidth_GBps": [{"sum": 8.0, "gemv64": 16.0, "gemv32": 15.0, "copy": 12.0}],
        "rss": {
            "rows": 1,
            "features": 1,
            "data_bytes": 1000,
            "peak_rss_bytes_per_rank": {"global": [1100, 1100], "sharded": [600, 640]},
        },
    }


@pytest.mark.parametrize("blocks_s, met", [(0.0120, True), (0.0130, False)])
def test_goals_against_the_one_pass_limit(blocks_s, met):
    # 512 rows x 65,536 x 4 bytes = 134.2 MB at 16 GB/s: 8.39 ms; 1.5x = 12.58 ms
    limit, read = bench_report.one_pass_limit_s(
        doc(0)["shapes"]["wide"], 2, [{"sum": 8.0, "gemv64": 16.0, "gemv32": 15.0}]
    )
    assert read == 16.0 and limit == pytest.approx(512 * 65536 * 4 / 16e9)
    goals = {what: (value, ok) for what, value, _, ok in bench_report.goals(doc(blocks_s))}
    assert goals["wide: trainer blocks / one-pass limit"][1] is met
    assert goals["narrow: trainer rows / numpy"] == (1.5 / 4.0, True)
    assert goals["narrow: ddp / trainer rows"] == (7.0 / 1.5, True)
    assert goals["sharded: peak RSS per rank / data bytes"] == (0.64, True)
    assert ("MISSED" in bench_report.report(doc(blocks_s))) is not met  # the only miss
