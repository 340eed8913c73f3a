"""Everything rank-specific about output: progress lines, the summary, the files of a run.

Ranks gather their records to rank 0 once, at the end (:func:`gather_records`, a
collective); only rank 0 prints and writes. Nothing here is called per allreduce.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dist_logreg.comm import busbw_factor, model_wire_bytes
from dist_logreg.errors import UsageError, raise_together
from dist_logreg.trainer import PHASES, TrainResult

#: Set by ``dist-logreg supervise``: rank 0 records its progress there (for "work lost").
STATUS_VAR = "DIST_LOGREG_STATUS"


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

    def warn(self, text: str) -> None:
        if self.rank == 0:
            print(f"dist-logreg: warning: {text}", file=sys.stderr, flush=True)

    def progress(self, step: int, steps: int, loss: float, samples_per_s: float) -> None:
        width = len(str(steps))
        self.say(
            f"  step {step:>{width}}/{steps}  batch loss {loss:.6f}  {samples_per_s:,.0f} samples/s"
        )
        if self.rank == 0 and STATUS_VAR in os.environ:  # for `dist-logreg supervise`
            with contextlib.suppress(OSError):
                Path(os.environ[STATUS_VAR]).write_text(json.dumps({"step": step, "steps": steps}))

    def finish(self, summary: dict, out_dir: Path) -> None:
        if self.rank == 0:
            print(format_summary(summary, out_dir), file=self.stream, flush=True)


def gather_records(comm, allreduce, result: TrainResult, clock: tuple[int, int] = (0, 0)):
    """Collective: every rank's records, step timings and traffic, on rank 0 (else None)."""
    traffic = allreduce.traffic
    mine = {
        "rank": comm.Get_rank(),
        "first_step": result.first_step,
        "calls": allreduce.records(),
        "marks": result.marks,
        "comm_ns": result.comm_ns,
        "phase_ns": result.phase_ns,
        "span_ns": result.comm_span_ns,
        "loop_ns": result.loop_ns,
        "sent_bytes": None if traffic is None else list(traffic.bytes),
        "sent_messages": None if traffic is None else list(traffic.messages),
        "clock_offset_ns": clock[0],
        "clock_error_ns": clock[1],
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


def traffic_report(per_rank: list[dict], algorithm: str, node_of, payload_total: int):
    """``traffic.json`` content and the wire-bytes keys of the summary.

    Algorithms written here count what each rank sent to each peer; the MPI library's own
    algorithm cannot be observed from the application, so it gets a labelled estimate.
    """
    p = len(per_rank)
    if per_rank[0]["sent_bytes"] is None:
        estimate = model_wire_bytes(algorithm, payload_total, p)  # linear in the payload
        note = (
            "not observed: the MPI library's own algorithm does not expose its traffic; "
            "wire_bytes_estimate is the cost model's 2(p-1)/p x payload per call "
            "(bandwidth-optimal ring or reduce-scatter+allgather), an ESTIMATE"
        )
        doc = {
            "algorithm": algorithm,
            "observed": False,
            "bytes": None,
            "messages": None,
            "note": note,
            "wire_bytes_estimate_per_rank": estimate,
        }
        return doc, {
            "wire_bytes_observed": False,
            "wire_bytes_estimate_per_rank": estimate,
            "wire_bytes_note": note,
        }
    matrix = [r["sent_bytes"] for r in per_rank]
    messages = [r["sent_messages"] for r in per_rank]
    sent = [sum(row) for row in matrix]
    doc = {
        "algorithm": algorithm,
        "observed": True,
        "bytes": matrix,
        "messages": messages,
        "note": "bytes[i][j]: payload bytes rank i sent to rank j over the whole run",
    }
    keys = {
        "wire_bytes_observed": True,
        "wire_bytes_per_rank": _spread(sent),
        "wire_bytes_total": int(sum(sent)),
        "wire_bytes_note": "bytes each rank sent, counted per message; not counting "
        "MPI envelopes or TCP/IP headers",
    }
    if node_of is not None:
        intra = sum(matrix[i][j] for i in range(p) for j in range(p) if node_of[i] == node_of[j])
        doc["node_of_rank"] = list(node_of)
        doc["intra_node_bytes"] = intra
        doc["inter_node_bytes"] = int(sum(sent)) - intra
        keys["intra_node_bytes"] = doc["intra_node_bytes"]
        keys["inter_node_bytes"] = doc["inter_node_bytes"]
        keys["nodes"] = len(set(node_of))
    return doc, keys


def summarize(per_rank: list[dict], result: TrainResult, cfg, ds, info: dict) -> dict:
    """Aggregate gathered records into ``summary.json`` (keys per DESIGN.md's contract).

    ``info``: ``algorithm``, ``node_of`` and ``mpi_algorithm`` of the allreduce used.
    Latency percentiles pool every call of every rank. Skew and transfer time come from
    comparing ranks call by call: the rank that arrives last waits least, so the minimum
    over ranks approximates the pure transfer and max - min the imbalance.
    """
    p = len(per_rank)
    calls = [r["calls"] for r in per_rank]
    ns = np.concatenate([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    nbytes = np.concatenate([c["bytes"] for c in calls]).astype(np.float64)
    rank0 = calls[0]
    n_calls = int(rank0["ns"].size)
    run_steps = result.steps - result.first_step  # this run's steps (fewer when resumed)
    payload_step = int(rank0["bytes"].sum()) // max(run_steps, 1)
    # Durations of each call, ranks x calls (all ranks make the same calls in the same order).
    by_call = np.stack([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    transfer = by_call.min(axis=0)
    skew = by_call.max(axis=0) - transfer
    algbw = _pct(nbytes / np.maximum(ns, 1e-12), 50) / 1e9

    totals = {
        ph: [r["phase_ns"][:, i].sum() * 1e-9 for r in per_rank] for i, ph in enumerate(PHASES)
    }
    totals["total"] = [r["loop_ns"] * 1e-9 for r in per_rank]
    comm_fraction = [
        c / t if t > 0 else 0.0 for c, t in zip(totals["comm"], totals["total"], strict=True)
    ]
    step_s = np.concatenate([r["phase_ns"].sum(axis=1) for r in per_rank]) * 1e-9
    median_total = float(np.median(totals["total"]))
    itemsize = np.dtype(cfg.dtype).itemsize
    uncompressed = (ds.n_features + 3) * itemsize * run_steps
    traffic_doc, wire = traffic_report(
        per_rank, info["algorithm"], info.get("node_of"), int(rank0["bytes"].sum())
    )
    allreduce = {
        "algorithm": info["algorithm"],
        "mpi_algorithm": info.get("mpi_algorithm"),
        "calls": n_calls,
        "bytes": int(rank0["bytes"].sum()),
        "bytes_note": "payload bytes per rank, summed over calls (elements x item size of "
        "the buffer reduced; after compression, if any)",
        "bytes_per_call": int(np.median(rank0["bytes"])) if n_calls else 0,
        "bytes_per_step": payload_step,
        "latency_s": {
            "p50": _pct(ns, 50),
            "p99": _pct(ns, 99),
            "mean": float(ns.mean()) if ns.size else 0.0,
            "min": _pct(ns, 0),
            "max": _pct(ns, 100),
        },
        "algbw_GBps": {"p50": algbw},
        "busbw_GBps": {"p50": algbw * busbw_factor(p)},
        "transfer_s": {"p50": _pct(transfer, 50), "p99": _pct(transfer, 99)},
        "skew_s": {
            "p50": _pct(skew, 50),
            "p99": _pct(skew, 99),
            "max": float(skew.max()) if skew.size else 0.0,
        },
        "compress": cfg.compress,
        "bytes_uncompressed": uncompressed,
        "bytes_saved": uncompressed - int(rank0["bytes"].sum()),
        "bucket_bytes": cfg.bucket_bytes,
        "calls_per_step": n_calls / max(run_steps, 1),
        **wire,
    }
    if cfg.bucket_bytes:
        # Hidden = the part of [first post, last completion] not spent inside comm calls.
        overlap = [
            1.0 - r["comm_ns"].sum() / r["span_ns"].sum() if r["span_ns"].sum() > 0 else 0.0
            for r in per_rank
        ]
        allreduce["overlap_fraction"] = _spread(np.clip(overlap, 0.0, 1.0))
        allreduce["overlap_note"] = (
            "per rank: 1 - (time inside allreduce calls) / (time from the first bucket "
            "posted to the last completed), over all steps"
        )
    summary = {
        "world_size": p,
        "steps": result.steps,
        "resumed_from_step": result.first_step,
        "steps_run": run_steps,
        "epochs": result.epochs,
        "batch_size": cfg.batch_size,
        "samples_per_s": run_steps * cfg.batch_size / median_total if median_total else 0.0,
        "final_loss": result.final_loss,
        "final_loss_note": "objective (mean log-loss + l2/2*||w||^2) on the full training set",
        "final_accuracy": result.final_accuracy,
        "final_batch_loss": float(result.batch_loss[-1]) if run_steps else None,
        "data": {
            "source": ds.source,
            "samples": ds.n_samples,
            "features": ds.n_features,
            "dtype": cfg.dtype,
        },
        "allreduce": allreduce,
        "time_s": {name: float(np.median(v)) for name, v in totals.items()},
        "time_s_note": "median over ranks of per-rank totals; compute = gradient math, "
        "data = batch gather, comm = time inside gradient allreduce calls, "
        "update = optimizer step",
        "time_s_per_rank": {name: _spread(v) for name, v in totals.items()},
        "step_time_s": {"p50": _pct(step_s, 50), "p99": _pct(step_s, 99)},
        "comm_fraction": _spread(comm_fraction),
    }
    return summary, traffic_doc


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
    out_dir: Path,
    summary: dict,
    traffic: dict,
    per_rank: list[dict],
    result: TrainResult,
    config: dict,
) -> None:
    """Rank 0 writes model.npz, summary.json, traffic.json, metrics.jsonl, steps.jsonl, config."""
    np.savez(out_dir / "model.npz", coef=result.coef, intercept=np.asarray(result.intercept))
    _write_json(out_dir / "summary.json", summary)
    _write_json(out_dir / "traffic.json", traffic)
    _write_json(out_dir / "config.json", config)
    with (out_dir / "metrics.jsonl").open("w") as fh:
        for r in per_rank:
            origin = int(r["marks"][0, 0]) if r["marks"].size else 0
            fh.writelines(metric_lines(r["rank"], r["calls"], origin))
    with (out_dir / "steps.jsonl").open("w") as fh:
        for r in per_rank:
            for i, row in enumerate((r["phase_ns"] * 1e-9).tolist()):
                rec = {"step": result.first_step + i, "rank": r["rank"]}
                rec.update({f"{ph}_s": v for ph, v in zip(PHASES, row, strict=True)})
                rec["batch_loss"] = float(result.batch_loss[i])
                fh.write(json.dumps(rec) + "\n")


class PartialMetrics:
    """Each rank appends its allreduce records to ``<out>/partial/`` every few steps.

    One file per rank and start step (``metrics-from<step>-rank<r>.jsonl``, the lines of
    ``metrics.jsonl``, with ``start_s`` from the rank's first call of the run), so a run that
    dies keeps what it measured, and a resumed run does not overwrite it. The run's own files
    are removed when it completes and ``metrics.jsonl`` holds everything.
    """

    def __init__(self, out_dir: Path, rank: int, first_step: int, warn):
        self.path = out_dir / "partial" / f"metrics-from{first_step}-rank{rank}.jsonl"
        self.rank = rank
        self.done = 0
        self.warn = warn

    def flush(self, allreduce) -> None:
        rec = allreduce.records()
        if rec["ns"].size == self.done:
            return
        lines = metric_lines(self.rank, rec, int(rec["start_ns"][0]), self.done)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.writelines(lines)
        except OSError as exc:
            self.warn(f"could not save partial metrics to {self.path}: {exc.strerror or exc}")
            return
        self.done = rec["ns"].size

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # only if no other run's files are left


def rescue(summary: dict, result: TrainResult, error: OSError) -> Path:
    """Writing to --out failed: save the model and summary to a fresh temporary directory."""
    where = Path(tempfile.mkdtemp(prefix="dist-logreg-rescue-"))
    np.savez(where / "model.npz", coef=result.coef, intercept=np.asarray(result.intercept))
    _write_json(where / "summary.json", {**summary, "rescued_because": str(error)})
    return where


def metric_lines(rank: int, calls: dict, origin: int, first: int = 0) -> list[str]:
    """``metrics.jsonl`` lines for one rank's calls from index ``first``; times from ``origin``."""
    return [
        json.dumps(
            {
                "step": step,
                "rank": rank,
                "bytes": nbytes,
                "seconds": ns * 1e-9,
                "start_s": (start - origin) * 1e-9,
            }
        )
        + "\n"
        for step, nbytes, ns, start in zip(
            calls["step"][first:].tolist(),
            calls["bytes"][first:].tolist(),
            calls["ns"][first:].tolist(),
            calls["start_ns"][first:].tolist(),
            strict=True,
        )
    ]


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

    forced = a.get("mpi_algorithm") or {}
    label = a["algorithm"] + (f", {forced['requested']}" if forced.get("requested") else "")
    lines = [
        f"done: {s['world_size']} rank(s), {s['steps']} steps ({s['epochs']:.2f} epochs), "
        f"{s['samples_per_s']:,.0f} samples/s",
        f"  final loss      {s['final_loss']:.6f}  (objective on all {s['data']['samples']} "
        f"training rows)   accuracy {100 * s['final_accuracy']:.2f}%",
        f"  allreduce [{label}]  {a['calls']} calls/rank x {_bytes(a['bytes_per_call'])}"
        f" payload = {_bytes(a['bytes'])} payload per rank",
        f"    latency       p50 {_us(a['latency_s']['p50'])}   p99 {_us(a['latency_s']['p99'])}",
        f"    bandwidth     algbw {a['algbw_GBps']['p50']:.3f} GB/s   busbw "
        f"{a['busbw_GBps']['p50']:.3f} GB/s   (per-call payload / latency, p50)",
        f"    per call      transfer p50 {_us(a['transfer_s']['p50'])} (min over ranks)   "
        f"skew p50 {_us(a['skew_s']['p50'])} (max - min over ranks)",
    ]
    if a["wire_bytes_observed"]:
        w = a["wire_bytes_per_rank"]
        line = f"    wire bytes    {_bytes(w['median'])} sent per rank (median, counted)"
        if "inter_node_bytes" in a:
            line += (
                f"; {a['nodes']} nodes: intra-node {_bytes(a['intra_node_bytes'])}, "
                f"inter-node {_bytes(a['inter_node_bytes'])} (all ranks)"
            )
        lines.append(line)
    else:
        lines.append(
            f"    wire bytes    not observed for the MPI library's algorithm; ESTIMATE "
            f"{_bytes(a['wire_bytes_estimate_per_rank'])} per rank (cost model 2(p-1)/p x payload)"
        )
    if a["compress"] != "none":
        lines.append(
            f"    compression   {a['compress']}: {_bytes(a['bytes_saved'])} of "
            f"{_bytes(a['bytes_uncompressed'])} payload saved per rank"
        )
    if "overlap_fraction" in a:
        o = a["overlap_fraction"]
        lines.append(
            f"    buckets       {a['calls_per_step']:.0f} per step of <= "
            f"{_bytes(a['bucket_bytes'])}; overlap {100 * o['median']:.1f}% median "
            f"[{100 * o['min']:.1f}%..{100 * o['max']:.1f}%] of comm hidden behind compute"
        )
    lines += [
        "  time per rank   median [min..max]",
        f"    total   {spread('total')}",
        f"    data    {spread('data')}   compute {spread('compute')}",
        f"    comm    {spread('comm')}   update  {spread('update')}",
        f"  comm fraction   {100 * cf['median']:.1f}% median [{100 * cf['min']:.1f}%.."
        f"{100 * cf['max']:.1f}%] of loop time in the gradient allreduce",
        f"  outputs         {out_dir}/",
    ]
    return "\n".join(lines)
