"""The files of a run: the output directory, the final files, periodic partial flushes, and
the rescue of results when the output directory fails. Written by rank 0, except the
partial flushes, which each rank writes for itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.train.loop import PHASES, TrainResult


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
    """Rank 0 writes model.npz, summary.json, traffic.json, metrics.jsonl, steps.jsonl, config
    (and eval.jsonl, one line per held-out evaluation, when there is a held-out set)."""
    np.savez(out_dir / "model.npz", **result.model_arrays())
    _write_json(out_dir / "summary.json", summary)
    _write_json(out_dir / "traffic.json", traffic)
    _write_json(out_dir / "config.json", config)
    with (out_dir / "metrics.jsonl").open("w") as fh:
        for r in per_rank:
            origin = int(r["marks"][0, 0]) if r["marks"].size else 0
            fh.writelines(metric_lines(r["rank"], r["calls"], origin))
    if result.evals:
        with (out_dir / "eval.jsonl").open("w") as fh:
            fh.writelines(json.dumps(e) + "\n" for e in result.evals)
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
    np.savez(where / "model.npz", **result.model_arrays())
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
