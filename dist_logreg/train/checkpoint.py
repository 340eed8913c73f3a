"""Checkpoints: atomic, checksummed, pickle-free; found, verified and checked on resume.

A checkpoint is an ``.npz`` (``np.load(..., allow_pickle=False)``) holding ``params`` and
``velocity`` (shape ``(d + 1,)``), ``meta`` (a JSON string) and ``checksum`` (SHA-256 of the
JSON and both arrays' bytes). ``meta`` holds the step to continue from, the epoch and
position in it, the sampler and the settings that decide the trajectory; the sampler needs
no RNG state of its own, since the batch order is a function of ``(seed, epoch)``.

Writing: temp file in the same directory, flush, fsync, rename, fsync the directory; then
the oldest beyond ``keep`` are deleted. A crash at any point leaves either the old set or
the new one, never a half-written file under a checkpoint's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = 1
NAME = re.compile(r"^ckpt-(\d{8})\.npz$")
#: Settings that decide the trajectory: a checkpoint is refused if any differs.
TRAJECTORY_KEYS = (
    "batch_size",
    "lr",
    "l2",
    "momentum",
    "seed",
    "dtype",
    "compress",
    "shuffle",
    "sampling",
)


class CheckpointError(Exception):
    """A checkpoint that cannot be used: the message says why."""


@dataclass
class Checkpoint:
    """What a run continues from. ``step`` is the number of steps already done."""

    step: int
    params: np.ndarray
    velocity: np.ndarray
    meta: dict
    path: Path


def trajectory(cfg, ds) -> dict:
    """The settings and data identity that a resumed run must share with the checkpoint."""
    out = {key: getattr(cfg, key) for key in TRAJECTORY_KEYS}
    out["data"] = cfg.data or f"synthetic(samples={cfg.samples}, features={cfg.features})"
    out["samples"], out["features"] = ds.n_total, ds.n_features
    return out


def _digest(meta_json: str, params: np.ndarray, velocity: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(meta_json.encode())
    h.update(np.ascontiguousarray(params).tobytes())
    h.update(np.ascontiguousarray(velocity).tobytes())
    return h.hexdigest()


def save(directory: Path, step: int, params, velocity, meta: dict, keep: int) -> Path:
    """Write ``ckpt-<step>.npz`` atomically; delete all but the ``keep`` newest."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "format": FORMAT, "step": step}
    meta_json = json.dumps(meta, sort_keys=True)
    path = directory / f"ckpt-{step:08d}.npz"
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                params=params,
                velocity=velocity,
                meta=np.array(meta_json),
                checksum=np.array(_digest(meta_json, params, velocity)),
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    for old in sorted(candidates(directory))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def candidates(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step in the name)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if NAME.match(p.name)), key=lambda p: p.name)


def load(path: Path) -> Checkpoint:
    """Read and verify one checkpoint; ``CheckpointError`` says what is wrong with it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"params", "velocity", "meta", "checksum"} - set(z.files)
            if missing:
                raise CheckpointError(f"{path.name}: missing arrays {sorted(missing)}")
            params, velocity = z["params"], z["velocity"]
            meta_json, checksum = str(z["meta"]), str(z["checksum"])
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"{path.name}: unreadable (truncated or corrupted?): {exc}") from None
    if _digest(meta_json, params, velocity) != checksum:
        raise CheckpointError(f"{path.name}: checksum mismatch (corrupted)")
    meta = json.loads(meta_json)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: format {meta.get('format')}, expected {FORMAT}")
    return Checkpoint(int(meta["step"]), params, velocity, meta, path)


def newest_valid(directory: Path, warn) -> Checkpoint | None:
    """The newest checkpoint that verifies; each one skipped is reported through ``warn``."""
    for path in reversed(candidates(directory)):
        try:
            return load(path)
        except CheckpointError as exc:
            warn(f"checkpoint {exc}; trying the previous one")
    return None


def check_compatible(ckpt: Checkpoint, expected: dict) -> None:
    """Refuse a checkpoint written under other trajectory settings, naming the setting."""
    saved = ckpt.meta.get("trajectory", {})
    for key, value in expected.items():
        if saved.get(key) != value:
            raise CheckpointError(
                f"{ckpt.path}: written with {key} = {saved.get(key)!r}, this run has "
                f"{key} = {value!r}; resume with the same setting or use another "
                "--checkpoint-dir"
            )


class Checkpointer:
    """Saves checkpoints from rank 0; every rank holds one, so the loop reads the same.

    A failed write (disk full, directory gone) is reported and training goes on: the
    previous checkpoint stays the newest, and the run's own results are still written.
    """

    def __init__(self, rank: int, directory: Path, keep: int, meta: dict, warn):
        self.rank = rank
        self.directory = directory
        self.keep = keep
        self.meta = meta
        self.warn = warn
        self.last: int | None = None

    def save(self, steps_done: int, params: np.ndarray, velocity: np.ndarray) -> Path | None:
        if self.rank != 0:
            return None
        spe = self.meta["sampler"]["steps_per_epoch"]
        meta = {**self.meta, "epoch": steps_done // spe, "batch_in_epoch": steps_done % spe}
        try:
            path = save(self.directory, steps_done, params, velocity, meta, self.keep)
        except OSError as exc:
            self.warn(
                f"checkpoint after step {steps_done} could not be written to "
                f"{self.directory}: {exc.strerror or exc}; training goes on, the "
                "previous checkpoint stays the newest"
            )
            return None
        self.last = steps_done
        return path
