"""Statistics of a run: gather every rank's records once, and aggregate them into the summary.

Ranks gather their records to rank 0 once, at the end (:func:`gather_records`, a
collective); the rest is arithmetic on rank 0. Nothing here is called per allreduce.
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from dist_logreg.collective.closed_form import busbw_factor, model_wire_bytes
from dist_logreg.record.result import PHASES, TrainResult


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
        "peak_rss_bytes": peak_rss_bytes(),
    }
    return comm.gather(mine, root=0)


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (``getrusage``: KiB on Linux, bytes on
    macOS), including memory-mapped file pages it touched."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


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
    """Aggregate gathered records into ``summary.json`` (keys per docs/design.md's contract).

    ``info``: ``algorithm``, ``node_of`` and ``mpi_algorithm`` of the allreduce used.
    Latency percentiles pool every call of every rank. Skew and transfer time come from
    comparing ranks call by call: the rank that arrives last waits least, so the minimum
    over ranks approximates the pure transfer and max - min the imbalance.
    """
    p = len(per_rank)
    run_steps = result.steps - result.first_step  # this run's steps (fewer when resumed)
    totals = {
        ph: [r["phase_ns"][:, i].sum() * 1e-9 for r in per_rank] for i, ph in enumerate(PHASES)
    }
    totals["total"] = [r["loop_ns"] * 1e-9 for r in per_rank]
    comm_fraction = [
        c / t if t > 0 else 0.0 for c, t in zip(totals["comm"], totals["total"], strict=True)
    ]
    step_s = np.concatenate([r["phase_ns"].sum(axis=1) for r in per_rank]) * 1e-9
    median_total = float(np.median(totals["total"]))
    allreduce, traffic_doc = _allreduce_block(per_rank, result, cfg, info, run_steps)
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
            "samples": ds.n_total,
            "features": ds.n_features,
            "dtype": cfg.dtype,
            "shuffle": cfg.shuffle,
            "sampling": cfg.sampling,
        },
        "memory": {
            "peak_rss_bytes": _spread([r["peak_rss_bytes"] for r in per_rank]),
            "peak_rss_bytes_per_rank": [r["peak_rss_bytes"] for r in per_rank],
            "note": "per rank: peak resident set size (getrusage ru_maxrss) at the end of "
            "training, including the Python runtime and memory-mapped pages touched",
        },
        "allreduce": allreduce,
        "time_s": {name: float(np.median(v)) for name, v in totals.items()},
        "time_s_note": "median over ranks of per-rank totals; data = choosing the step's "
        "rows (and, when bucketed, gathering them), compute = gradient math, which reads "
        "the rows itself (gathered block by block, or a contiguous view), comm = time "
        "inside gradient allreduce calls, update = optimizer step",
        "time_s_per_rank": {name: _spread(v) for name, v in totals.items()},
        "step_time_s": {"p50": _pct(step_s, 50), "p99": _pct(step_s, 99)},
        "comm_fraction": _spread(comm_fraction),
    }
    return summary, traffic_doc


def _allreduce_block(per_rank, result, cfg, info: dict, run_steps: int) -> tuple[dict, dict]:
    """``summary["allreduce"]`` (latency, bandwidth, skew, bytes, overlap) and traffic.json."""
    p = len(per_rank)
    calls = [r["calls"] for r in per_rank]
    ns = np.concatenate([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    nbytes = np.concatenate([c["bytes"] for c in calls]).astype(np.float64)
    rank0 = calls[0]
    n_calls = int(rank0["ns"].size)
    sent = int(rank0["bytes"].sum())
    # Durations of each call, ranks x calls (all ranks make the same calls in the same order).
    by_call = np.stack([c["ns"] for c in calls]).astype(np.float64) * 1e-9
    transfer = by_call.min(axis=0)
    skew = by_call.max(axis=0) - transfer
    algbw = _pct(nbytes / np.maximum(ns, 1e-12), 50) / 1e9
    uncompressed = result.model.buffer_size * np.dtype(cfg.dtype).itemsize * run_steps
    traffic_doc, wire = traffic_report(per_rank, info["algorithm"], info.get("node_of"), sent)
    allreduce = {
        "algorithm": info["algorithm"],
        "mpi_algorithm": info.get("mpi_algorithm"),
        "calls": n_calls,
        "bytes": sent,
        "bytes_note": "payload bytes per rank, summed over calls (elements x item size of "
        "the buffer reduced; after compression, if any)",
        "bytes_per_call": int(np.median(rank0["bytes"])) if n_calls else 0,
        "bytes_per_step": sent // max(run_steps, 1),
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
        "bytes_saved": uncompressed - sent,
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
    return allreduce, traffic_doc
