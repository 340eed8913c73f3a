"""The summary's ``sync`` block: how the gradient was synchronised, per collective, and the
optimizer state each rank held (pure numpy, on rank 0 from the gathered records).

``--sync allreduce``: one collective, the allreduce (its numbers are the ``allreduce``
block's). ``--sync sharded``: the records carry ``collective`` (an index into
``collective_names``), and each collective gets its calls, payload bytes and latency.
Optimizer state: the momentum vector, whole on every rank in allreduce mode, a ``1/p`` slice
in sharded mode (the slices of the packed buffer's chunks that hold parameters).
"""

from __future__ import annotations

import numpy as np


def _latency(ns: np.ndarray) -> dict:
    s = ns.astype(np.float64) * 1e-9
    if not s.size:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
    return {
        "p50": float(np.percentile(s, 50)),
        "p99": float(np.percentile(s, 99)),
        "mean": float(s.mean()),
    }


def state_bytes(sync: str, momentum: float, n_params: int, n: int, p: int, item: int):
    """Momentum bytes held by each rank (a list of ``p``)."""
    if not momentum:
        return [0] * p
    if sync != "sharded":
        return [n_params * item] * p
    b = [k * n // p for k in range(p + 1)]  # the chunks of comm.links.bounds
    return [(min(b[r + 1], n_params) - min(b[r], n_params)) * item for r in range(p)]


def sync_block(per_rank: list[dict], cfg, n_params: int, buffer_size: int, algorithm) -> dict:
    """``summary["sync"]`` from every rank's records (all ranks make the same calls)."""
    p, item = len(per_rank), np.dtype(cfg.dtype).itemsize
    per = state_bytes(cfg.sync, cfg.momentum, n_params, buffer_size, p, item)
    block = {
        "mode": cfg.sync,
        "optimizer_state_bytes_per_rank": per,
        "optimizer_state_bytes_max": max(per),
        "optimizer_state_note": "momentum held per rank (the parameters themselves are "
        "whole on every rank in both modes); sharded: each rank's 1/p slice",
    }
    calls = [r["calls"] for r in per_rank]
    names = calls[0].get("collective_names")
    if not names:
        block["collectives"] = {"allreduce": {"algorithm": algorithm}}
        return block
    block["collectives"] = {}
    for k, name in enumerate(names):
        picked = [c["collective"] == k for c in calls]
        rank0 = calls[0]["bytes"][picked[0]]
        ns = np.concatenate([c["ns"][m] for c, m in zip(calls, picked, strict=True)])
        block["collectives"][name] = {
            "algorithm": algorithm[k] if isinstance(algorithm, tuple) else algorithm,
            "calls": int(rank0.size),
            "bytes": int(rank0.sum()),
            "bytes_per_call": int(np.median(rank0)) if rank0.size else 0,
            "bytes_note": "payload bytes per rank, nccl-tests' size: the whole packed "
            "buffer (the reduce-scatter's input, the allgather's output)",
            "latency_s": _latency(ns),
        }
    return block
