"""The start of a ``train`` run on this rank: configuration, data, the memory they need, and
the agreement of all ranks on both, in ONE small control message.

Every rank reads its own command line, config file and data file, so ranks can differ: a
different ``--steps`` on one node hangs the job at the first collective that only some
ranks make, a different ``--features`` kills it with ``MPI_ERR_TRUNCATE``, and a different
``--seed`` or data file silently trains on mixed data. So, after each rank has loaded
everything on its own, one allgather carries each rank's verdict (an error, or none), its
resolved configuration and a fingerprint of its data; every rank then computes the same
verdict from the same gathered views and fails together, naming the setting and the ranks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from dist_logreg.collective import algorithms as table
from dist_logreg.comm.mpilib import mpi_algorithm_record
from dist_logreg.errors import UsageError, raise_together
from dist_logreg.files import read_json
from dist_logreg.record.outputs import refuse_fresh_start, refuse_rewind
from dist_logreg.train import checkpoint as ckpt
from dist_logreg.train import data as data_mod
from dist_logreg.train.config import DEFAULT_FEATURES, TrainConfig, to_dict, total_steps
from dist_logreg.train.data import check_values
from dist_logreg.train.faults import attempt
from dist_logreg.train.options import flag_values, load_toml, resolve
from dist_logreg.train.prepare import Prepared, prepare
from dist_logreg.train.sampling import BatchPlan, make_plan
from dist_logreg.train.shards import agree_shards
from dist_logreg.train.validation import validate_for_run
from dist_logreg.units import format_bytes

#: Bytes each rank keeps per allreduce call and step until the end: the instrumentation's
#: four Python lists of ints (about 4 x 40 B), the loop's timestamps, comm time and batch
#: loss (56 B), and the arrays they become at the end (about 40 B). An estimate.
RECORD_BYTES = 256
#: Environment variables in which launchers give the number of ranks on this node.
LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE")


@dataclasses.dataclass
class Start:
    """What a rank starts training with, the same on every rank once agreed."""

    cfg: TrainConfig  # ``steps`` resolved (never None)
    ds: data_mod.Dataset
    fingerprint: str
    mpi_record: dict | None
    prep: Prepared  # the rows again, with their labels, model and held-out rows
    plan: BatchPlan  # which rows each step reads on this rank


def start(comm, args, watchdog, say=None) -> Start:
    """Collective: load and validate everything, and agree with every rank.

    Two small control messages: the configurations first (so that no rank goes on to load
    data that others will not, which for LIBSVM files is itself collective), then the
    resolved configurations with a fingerprint of the data.
    """
    size = comm.Get_size()
    with watchdog.phase("start-up: which ranks share this machine's memory (allgather)"):
        local = ranks_sharing_memory(comm)
    error, cfg, mpi_record = None, None, None
    try:  # every rank reads its files itself: a node may lack one, or hold another
        file_values = load_toml(args.config) if getattr(args, "config", None) else {}
        cfg = resolve(file_values, flag_values(args))
        if table.get(cfg.allreduce).library:  # resolve() validated the name
            from mpi4py import MPI

            mpi_record = mpi_algorithm_record(cfg.mpi_algorithm, MPI.Get_library_version())
        check_synthetic_memory(cfg, local)
    except UsageError as exc:
        error = exc
    with watchdog.phase("start-up agreement on the configuration (allgather)"):
        views = raise_together(comm, error, None if cfg is None else to_dict(cfg))
    check_agreement([(v, "") for v in views])
    with watchdog.phase(
        "loading the data, then the start-up agreement on the configuration and data (allgather)"
    ):
        prep = prepare(comm, cfg, say)
        ds = prep.ds
        agree_shards(comm, ds, cfg.batch_size)  # sharded: total rows, each shard's offset
        plan = make_plan(comm, cfg, ds)
    error, view, result = None, None, None
    try:
        validate_for_run(cfg, size, ds.n_total)  # resolve() checked the settings alone
        # Record the resolved step count (config.json, checkpoints, the agreement).
        steps = total_steps(cfg, ds.n_total, plan.steps_per_epoch)
        cfg = dataclasses.replace(cfg, steps=steps)
        width = f"{ds.n_features} features"
        if ds.sparse and not cfg.features:
            width += f", the largest feature index in {cfg.data}"
        check_memory(
            run_bytes(cfg, prep.model.buffer_size, size),
            f"recording {cfg.steps} steps (about {RECORD_BYTES} B per allreduce call, kept "
            f"until the end) and the step buffers of a model of {width}",
            "fewer --steps or --epochs, or fewer features (a LIBSVM index that is a typo, "
            "or --features D)",
            local,
        )
        # Sharded ranks hold different rows by design: they agree on the whole set's shape.
        fp = fingerprint(ds) if not ds.sharded else f"{ds.n_total}x{ds.n_features} sharded"
        view = (to_dict(cfg), fp)
        result = Start(cfg, ds, fp, mpi_record, prep, plan)
    except UsageError as exc:
        error = exc
    with watchdog.phase("start-up agreement on the configuration and data (allgather)"):
        views = raise_together(comm, error, view)
    check_agreement(views)
    with watchdog.phase("checking the data values (allgather)"):
        check_values(comm, result.ds, result.prep.model.n_classes)  # NaN, labels: in parts
    return result


def fingerprint(ds: data_mod.Dataset, rows: int = 64) -> str:
    """A short identity of the rows: shape, dtype and a hash of evenly spaced sample rows.

    Cheap (reads ``rows`` rows of ``X`` and as many labels, also from a memory map), and
    the same on every rank that holds the same data, whatever its path. Ranks compare it at
    start-up, and checkpoints record it.
    """
    n = ds.n_samples
    idx = np.unique(np.linspace(0, n - 1, num=min(rows, n)).astype(np.int64))
    h = hashlib.sha256(f"{ds.X.shape} {ds.X.dtype.str} {ds.y.dtype.str}".encode())
    rows_x = ds.X[idx].toarray() if ds.sparse else ds.X[idx]  # CSR rows: made dense
    h.update(np.ascontiguousarray(rows_x).tobytes())
    h.update(np.ascontiguousarray(ds.y[idx]).tobytes())
    return f"{n}x{ds.n_features} {ds.X.dtype.name} sha256:{h.hexdigest()[:16]}"


def check_agreement(views: list[tuple[dict[str, Any], str]]) -> None:
    """``UsageError`` naming the first setting (or the data) on which ranks differ."""
    configs = [v[0] for v in views]
    for key in configs[0]:
        _same([c[key] for c in configs], "--" + key.replace("_", "-"))
    _same(
        [v[1] for v in views],
        "the data (rows x features, dtype and a hash of sample rows)",
        "; the same --data path holds different files on different nodes?",
    )


def _same(values: list, what: str, hint: str = "") -> None:
    groups: dict[str, list[int]] = {}
    for rank, value in enumerate(values):
        groups.setdefault(repr(value), []).append(rank)
    if len(groups) > 1:
        parts = "; ".join(
            f"{value} on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"
            for value, ranks in groups.items()
        )
        raise UsageError(
            f"ranks disagree on {what}: {parts}{hint} (every rank must run the same "
            "command line, config file and data)"
        )


def run_bytes(cfg: TrainConfig, buffer_elements: int, size: int) -> int:
    """Memory a rank needs besides the data: records for every step, and the buffers."""
    calls = cfg.steps
    item = np.dtype(cfg.dtype).itemsize
    if cfg.bucket_bytes:
        calls *= -(-buffer_elements * item // cfg.bucket_bytes)
    rows = -(-cfg.batch_size // size)
    return calls * RECORD_BYTES + (rows + 8) * buffer_elements * item


def available_memory() -> int | None:
    """Bytes of memory available on this machine (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def ranks_on_this_node() -> int:
    """How many ranks share this machine's memory, as the launcher says (else 1)."""
    for var in LOCAL_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def machine_id() -> str:
    """This machine's identity: the kernel's boot id, the same in every network namespace
    (the emulated hosts of `dist-logreg cluster` are namespaces of one machine, which the
    launcher counts as separate nodes), else the host name."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        import socket

        return socket.gethostname()


def ranks_sharing_memory(comm) -> int:
    """Collective: how many ranks run on this rank's machine (they share its memory)."""
    ids = comm.allgather(machine_id())
    return max(ranks_on_this_node(), ids.count(ids[comm.Get_rank()]))


def synthetic_bytes(cfg: TrainConfig) -> int:
    """Bytes a rank allocates to build the synthetic set of ``cfg`` (no ``--data``): its
    rows and labels, and for a K-class set (``--classes K``) the true weights (K x
    features) and a block's scores (prepare.synthetic_classes: about four arrays of
    ``SYNTH_BLOCK`` x K)."""
    features = cfg.features or DEFAULT_FEATURES
    total = cfg.samples * (features + 1) * np.dtype(cfg.dtype).itemsize
    if cfg.classes:
        block = min(cfg.samples, data_mod.SYNTH_BLOCK)
        total += 8 * cfg.classes * (features + 4 * block)
    return total


def check_synthetic_memory(
    cfg: TrainConfig,
    local: int | None,
    advice: str | None = None,
) -> None:
    """``UsageError`` before the synthetic set of ``cfg`` is built, if this machine's ranks
    could not hold it (:func:`check_memory`); nothing with ``--data``. ``train`` at start-up
    and ``predict`` (the run's own rows, from its ``config.json``) both check here."""
    if cfg.data:
        return
    features = cfg.features or DEFAULT_FEATURES
    kind = f", {cfg.classes} classes" if cfg.classes else ""
    if advice is None:
        classes = " (or --classes)" if cfg.classes else ""
        advice = f"a smaller --samples or --features{classes}, or --dtype float32"
    check_memory(
        synthetic_bytes(cfg),
        f"the synthetic data set ({cfg.samples} x {features} {cfg.dtype}{kind})",
        advice,
        local,
    )


def check_memory(per_rank: int, what: str, advice: str, local: int | None = None) -> None:
    """``UsageError`` before allocating, if this machine's ranks would need more than it
    has (``local``: the ranks on it, from :func:`ranks_sharing_memory`)."""
    available = available_memory()
    if available is None:
        return
    local = local or ranks_on_this_node()
    if per_rank * local > available:
        raise UsageError(
            f"{what} needs {format_bytes(per_rank)} per rank x {local} rank(s) on this "
            f"machine = {format_bytes(per_rank * local)}, but {format_bytes(available)} of "
            f"memory is available; expected {advice}"
        )


def resume_point(
    comm, ckpt_dir: Path, expected: dict, steps: int, out_dir: Path, reporter, force=False, asked=""
) -> tuple[ckpt.Checkpoint | None, bool]:
    """Collective: rank 0 finds the newest compatible checkpoint at or before ``steps``.

    Returns it (the same on every rank) and whether there is nothing to do: the checkpoint
    is at the last step and ``out_dir`` holds the outputs of that completed run, which a
    resume must leave as they are. A ``--resume`` by hand that finds no checkpoint starts
    from step 0: a fresh run, which may not replace the results in ``out_dir`` without
    ``force`` (a supervised restart's attempts belong to one run and are merged).
    ``asked`` names the option that set ``steps`` (``--epochs 0.5 (10 steps)``) in errors.
    """
    error, found, done, notes, rewound = None, None, False, [], False
    if comm.Get_rank() == 0:
        try:
            found, notes = ckpt.newest_usable(ckpt_dir, expected, steps, reporter.warn)
        except ckpt.CheckpointError as exc:
            error = UsageError(f"--resume: {exc}")
        completed = _completed_steps(out_dir)
        own = found is not None or ckpt.candidates(ckpt_dir, ckpt.run_id(expected))
        if error is None and own and _past(completed, steps):
            # a rewind of a completed run: its results would give way to those of a
            # shorter tail (at --steps = the checkpoint's step, a run of zero steps), or,
            # its checkpoints all past --steps (--keep-checkpoints), to those of a fresh start
            error = refuse_rewind(out_dir, completed, steps, force, asked)
            found, rewound = None, True  # --force: the first --steps steps, from step 0
            notes = [f"--force: the run of {completed} steps is replaced"]
        if error is None and found is None and (attempt() == 0 or rewound):
            try:
                error = refuse_fresh_start(out_dir, force)
            except OSError as exc:
                error = UsageError(f"--out {out_dir}: cannot replace its results: {exc}")
        if error is None and found is not None and found.step == steps and completed is None:
            # nothing to run, and no results: a run of zero steps wrote a summary of zeros
            # (0 samples/s) that report refused (nineteenth attack, X-H13)
            error = UsageError(
                f"--resume: the newest checkpoint is at step {steps}, --steps (nothing left to "
                f"run), but {out_dir / 'summary.json'} is missing or unreadable (the run ended "
                f"while writing its results?); expected --steps above {steps} to go on from "
                "it, or a new --out"
            )
        if found is not None and found.step == steps:
            done = completed == steps
    raise_together(comm, error)
    found, done = comm.bcast((found, done), root=0)
    extra = f" ({'; '.join(notes)})" if notes else ""
    if done:
        return found, done
    if found:
        reporter.say(f"resuming from {found.path} (after step {found.step}){extra}")
    elif rewound:
        reporter.say(f"--resume: starting from step 0{extra}")
    else:
        reporter.say(f"--resume: no usable checkpoint in {ckpt_dir}; starting from step 0{extra}")
    return found, done


def _past(completed, steps: int) -> bool:
    """Whether a completed run of ``completed`` steps went past ``steps``."""
    return isinstance(completed, int) and not isinstance(completed, bool) and completed > steps


def _completed_steps(out_dir: Path) -> int | None:
    """Steps of the completed run whose outputs are in ``out_dir`` (None: none there)."""
    try:  # a regular file of bounded size (a FIFO there hung train --resume)
        summary = read_json(out_dir / "summary.json", "--out")
    except UsageError:
        return None
    if not (out_dir / "model.npz").is_file() or not isinstance(summary, dict):
        return None
    return summary.get("steps")
