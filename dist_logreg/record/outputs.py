"""The files of a run: the output directory, the final files, periodic partial flushes, and
the rescue of results when the output directory fails. Written by rank 0, except the
partial flushes, which each rank writes for itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import not_an_input, strict_json, write_atomically, write_json
from dist_logreg.protocol import claim, release
from dist_logreg.record.result import PHASES, TrainResult
from dist_logreg.record.stragglers import step_predictions

#: What a run leaves in its ``--out`` (besides ``partial/`` and checkpoints).
RESULT_FILES = (
    "summary.json",
    "traffic.json",
    "config.json",
    "model.npz",
    "metrics.jsonl",
    "steps.jsonl",
    "eval.jsonl",
    "trace.json",  # --trace's (a link there was written through: fourteenth attack, P-H3)
)


def prepare_out_dir(
    comm,
    requested: str | None,
    attempt: int = 1,
    fresh: bool = False,
    force: bool = False,
    checkpoints: str | None = None,
    reads=(),
) -> tuple[Path, int]:
    """Collective: rank 0 picks (default ``runs/train-<time>``) and creates the output directory.

    Done before training, so an unwritable directory fails in seconds, not after the run.
    Also returns this run's attempt number in the directory: ``attempt`` (from the
    supervisor), or the next free one if ``partial/`` already holds that attempt's files
    (a run started again by hand), so no run appends to or removes another's records.
    ``fresh`` (no ``--resume``): a directory holding another run's results is refused, or
    with ``force`` emptied of them first, so no report merges two independent runs.
    """
    error, path = None, None
    if comm.Get_rank() == 0:
        path = Path(requested) if requested else _default_out_dir()
        try:
            error = _an_input(path, reads)  # --data RUN/model.npz --force was replaced (R-M1)
            path.mkdir(parents=True, exist_ok=True)
            if error is None and (other := claim(path)):  # before --force clears (X-H17)
                error = UsageError(
                    f"--out {path}: another run ({other}) is writing there; expected a "
                    "directory of its own (or wait until that run ends)"
                )
            if fresh and error is None:
                error = _refuse_or_clear(path, force)
            error = error or _not_files(path) or _a_folder(checkpoints)
            if error is not None:
                release(path)  # refused: not this run's folder (another's marker stays)
            probe = path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            taken = [int(m.group(1)) for m in map(_ATTEMPT.match, _partial_names(path)) if m]
            if attempt in taken:
                attempt = max(taken) + 1
        except OSError as exc:
            error = UsageError(f"--out {path}: cannot write there: {exc.strerror or exc}")
    raise_together(comm, error)
    where, attempt = comm.bcast((str(path), attempt), root=0)
    return Path(where), attempt


#: A ranks' record in ``partial/``, either kind (a ``steps-`` name alone did not move a run
#: to the next attempt, so it appended to a file planted there: nineteenth attack, X-H8).
_ATTEMPT = re.compile(r"^(?:metrics|steps)-attempt([0-9]+)-")


def _an_input(path: Path, reads) -> UsageError | None:
    """A file the run reads (``--data``, ``--val-data``; a pair's file) at a result's name."""
    parts = [x for r in reads if r for x in str(r).split(",")]
    for name in RESULT_FILES:
        try:
            not_an_input(path / name, parts, "a file it reads")
        except UsageError as exc:
            return exc
    return None


def _a_folder(checkpoints: str | None) -> UsageError | None:
    """``--checkpoint-dir`` that is there but no folder (a file, a FIFO, /dev/null): every
    checkpoint failed with a warning and the run ended 0 with none (fourteenth attack,
    P-M4); refused before training."""
    if checkpoints and os.path.lexists(checkpoints) and not os.path.isdir(checkpoints):
        return UsageError(
            f"--checkpoint-dir {checkpoints}: expected a directory (or none: it is made), "
            "got a file"
        )
    return None


def _not_files(path: Path) -> UsageError | None:
    """A result's name in ``--out`` that is a symbolic link, FIFO or folder: the logs a run
    appends to are opened by name, so a resumed run appended its lines to the file a link
    named, outside ``--out`` (thirteenth attack, M-H7), and a FIFO would block."""
    for folder in ("partial", "checkpoints"):  # the ranks' records, the default checkpoints
        if (path / folder).is_symlink():  # went where it pointed (checkpoints: P-H3)
            return UsageError(
                f"--out {path}: {folder}: expected a folder (or none), got a symbolic link "
                "(it is not followed); remove it, or give a new directory"
                + ("; --checkpoint-dir keeps checkpoints elsewhere" if folder != "partial" else "")
            )
    names = [*RESULT_FILES, *(f"partial/{n}" for n in _partial_names(path))]
    for name in names:  # a record in partial/ too: appended to by name (X-H8)
        p = path / name
        if p.is_symlink() or (p.exists() and not p.is_file()):
            kind = (
                "a symbolic link (it is not followed)"
                if p.is_symlink()
                else "a folder"
                if p.is_dir()
                else "a FIFO, device or socket (it would block)"
            )
            return UsageError(
                f"--out {path}: {name}: expected a regular file (or none), got {kind}; remove "
                "it, or give a new directory"
            )
    return None


def _refuse_or_clear(path: Path, force: bool) -> UsageError | None:
    """A fresh run's ``--out``: a ``UsageError`` (returned, for raise_together) if it holds
    another run's results, unless ``force``, which removes them (checkpoints stay: they are
    named by their settings)."""
    found = held_results(path)
    if not found:
        return None
    if not force:
        return UsageError(
            f"--out {path}: holds another run's results ({_shown(found)}); expected a new "
            "directory, --resume to continue that run, or --force to replace its results"
        )
    for name in found:
        (path / name).unlink()
    return None


def refuse_fresh_start(path: Path, force: bool) -> UsageError | None:
    """``--resume`` found no checkpoint to continue from, so the run starts from step 0: as
    a fresh run, it may not replace the results in ``path`` without ``force`` (then it
    removes them). The error names the results; None where there are none."""
    found = held_results(path)
    if found and not force:
        return UsageError(
            f"--resume: no usable checkpoint to continue from, and --out {path} holds a "
            f"run's results ({_shown(found)}) that starting from step 0 would replace; "
            "expected a run with checkpoints (--checkpoint-every), a new directory, or "
            "--force to replace its results"
        )
    return _refuse_or_clear(path, True)


def refuse_rewind(out_dir: Path, completed: int, steps: int, force: bool, asked=""):
    """``--resume`` with fewer ``--steps`` (or ``--epochs``: ``asked``) than the completed
    run in ``out_dir``: a ``UsageError`` naming both counts, or with ``force`` None (the
    run starts over)."""
    if force:
        return None
    asked = asked or f"--steps {steps}"
    more = f"--steps {completed}" if asked.startswith("--steps") else f"{completed} steps"
    how = "" if asked.startswith("--steps") else " (--steps, and --epochs that make as many)"
    return UsageError(
        f"--resume: --out {out_dir} holds a run that completed {completed} steps, and "
        f"{asked} would replace its summary and model with those of step {steps}; "
        f"expected {more} or more{how}, a new --out, or --force to run its first "
        f"{steps} steps again from step 0 (its checkpoints stay)"
    )


def held_results(path: Path) -> list[str]:
    """The result files (and ``partial/`` records) of a run in ``path``."""
    if not path.is_dir():
        return []
    found = [n for n in RESULT_FILES if (path / n).exists()]
    return found + [f"partial/{n}" for n in sorted(_partial_names(path))]


def _shown(found: list[str]) -> str:
    return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")


def _partial_names(out_dir: Path) -> list[str]:
    folder = out_dir / "partial"
    return [p.name for p in folder.iterdir()] if folder.is_dir() else []


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
    predict=None,
    attempt: int = 1,
    append: bool = False,
) -> None:
    """Rank 0 writes model.npz, summary.json, traffic.json, metrics.jsonl, steps.jsonl, config
    (and eval.jsonl, one line per held-out evaluation, when there is a held-out set).

    ``predict`` (bytes -> seconds, from a cost model): adds ``predicted_s`` to every call in
    metrics.jsonl and every step in steps.jsonl (the sum over its calls). ``append``: a
    resumed run adds its lines to ``metrics.jsonl`` and ``steps.jsonl`` (each line says its
    ``attempt``) instead of replacing what an earlier run of the same directory recorded.
    """
    buf = io.BytesIO()
    np.savez(buf, **result.model_arrays())
    write_atomically(out_dir / "model.npz", buf.getvalue())  # whole, never through a link
    write_json(out_dir / "summary.json", summary)
    write_json(out_dir / "traffic.json", traffic)
    write_json(out_dir / "config.json", config)
    # start_aligned_s: on rank 0's clock (offsets measured at start-up), from the earliest
    # rank's first step, so ranks compare: who arrived late at which allreduce.
    aligned = [int(r["marks"][0, 0]) + r["clock_offset_ns"] for r in per_rank if r["marks"].size]
    common = min(aligned, default=0)
    mode = "a" if append else "w"
    with (out_dir / "metrics.jsonl").open(mode) as fh:
        for r in per_rank:
            origin = int(r["marks"][0, 0]) if r["marks"].size else 0
            fh.writelines(
                metric_lines(
                    r["rank"],
                    r["calls"],
                    origin,
                    aligned=common - r["clock_offset_ns"],
                    predict=predict,
                    attempt=attempt,
                )
            )
    if result.evals:
        with (out_dir / "eval.jsonl").open(mode) as fh:
            fh.writelines(strict_json(e) + "\n" for e in result.evals)
    with (out_dir / "steps.jsonl").open(mode) as fh:
        for r in per_rank:
            pred = None
            if predict is not None:
                pred = step_predictions(r["calls"], result.first_step, len(r["phase_ns"]), predict)
            for i, row in enumerate((r["phase_ns"] * 1e-9).tolist()):
                rec = {"step": result.first_step + i, "rank": r["rank"], "attempt": attempt}
                rec.update({f"{ph}_s": v for ph, v in zip(PHASES, row, strict=True)})
                rec["batch_loss"] = float(result.batch_loss[i])
                if pred is not None:
                    rec["predicted_s"] = float(pred[i])
                fh.write(strict_json(rec) + "\n")

    release(out_dir)  # the run is written: another may use the folder


class PartialMetrics:
    """Each rank appends its allreduce records to ``<out>/partial/`` every few steps.

    One file per attempt, start step and rank (``metrics-attempt<a>-from<step>-rank<r>.jsonl``,
    the lines of ``metrics.jsonl`` with the attempt, and ``start_s`` from the rank's first
    call of the run), so a run that dies keeps what it measured, and no later attempt, not
    even one from the same checkpoint, appends to or removes it. The run's own files are
    removed when it completes and ``metrics.jsonl`` holds everything it measured.
    """

    def __init__(self, out_dir: Path, rank: int, first_step: int, warn, attempt: int = 1):
        name = f"attempt{attempt}-from{first_step}-rank{rank}.jsonl"
        self.path = out_dir / "partial" / f"metrics-{name}"
        self.steps_path = out_dir / "partial" / f"steps-{name}"
        self.rank = rank
        self.first_step = first_step
        self.attempt = attempt
        self.done = 0
        self.steps_done = 0
        self.warn = warn

    def flush(self, allreduce, n_steps=None, marks=None, comm_ns=None, batch_loss=None) -> None:
        """Append the calls (and, given the loop's arrays, the first ``n_steps`` step rows,
        as ``steps.jsonl`` has them) not yet saved."""
        rec = allreduce.records()
        lines = []
        if rec["ns"].size > self.done:
            lines = metric_lines(
                self.rank, rec, int(rec["start_ns"][0]), self.done, attempt=self.attempt
            )
        rows = []
        if n_steps is not None and n_steps > self.steps_done:
            rows = self._step_lines(n_steps, marks, comm_ns, batch_loss)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for path, new in ((self.path, lines), (self.steps_path, rows)):
                if new:
                    with _append(path) as fh:
                        fh.writelines(new)
        except OSError as exc:
            self.warn(f"could not save partial metrics to {self.path}: {exc.strerror or exc}")
            return
        self.done = rec["ns"].size
        self.steps_done = n_steps if rows else self.steps_done

    def _step_lines(self, n_steps, marks, comm_ns, batch_loss) -> list[str]:
        lo = self.steps_done
        phase_ns = TrainResult.phases_of(marks[lo:n_steps], comm_ns[lo:n_steps])
        out = []
        for i, row in enumerate((phase_ns * 1e-9).tolist()):
            rec = {"step": self.first_step + lo + i, "rank": self.rank, "attempt": self.attempt}
            rec.update({f"{ph}_s": v for ph, v in zip(PHASES, row, strict=True)})
            rec["batch_loss"] = float(batch_loss[lo + i])
            out.append(strict_json(rec) + "\n")
        return out

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.steps_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # only if no other run's files are left


def _append(path: Path):
    """``path`` opened to append text: never through a link, never a FIFO or device (one
    planted in ``partial/`` while the run went on: X-H8), an ``OSError`` instead."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return os.fdopen(fd, "a")


def rescue(summary: dict, result: TrainResult, error: OSError) -> Path:
    """Writing to --out failed: save the model and summary to a fresh temporary directory."""
    where = Path(tempfile.mkdtemp(prefix="dist-logreg-rescue-"))
    np.savez(where / "model.npz", **result.model_arrays())
    write_json(where / "summary.json", {**summary, "rescued_because": str(error)})
    return where


def metric_lines(
    rank: int,
    calls: dict,
    origin: int,
    first: int = 0,
    aligned: int | None = None,
    predict=None,
    attempt: int = 1,
) -> list[str]:
    """``metrics.jsonl`` lines for one rank's calls from index ``first``; times from ``origin``.

    With ``aligned`` (the common origin expressed on this rank's clock), each line also has
    ``start_aligned_s``, comparable across ranks. ``predict`` (bytes -> seconds): adds each
    call's predicted time as ``predicted_s``. ``attempt``: which attempt of a supervised run.
    """
    names = calls.get("collective_names")  # --sync sharded: two collectives per step
    which = calls["collective"][first:].tolist() if names else None
    lines = []
    for i, (step, nbytes, ns, start) in enumerate(
        zip(
            calls["step"][first:].tolist(),
            calls["bytes"][first:].tolist(),
            calls["ns"][first:].tolist(),
            calls["start_ns"][first:].tolist(),
            strict=True,
        )
    ):
        line = {
            "step": step,
            "rank": rank,
            **({"collective": names[which[i]]} if names else {}),
            "bytes": nbytes,
            "seconds": ns * 1e-9,
            "start_s": (start - origin) * 1e-9,
            **({} if aligned is None else {"start_aligned_s": (start - aligned) * 1e-9}),
            **({"predicted_s": predict(nbytes)} if predict else {}),
            "attempt": attempt,
        }
        lines.append(json.dumps(line, allow_nan=False) + "\n")
    return lines
