"""Run directories and bench files written by hand, with known numbers, for the report tests.

The numbers are constructed, not measured: rank ``late_rank`` arrives ``late_s`` after the
others at step ``late_step``; everything else is regular, so what the report must find is
known before it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dist_logreg.ops.cluster import fabricfiles


def write_train_run(
    d: Path,
    p: int = 3,
    steps: int = 20,
    late_rank: int = 2,
    late_step: int = 7,
    late_s: float = 0.05,
    tag: str | None = "fake",
    aligned: bool = True,
    predicted: bool = True,
    fabric: bool = True,
) -> Path:
    """A training output directory of ``p`` ranks with one straggler."""
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    steps_lines, metric_lines = [], []
    t = 0.0
    for s in range(steps):
        arrive = {r: t + 1e-4 * r + rng.uniform(0, 2e-5) for r in range(p)}
        if s == late_step:
            arrive[late_rank] += late_s
        done = max(arrive.values()) + 2e-4  # everyone leaves together
        for r in range(p):
            rec = {"step": s, "rank": r, "bytes": 1048, "seconds": done - arrive[r]}
            rec["start_s"] = arrive[r]
            if aligned:
                rec["start_aligned_s"] = arrive[r]
            if predicted:
                rec["predicted_s"] = 1.5e-4
            metric_lines.append(rec)
            steps_lines.append(
                {
                    "step": s,
                    "rank": r,
                    "data_s": arrive[r] - t,
                    "compute_s": 1e-4,
                    "comm_s": done - arrive[r],
                    "update_s": 2e-5,
                    "batch_loss": 0.7 / (1 + s),
                }
            )
        t = done + 1e-4
    summary = {
        "world_size": p,
        "steps": steps,
        "steps_run": steps,
        "final_loss": 0.25,
        "allreduce": {
            "algorithm": "ring",
            "latency_s": {"p50": 3e-4, "p99": late_s},
            "busbw_GBps": {"p50": 0.005},
            "calls_per_step": 1,
        },
        "step_time_s": {"p50": 6e-4},
        "comm_fraction": {"median": 0.4},
    }
    if tag is not None:
        summary["run"] = {
            "tag": tag,
            "started_utc": "2026-01-02T03:04:05+00:00",
            "dist_logreg_version": "0.1.0",
            "command_line": ["dist-logreg", "train", "--tag", tag],
            "world_size": p,
            "hosts": [{"name": f"h{r}", "ranks": [r]} for r in range(p)],
            "mpi": {"library": "Open MPI v5.0.11, package: x"},
            "numpy": "2.0",
            "blas": {"libraries": [{"internal_api": "openblas", "num_threads": 1}]},
            "cluster": {"topology": "two-tier", "rate": "1gbit"},
        }
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "config.json").write_text(json.dumps({"tag": tag}))
    (d / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in steps_lines))
    (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in metric_lines))
    ring = [[1000 * steps if j == (i + 1) % p else 0 for j in range(p)] for i in range(p)]
    (d / "traffic.json").write_text(
        json.dumps({"algorithm": "ring", "observed": True, "bytes": ring})
    )
    if fabric:  # the files `cluster run` writes, through its own writer
        links = [
            {
                "id": f"l{i}-s{k}",
                "class": "uplink",
                "directions": {
                    f"l{i}>s{k}": {
                        "way": "up",
                        "bytes": 1000 * (i + k + 1),
                        "packets": 1,
                        "shaper_drops": 0,
                        "loss_drops": 0,
                        "Gbps": 0.0,
                    },
                    f"s{k}>l{i}": {
                        "way": "down",
                        "bytes": 500 * (i + k + 1),
                        "packets": 1,
                        "shaper_drops": 0,
                        "loss_drops": 0,
                        "Gbps": 0.0,
                    },
                },
            }
            for i in range(2)
            for k in range(2)
        ]
        flows = [
            {
                "src": f"h{i}",
                "dst": f"h{(i + 1) % p}",
                "sport": 1000 + i,
                "dport": 2000,
                "src_ranks": [i],
                "dst_ranks": [(i + 1) % p],
                "bytes": 5000,
                "spine": f"s{i % 2}",
            }
            for i in range(p)
        ]
        fabricfiles.write_links(d / "links.json", {"cluster": "fake", "links": links})
        fabricfiles.write_flows(
            d / "flows.json", {"cluster": "fake"}, [{"label": "job", "flows": flows}]
        )
    return d


def bench_records(p: int = 2, algorithms=("mpi", "ring"), predicted: bool = True) -> list[dict]:
    """Records as ``dist-logreg bench`` writes them: time = 10 us + bytes / (1 GB/s)."""
    out = []
    for k, alg in enumerate(algorithms):
        for nbytes in (8, 64, 512, 4096, 32768, 262144):
            t = (10 + 5 * k) * 1e-6 + nbytes / 1e9
            algbw = nbytes / t / 1e9
            rec = {
                "algorithm": alg,
                "bytes": nbytes,
                "count": nbytes // 8,
                "time_s": t,
                "time_s_min": t,
                "time_s_max": t,
                "algbw": algbw,
                "busbw": algbw * 2 * (p - 1) / p,
                "wrong": 0,
                "world_size": p,
            }
            if predicted:
                rec["predicted_s"] = 0.9 * t
            out.append(rec)
    return out


def write_bench(path: Path, tag: str = "bench", old_list: bool = False, **kw) -> Path:
    records = bench_records(**kw)
    doc = (
        records
        if old_list
        else {"run": {"tag": tag, "cluster": {"rate": "1gbit"}}, "records": records}
    )
    path.write_text(json.dumps(doc))
    return path
