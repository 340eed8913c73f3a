"""Everything rank-specific about output: progress lines, the summary, the files of a run.

Ranks gather their records to rank 0 once, at the end (:func:`gather_records`, a
collective); only rank 0 prints and writes. Nothing here is called per allreduce.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from dist_logreg.comm import busbw_factor
from dist_logreg.errors import UsageError, raise_together
from dist_logreg.trainer import PHASES, TrainResult


class Reporter:
    """Progress and the final report, printed by rank 0 only."""

    def __init__(self, rank: int, stream=None):
        self.rank = rank
        self.stream = stream if stream is not None else sys.stdout

    def say(self, text: str) -> None:
        if self.rank == 0:
            print(text, file=self.stream, flush=True)

    def start(self, cfg, ds, world_size: int, steps: int) -> None:
        self.say(
            f"dist-logreg train: {world_size} rank(s), {steps} steps, global batch "
            f"{cfg.batch_size} rows, {ds.n_samples} samples x {ds.n_features} features "
            f"({cfg.dtype}), data {ds.source}"
        )

    def progress(self, step: int, steps: int, loss: float, samples_per_s: float) -> None:
        width = len(str(steps))
        self.say(
            f"  step {step:>{width}}/{steps}  batch loss {loss:.6f}  {samples_per_s:,.0f} samples/s"
        )

    def finish(self, summary: dict, out_dir: Path) -> None:
        if self.rank == 0:
            print(format_summary(summary, out_dir), file=self.stream, flush=True)


def gather_records(comm, allreduce, result: TrainResult):
    """Collective: every rank's allreduce records and step timings, on rank 0 (else None)."""
    mine = {
        "rank": comm.Get_rank(),
        "calls": allreduce.records(),
        "phase_ns": result.phase_ns,
        "loop_ns": result.loop_ns,
    }
    return comm.gather(mine, root=0)


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else 0.0


def _spread(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {
        "min": float(values.min()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }


def summarize(per_rank: list[dict], result: TrainResult, cfg, ds, algorithm: str) -> dict:
    """Aggregate gathered records into ``summary.json`` (keys per DESIGN.md's contract).

    Latency percentiles pool every call of every rank. Skew and transfer time come from
    comparing ranks step by step: the rank that arrives last waits least, so the per-step
    minimum over ranks approximates the pure transfer and max - min the imbalance.
    """
    p = len(per_rank)
    calls = [r["calls"] for r in per_rank]
    ns = np.concatenate([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    rank0 = calls[0]
    payload = int(rank0["bytes"][0]) if rank0["bytes"].size else 0
    # Per-step durations of the gradient allreduce, ranks x calls (all ranks make the same calls).
    by_call = np.stack([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    transfer = by_call.min(axis=0)
    skew = by_call.max(axis=0) - transfer
    p50 = _pct(ns, 50)
    algbw = payload / p50 / 1e9 if p50 > 0 else 0.0

    totals = {
        ph: [r["phase_ns"][:, i].sum() * 1e-9 for r in per_rank] for i, ph in enumerate(PHASES)
    }
    totals["total"] = [r["loop_ns"] * 1e-9 for r in per_rank]
    comm_fraction = [
        c / t if t > 0 else 0.0 for c, t in zip(totals["comm"], totals["total"], strict=True)
    ]
    step_s = np.concatenate([r["phase_ns"].sum(axis=1) for r in per_rank]) * 1e-9
    median_total = float(np.median(totals["total"]))
    return {
        "world_size": p,
        "steps": result.steps,
        "epochs": result.epochs,
        "batch_size": cfg.batch_size,
        "samples_per_s": result.steps * cfg.batch_size / median_total if median_total else 0.0,
        "final_loss": result.final_loss,
        "final_loss_note": "objective (mean log-loss + l2/2*||w||^2) on the full training set",
        "final_accuracy": result.final_accuracy,
        "final_batch_loss": float(result.batch_loss[-1]),
        "data": {
            "source": ds.source,
            "samples": ds.n_samples,
            "features": ds.n_features,
            "dtype": cfg.dtype,
        },
        "allreduce": {
            "algorithm": algorithm,
            "calls": int(rank0["ns"].size),
            "bytes": int(rank0["bytes"].sum()),
            "bytes_note": "payload bytes per rank, summed over calls (elements x item size)",
            "bytes_per_call": payload,
            "latency_s": {
                "p50": p50,
                "p99": _pct(ns, 99),
                "mean": float(ns.mean()),
                "min": float(ns.min()),
                "max": float(ns.max()),
            },
            "algbw_GBps": {"p50": algbw},
            "busbw_GBps": {"p50": algbw * busbw_factor(p)},
            "transfer_s": {"p50": _pct(transfer, 50), "p99": _pct(transfer, 99)},
            "skew_s": {
                "p50": _pct(skew, 50),
                "p99": _pct(skew, 99),
                "max": float(skew.max()) if skew.size else 0.0,
            },
        },
        "time_s": {name: float(np.median(v)) for name, v in totals.items()},
        "time_s_note": "median over ranks of per-rank totals; compute = gradient math, "
        "data = batch gather, comm = gradient allreduce, update = optimizer step",
        "time_s_per_rank": {name: _spread(v) for name, v in totals.items()},
        "step_time_s": {"p50": _pct(step_s, 50), "p99": _pct(step_s, 99)},
        "comm_fraction": _spread(comm_fraction),
    }


def prepare_out_dir(comm, requested: str | None) -> Path:
    """Collective: rank 0 picks (default ``runs/train-<time>``) and creates the output directory.

    Done before training, so an unwritable directory fails in seconds, not after the run.
    """
    error, path = None, None
    if comm.Get_rank() == 0:
        path = Path(requested) if requested else _default_out_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            error = UsageError(f"--out {path}: cannot write there: {exc.strerror or exc}")
    raise_together(comm, error)
    return Path(comm.bcast(str(path), root=0))


def _default_out_dir() -> Path:
    base = Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def write_outputs(
    out_dir: Path, summary: dict, per_rank: list[dict], result: TrainResult, config: dict
) -> None:
    """Rank 0 writes model.npz, summary.json, metrics.jsonl, steps.jsonl and config.json."""
    np.savez(out_dir / "model.npz", coef=result.coef, intercept=np.asarray(result.intercept))
    _write_json(out_dir / "summary.json", summary)
    _write_json(out_dir / "config.json", config)
    with (out_dir / "metrics.jsonl").open("w") as fh:
        for r in per_rank:
            c = r["calls"]
            origin = c["start_ns"][0] if c["start_ns"].size else 0
            for step, nbytes, ns, start in zip(
                c["step"].tolist(),
                c["bytes"].tolist(),
                c["ns"].tolist(),
                c["start_ns"].tolist(),
                strict=True,
            ):
                fh.write(
                    json.dumps(
                        {
                            "step": step,
                            "rank": r["rank"],
                            "bytes": nbytes,
                            "seconds": ns * 1e-9,
                            "start_s": (start - origin) * 1e-9,
                        }
                    )
                    + "\n"
                )
    with (out_dir / "steps.jsonl").open("w") as fh:
        for r in per_rank:
            for step, row in enumerate((r["phase_ns"] * 1e-9).tolist()):
                rec = {"step": step, "rank": r["rank"]}
                rec.update({f"{ph}_s": v for ph, v in zip(PHASES, row, strict=True)})
                rec["batch_loss"] = float(result.batch_loss[step])
                fh.write(json.dumps(rec) + "\n")


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _us(s: float) -> str:
    return f"{s * 1e6:.1f} us"


def format_summary(s: dict, out_dir: Path) -> str:
    """The readable end-of-run block (every number says what it is and its unit)."""
    a, tr = s["allreduce"], s["time_s_per_rank"]
    cf = s["comm_fraction"]

    def spread(name: str) -> str:
        r = tr[name]
        return f"{r['median']:.3f} s [{r['min']:.3f}..{r['max']:.3f}]"

    lines = [
        f"done: {s['world_size']} rank(s), {s['steps']} steps ({s['epochs']:.2f} epochs), "
        f"{s['samples_per_s']:,.0f} samples/s",
        f"  final loss      {s['final_loss']:.6f}  (objective on all {s['data']['samples']} "
        f"training rows)   accuracy {100 * s['final_accuracy']:.2f}%",
        f"  allreduce [{a['algorithm']}]  {a['calls']} calls/rank x {_bytes(a['bytes_per_call'])}"
        f" payload = {_bytes(a['bytes'])} payload per rank",
        f"    latency       p50 {_us(a['latency_s']['p50'])}   p99 {_us(a['latency_s']['p99'])}",
        f"    bandwidth     algbw {a['algbw_GBps']['p50']:.3f} GB/s   busbw "
        f"{a['busbw_GBps']['p50']:.3f} GB/s   (payload / p50 latency)",
        f"    per step      transfer p50 {_us(a['transfer_s']['p50'])} (min over ranks)   "
        f"skew p50 {_us(a['skew_s']['p50'])} (max - min over ranks)",
        "  time per rank   median [min..max]",
        f"    total   {spread('total')}",
        f"    data    {spread('data')}   compute {spread('compute')}",
        f"    comm    {spread('comm')}   update  {spread('update')}",
        f"  comm fraction   {100 * cf['median']:.1f}% median [{100 * cf['min']:.1f}%.."
        f"{100 * cf['max']:.1f}%] of loop time in the gradient allreduce",
        f"  outputs         {out_dir}/ (model.npz, summary.json, metrics.jsonl, steps.jsonl, "
        "config.json)",
    ]
    return "\n".join(lines)
