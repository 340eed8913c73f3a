"""Checkpoints: atomic, checksummed, pickle-free; found, verified and checked on resume.

A checkpoint is an ``.npz`` (``np.load(..., allow_pickle=False)``) holding ``params`` and
``velocity`` (both of the model's ``n_params`` shape: ``(d + 1,)`` binary, ``(K (d + 1),)``
softmax), ``meta`` (a JSON string) and ``checksum`` (SHA-256 of the
JSON and both arrays' bytes). ``meta`` holds the step to continue from, the epoch and
position in it, the sampler and the settings that decide the trajectory; the sampler needs
no RNG state of its own, since the batch order is a function of ``(seed, epoch)``.

Writing: temp file in the same directory, flush, fsync, rename, fsync the directory; then
the oldest beyond ``keep`` are deleted. A crash at any point leaves either the old set or
the new one, never a half-written file under a checkpoint's name (a temp file left by a
kill is removed at the next start, :func:`clean_temporary`).

Several runs may share a checkpoint directory. Each run's files carry its identity, a hash
of its trajectory settings and data fingerprint, in the name (``ckpt-<step>-<run>.npz``):
pruning deletes only the run's own files, and ``--resume`` takes the newest *compatible*
checkpoint, skipping other runs' ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dist_logreg.errors import UsageError
from dist_logreg.files import loads
from dist_logreg.train.config import DEFAULT_FEATURES

FORMAT = 1
#: ``ckpt-<step>-<run>.npz``; files without the run part come from older versions.
NAME = re.compile(r"^ckpt-([0-9]{8})(?:-([0-9a-f]{12}))?\.npz$")
#: Settings that decide the trajectory: a checkpoint is refused if any differs.
TRAJECTORY_KEYS = (
    "batch_size",
    "lr",
    "l2",
    "momentum",
    "seed",
    "dtype",
    "compress",
    "label_column",
    "shuffle",
    "sampling",
)
#: A periodic checkpoint is a *good* state to fall back to after a divergence when its
#: batch loss is at most this many times the lowest batch loss seen so far in the run.
RISING = 2.0
#: Temporary files of other runs older than this are left-overs of a kill: removed.
STALE_TMP_S = 600


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


def trajectory(cfg, ds, fingerprint: str) -> dict:
    """The settings and data identity that a resumed run must share with the checkpoint."""
    out = {key: getattr(cfg, key) for key in TRAJECTORY_KEYS}
    features = cfg.features or DEFAULT_FEATURES
    out["data"] = cfg.data or f"synthetic(samples={cfg.samples}, features={features})"
    out["samples"], out["features"] = ds.n_total, ds.n_features
    out["fingerprint"] = fingerprint  # the same path may hold other rows than last time
    return out


def run_id(expected: dict) -> str:
    """The run's identity in checkpoint names: 12 hex digits of a hash of its trajectory."""
    return hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:12]


def _digest(meta_json: str, params: np.ndarray, velocity: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(meta_json.encode())
    h.update(np.ascontiguousarray(params).tobytes())
    h.update(np.ascontiguousarray(velocity).tobytes())
    return h.hexdigest()


def save(
    directory: Path,
    step: int,
    params,
    velocity,
    meta: dict,
    keep: int,
    run: str | None = None,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write ``ckpt-<step>-<run>.npz`` atomically; delete all but the ``keep`` newest of
    this run (never another run's files, nor those in ``protect``)."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "format": FORMAT, "step": step, "run": run}
    meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    path = directory / (f"ckpt-{step:08d}-{run}.npz" if run else f"ckpt-{step:08d}.npz")
    fd, tmp = tempfile.mkstemp(prefix=f".ckpt-{run or 'x'}-", suffix=".tmp", dir=directory)
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
    for old in candidates(directory, run)[:-keep]:
        if old not in protect:
            old.unlink(missing_ok=True)
    return path


def candidates(directory: Path, run: str | None = None) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step); only ``run``'s if given."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = NAME.match(p.name)
        if m and (run is None or m.group(2) == run):
            found.append((int(m.group(1)), p.name, p))
    return [p for _, _, p in sorted(found)]


def step_of(path: Path) -> int:
    """The step in a checkpoint's name."""
    return int(NAME.match(path.name).group(1))


def clean_temporary(directory: Path, run: str) -> list[Path]:
    """Remove temp files left by a kill during a write: this run's, and stale ones."""
    removed = []
    if not directory.is_dir():
        return removed
    for p in directory.glob(".ckpt-*.tmp"):
        try:
            stale = time.time() - p.stat().st_mtime > STALE_TMP_S
            if p.name.startswith(f".ckpt-{run}-") or stale:
                p.unlink()
                removed.append(p)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def load(path: Path) -> Checkpoint:
    """Read and verify one checkpoint; ``CheckpointError`` says what is wrong with it."""
    from dist_logreg.train.readers import npz_arrays

    try:
        z = npz_arrays(path, "checkpoint", ("params", "velocity", "meta", "checksum"))
        params, velocity = z["params"], z["velocity"]
        meta_json, checksum = str(z["meta"]), str(z["checksum"])
    except UsageError as exc:  # a FIFO; a member whose header claims more than it holds
        raise CheckpointError(f"{path.name}: unreadable: {str(exc).partition(': ')[2]}") from None
    if _digest(meta_json, params, velocity) != checksum:
        raise CheckpointError(f"{path.name}: checksum mismatch (corrupted)")
    try:
        meta = loads(meta_json)
        step = meta["step"]
        features = meta.get("trajectory", {}).get("features")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path.name}: malformed metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: format {meta.get('format')}, expected {FORMAT}")
    # the step its name says, which the search for one at or before the run's end read (a
    # meta.step of 10^12 under a name of step 40 was resumed "after step 10^12", and the
    # finished run's summary replaced by one of zeros: twelfth attack, L-H15)
    named = NAME.match(path.name)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path.name}: meta.step: expected a whole number >= 0, got {step!r}")
    if named and step != int(named.group(1)):
        raise CheckpointError(
            f"{path.name}: meta.step {step} differs from its name's step {int(named.group(1))}"
        )
    # A checksum only proves the file is what was written, not that it fits: check shapes.
    for name, a in (("params", params), ("velocity", velocity)):
        if a.ndim != 1 or a.dtype.kind != "f" or (features is not None and a.size != features + 1):
            raise CheckpointError(
                f"{path.name}: expected {name} of shape ({features} + 1,) floats for "
                f"{features} features, got shape {a.shape} {a.dtype}"
            )
        if not np.isfinite(a).all():  # resumed, it "diverged" at once: exit 4 (L-M5)
            raise CheckpointError(f"{path.name}: {name}: expected finite numbers, got nan or inf")
    return Checkpoint(step, params, velocity, meta, path)


def newest_usable(
    directory: Path, expected: dict, max_step: int, warn
) -> tuple[Checkpoint | None, list[str]]:
    """The newest checkpoint of this run's trajectory at or before ``max_step``.

    Other runs' files (another identity in the name, or an older version's file written
    under other settings) and files past ``max_step`` are skipped; unreadable or corrupted
    ones are reported through ``warn`` and the previous one is tried. Returns the
    checkpoint (or None) and notes on what was skipped. Raises ``CheckpointError`` naming
    the differing setting when the directory holds only other runs' checkpoints (most
    likely the wrong ``--checkpoint-dir``, or a changed setting).
    """
    run = run_id(expected)
    notes, foreign, own = [], [], 0
    for path in reversed(candidates(directory)):
        tag = NAME.match(path.name).group(2)
        if tag not in (None, run):
            foreign.append(path)
            continue
        own += 1
        if step_of(path) > max_step:
            notes.append(f"{path.name} is past the run's last step ({max_step})")
            continue
        try:
            ckpt = load(path)
            check_compatible(ckpt, expected)
        except CheckpointError as exc:
            if tag is None and "written with" in str(exc):
                foreign.append(path)  # an older version's file, of another run
                own -= 1
            else:
                warn(f"checkpoint {exc}; trying the previous one")
            continue
        if foreign:
            notes.append(f"skipped {len(foreign)} newer checkpoint(s) of other runs")
        return ckpt, notes
    for path in foreign if not own else ():
        try:
            other = load(path)
        except CheckpointError:
            continue
        check_compatible(other, expected)  # raises, naming the setting that differs
    if foreign:
        notes.append(f"skipped {len(foreign)} checkpoint(s) of other runs")
    return None, notes


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

    It also remembers the newest *good* checkpoint, saved while the batch loss was not
    rising sharply (at most :data:`RISING` times the lowest so far), and keeps that file
    out of pruning: after a divergence it is the state to go back to, not the last finite
    one (whose parameters may already be near overflow).
    """

    def __init__(self, rank: int, directory: Path, keep: int, meta: dict, warn, on_save=None):
        self.rank = rank
        self.directory = directory
        self.keep = keep
        self.meta = meta
        self.run = meta.get("run") or run_id(meta["trajectory"])
        self.warn = warn
        self.on_save = on_save  # called with the step after each checkpoint written
        self.last: int | None = None
        self.good: tuple[int, Path, float] | None = None  # step, file, batch loss

    def save(
        self, steps_done: int, params: np.ndarray, velocity: np.ndarray, losses=None
    ) -> Path | None:
        """Write a checkpoint (rank 0); ``losses``: this run's batch losses so far."""
        if self.rank != 0:
            return None
        spe = self.meta["sampler"]["steps_per_epoch"]
        meta = {**self.meta, "epoch": steps_done // spe, "batch_in_epoch": steps_done % spe}
        protect = (self.good[1],) if self.good else ()
        try:
            path = save(
                self.directory, steps_done, params, velocity, meta, self.keep, self.run, protect
            )
        except OSError as exc:
            self.warn(
                f"checkpoint after step {steps_done} could not be written to "
                f"{self.directory}: {exc.strerror or exc}; training goes on, the previous "
                "checkpoint stays the newest"
            )
            return None
        self.last = steps_done
        if losses is not None and len(losses):
            loss, lowest = float(losses[-1]), float(np.nanmin(losses))
            if np.isfinite(loss) and loss <= RISING * lowest:
                old, self.good = self.good, (steps_done, path, loss)
                if old and old[1] not in candidates(self.directory, self.run)[-self.keep :]:
                    old[1].unlink(missing_ok=True)  # kept out of turn until now
        if self.on_save is not None:
            self.on_save(steps_done)
        return path


def good_state_note(checkpointer: Checkpointer | None) -> str:
    """For a divergence message: where the state from before the loss rose is (rank 0's).

    Not the last finite state: by the time a value overflows, the parameters have been
    blowing up for several steps. The checkpointer keeps the newest checkpoint whose batch
    loss was still near the lowest seen, out of turn if need be.
    """
    if checkpointer is None:
        return "; no checkpoints were written (--checkpoint-every keeps a good state)"
    if checkpointer.good is None:
        return "; no checkpoint was written before the loss started to rise"
    step, path, loss = checkpointer.good
    return (
        f"; the last good state, from before the loss started to rise, is the checkpoint "
        f"after step {step} (batch loss {loss:.6g}): {path}"
    )
