"""``dist-logreg scale``: one training command at several world sizes, and how it scaled.

A plain process (like ``supervise``): it starts ``mpirun -n P ... dist-logreg train ...``
once per world size, one after the other, reads each run's ``summary.json``, and writes a
table (``scale.txt``) and ``scale.json`` of step time, speedup, efficiency and comm
fraction per world size.

Strong scaling (default) keeps the work fixed: the same global batch and data at every P.
Weak scaling keeps the work per rank fixed: the global batch (and, for the synthetic set,
the number of samples) grows in proportion to P. With ``P0`` the smallest world size and
``thr`` the rows trained per second (global batch / step time)::

    speedup(P)    = P0 * thr(P) / thr(P0)    (strong: P0 * T(P0) / T(P); weak: P * T(P0) / T(P))
    efficiency(P) = speedup(P) / P

Model: ``--model FILE.json`` puts a cost-model prediction next to each measurement,
through :func:`predict_allreduce_s`: a ``model.json`` fitted by ``dist-logreg model fit``
(one rank per host, the fitted inter-host parameters), or the minimal hand-written shape
``{"alpha_s": a, "beta_s_per_byte": b, "gamma_s_per_byte": g}``, also per algorithm under
``{"algorithms": {"ring": {...}, "mpi": {...}}}`` (Hockney alpha-beta-gamma, docs/design.md).
The predicted step is the baseline's time outside the allreduce (divided by P / P0 under
strong scaling, unchanged under weak) plus the predicted allreduce.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from dist_logreg.collective import costfile
from dist_logreg.collective.closed_form import model_time, why_not
from dist_logreg.collective.schedule import Placement
from dist_logreg.errors import EXIT_USAGE, UsageError
from dist_logreg.files import check_output, read_json, write_json, write_output
from dist_logreg.ops.cluster.jobs import mpirun_command
from dist_logreg.ops.supervise import kill_group, start_group
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.options import add_arguments, load_toml
from dist_logreg.units import plain_int


def parse_ranks(text: str) -> list[int]:
    """``"1,2,4,8"`` -> ``[1, 2, 4, 8]`` (distinct, increasing)."""
    ranks = [plain_int(part) for part in text.split(",") if part.strip()]  # ASCII (P-M1)
    ranks = [] if None in ranks else ranks
    if not ranks or min(ranks) < 1 or ranks != sorted(set(ranks)):
        raise UsageError(
            f"--ranks: expected increasing positive integers separated by commas "
            f"(e.g. 1,2,4,8), got {text!r}"
        )
    return ranks


def train_settings(train_argv: list[str]) -> dict:
    """The train flags that scaling depends on (batch size, samples, data), with defaults."""
    parser = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_arguments(parser)
    args, _ = parser.parse_known_args(train_argv)
    given = vars(args)
    from_file = load_toml(given["config"]) if given.get("config") else {}
    merged = {**from_file, **given}
    defaults = TrainConfig()
    return {
        key: merged.get(key, getattr(defaults, key))
        for key in ("batch_size", "samples", "features", "data", "dtype", "allreduce")
    }


def run_argv(train_argv: list[str], settings: dict, mode: str, p: int, p0: int, out: Path):
    """The train arguments of the run at ``p`` ranks: later flags win, so overrides go last."""
    argv = list(train_argv)
    if mode == "weak":
        argv += ["--batch-size", str(settings["batch_size"] * p // p0)]
        if not settings["data"]:
            argv += ["--samples", str(settings["samples"] * p // p0)]
    return argv + ["--out", str(out)]


def cluster_launcher(c) -> list[str]:
    """The emulated cluster's ``mpirun`` line (ops/cluster/jobs.py) with the rank count left for
    each run: ranks are placed round-robin over the emulated hosts."""
    line = mpirun_command(c, 1, [], tcp_links=4)
    out, i = [], 0
    while i < len(line):
        if line[i] in ("-n", "--map-by"):  # per-run values, set below and in launch_command
            i += 2
            continue
        out.append(line[i])
        i += 1
    return [*out, "--map-by", "node:OVERSUBSCRIBE"]


def launch_command(launcher: list[str], p: int, argv: list[str]) -> list[str]:
    """``mpirun -n P [launcher args] python -m dist_logreg train ARGV``."""
    return [
        launcher[0],
        "-n",
        str(p),
        *launcher[1:],
        sys.executable,
        "-m",
        "dist_logreg",
        "train",
        *argv,
    ]


def measure(summary: dict) -> dict:
    """The numbers of one run that the table needs, from its ``summary.json``."""
    steps = max(summary["steps_run"], 1)
    return {
        "world_size": summary["world_size"],
        "batch_size": summary["batch_size"],
        "step_s": summary["time_s"]["total"] / steps,  # loop time / steps, median rank
        "step_p50_s": summary["step_time_s"]["p50"],
        "comm_s": summary["time_s"]["comm"] / steps,
        "comm_fraction": summary["comm_fraction"]["median"],
        "samples_per_s": summary["samples_per_s"],
        "payload_bytes_per_step": summary["allreduce"]["bytes_per_step"],
        "algorithm": summary["allreduce"]["algorithm"],
        "peak_rss_bytes": summary.get("memory", {}).get("peak_rss_bytes", {}).get("max"),
    }


def predict_allreduce_s(model: dict, algorithm: str, payload: int, p: int) -> float | None:
    """The model's time for one allreduce of ``payload`` bytes at ``p`` ranks (the hook).

    Reads the minimal shape of the module doc; returns None when the model has no
    parameters for ``algorithm``. A fitted model with its own predictor plugs in here.
    """
    if "breakpoints" in model:  # fitted by `dist-logreg model fit`: its own predictor
        try:
            place = Placement.blocks(p, ranks_per_host=1)
            return costfile.predict(model, algorithm, payload, place)["time_s"]
        except UsageError:  # no fit for this algorithm
            return None
    params = model.get("algorithms", {}).get(algorithm, model)
    if "alpha_s" not in params or "beta_s_per_byte" not in params:
        return None
    # the algorithm's closed form (its record in the table); None where it has none
    alpha, beta = params["alpha_s"], params["beta_s_per_byte"]
    return model_time(algorithm, payload, p, alpha, beta, params.get("gamma_s_per_byte", 0.0))


def why_no_prediction(model: dict, algorithm: str) -> str:
    """One line: why :func:`predict_allreduce_s` has no time for ``algorithm``."""
    if "breakpoints" not in model and why_not(algorithm):
        return f"{why_not(algorithm)}; no prediction"
    return f"the model has no parameters for {algorithm}; no prediction"


def tabulate(points: list[dict], mode: str, model: dict | None = None) -> list[dict]:
    """Add speedup and efficiency (and predictions, given a model) to each measured point."""
    ok = [pt for pt in points if pt.get("step_s")]
    if not ok:
        return points
    base = ok[0]
    p0 = base["world_size"]
    thr0 = base["batch_size"] / base["step_s"]
    outside = base["step_s"] - base["comm_s"]  # the baseline's time outside the allreduce
    for pt in ok:
        p = pt["world_size"]
        pt["speedup"] = p0 * (pt["batch_size"] / pt["step_s"]) / thr0
        pt["efficiency"] = pt["speedup"] / p
        if model is None:
            continue
        comm = predict_allreduce_s(model, pt["algorithm"], pt["payload_bytes_per_step"], p)
        if comm is None:
            pt["no_prediction"] = why_no_prediction(model, pt["algorithm"])
            continue
        step = (outside * p0 / p if mode == "strong" else outside) + comm
        pt["predicted"] = {
            "comm_s": comm,
            "step_s": step,
            "speedup": p0 * (pt["batch_size"] / step) / thr0,
            "measured_over_predicted_step": pt["step_s"] / step,
        }
        pt["predicted"]["efficiency"] = pt["predicted"]["speedup"] / p
    return points


def format_table(points: list[dict], mode: str, label: str) -> str:
    """The table printed and saved as ``scale.txt``."""
    predicted = any("predicted" in pt for pt in points)
    head = f"{'ranks':>5} {'batch':>6} {'step':>10} {'comm/step':>10} {'comm %':>7} "
    head += f"{'speedup':>8} {'efficiency':>10}"
    if predicted:
        head += f" {'pred. step':>10} {'pred. speedup':>13} {'meas/pred':>9}"
    lines = [f"dist-logreg scale: {mode} scaling, {label}", head]
    for pt in points:
        if not pt.get("step_s"):
            lines.append(f"{pt['world_size']:>5}   failed (exit status {pt.get('exit')})")
            continue
        row = (
            f"{pt['world_size']:>5} {pt['batch_size']:>6} {pt['step_s'] * 1e3:>7.3f} ms "
            f"{pt['comm_s'] * 1e3:>7.3f} ms {pt['comm_fraction'] * 100:>6.1f}% "
            f"{pt['speedup']:>8.2f} {pt['efficiency'] * 100:>9.1f}%"
        )
        if "predicted" in pt:
            pr = pt["predicted"]
            row += (
                f" {pr['step_s'] * 1e3:>7.3f} ms {pr['speedup']:>13.2f} "
                f"{pr['measured_over_predicted_step']:>9.2f}"
            )
        lines.append(row)
    for note in dict.fromkeys(pt["no_prediction"] for pt in points if "no_prediction" in pt):
        lines.append(f"model: {note}")
    lines.append(
        "step: loop time / steps and comm/step: time inside the gradient allreduce / "
        "steps (median over ranks); comm %: median rank's share of its loop time; speedup "
        "and efficiency: rows trained per second against the smallest world size"
    )
    return "\n".join(lines)


def read_model(path: str | None) -> dict | None:
    if path is None:
        return None
    model = read_json(path, "--model")
    if not isinstance(model, dict):
        raise UsageError(f"--model {path}: expected a JSON object, got {type(model).__name__}")
    if "breakpoints" in model:
        return costfile.load(path)  # a fitted model.json: checked key by key
    problem = check_minimal(model)
    if problem:
        raise UsageError(f"--model {path}: {problem}")
    return model


def check_minimal(model: dict) -> str | None:
    """What is wrong with a hand-written ``{"alpha_s", "beta_s_per_byte"[, "gamma_s_per_byte"]}``
    model (also per algorithm under ``"algorithms"``), or None."""
    algs = model.get("algorithms")
    if algs is not None and not (isinstance(algs, dict) and algs):
        return f"algorithms: expected an object of parameters by algorithm name, got {algs!r:.40}"
    tables = {f"algorithms.{k}.": v for k, v in (algs or {}).items()}
    if algs is None or "alpha_s" in model:
        tables[""] = model
    for prefix, params in tables.items():
        if not isinstance(params, dict) or not {"alpha_s", "beta_s_per_byte"} <= set(params):
            return (
                f"{prefix or 'the model: '}expected alpha_s and beta_s_per_byte (seconds "
                f"per message, per byte), got {params!r:.60}"
            )
        for key in ("alpha_s", "beta_s_per_byte", "gamma_s_per_byte"):
            if key in params and (why := costfile.param_problem(params[key], prefix + key)):
                return why
    return None


def run(
    train_argv: list[str],
    ranks: list[int],
    mode: str,
    out: Path,
    launcher: list[str],
    model_path: str | None = None,
    label: str = "",
    timeout: float | None = None,
    say=print,
    force: bool = False,
) -> int:
    """Run the sweep; returns 0, or the first failing run's exit status. ``force``: replace
    an earlier sweep in ``out`` (:func:`check_out`), each run through ``train --force``."""
    if train_argv[:1] == ["train"]:
        train_argv = train_argv[1:]
    model = read_model(model_path)
    settings = train_settings(train_argv)
    for p in ranks:  # what train refuses once its p ranks are up (100,000 sat silent: P-M7)
        batch = settings["batch_size"] * p // ranks[0] if mode == "weak" else settings["batch_size"]
        if isinstance(batch, int) and batch < p:
            raise UsageError(
                f"--ranks: {p} ranks need a global batch of at least {p} rows (train refuses "
                f"less); its --batch-size is {batch} at {p} ranks ({mode} scaling)"
            )
    check_out(out, ranks, force)  # before the first run, not after the last
    if force and "--force" not in train_argv:
        train_argv = [*train_argv, "--force"]  # each pP run's earlier results replaced too
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")  # ranks may outnumber cores
    points, status = [], 0
    for p in ranks:
        run_dir = out / f"p{p}"
        argv = run_argv(train_argv, settings, mode, p, ranks[0], run_dir)
        cmd = launch_command(launcher, p, argv)
        say(f"dist-logreg scale: {p} rank(s): {shlex.join(cmd)}")
        started = time.monotonic()
        rc = _run_once(cmd, env, timeout)
        late = rc is None  # its --timeout ended it (not a SIGKILL of its own: U-H8)
        if rc != 0:  # a signal's status as a shell gives it (-9 was exit 247: S-M8)
            rc = TIMED_OUT if late else 128 - rc if rc < 0 else rc
            why = (
                f"took longer than --timeout {timeout:g} s; killed (exit status {rc})"
                if late
                else f"failed (exit status {rc})"
            )
            say(f"dist-logreg scale: the run at {p} rank(s) {why}")
            points.append({"world_size": p, "exit": rc, "out": str(run_dir)})
            status = status or rc
            if rc == EXIT_USAGE:  # bad input fails the same way at every size
                break
            continue
        point = measure(json.loads((run_dir / "summary.json").read_text()))
        point.update(out=str(run_dir), wall_s=time.monotonic() - started)
        points.append(point)
    tabulate(points, mode, model)
    table = format_table(points, mode, label or f"train {shlex.join(train_argv)}")
    say(table)
    doc = {
        "mode": mode,
        "label": label,
        "train_args": train_argv,
        "launcher": launcher,
        "model": model_path,
        "model_note": "prediction = baseline time outside the allreduce (scaled by P0/P when "
        "strong) + the model's allreduce time, via ops/scale.py predict_allreduce_s",
        "points": points,
    }
    # the one writer: whole or not at all, a link at the name replaced, never followed
    write_output(out / "scale.txt", table + "\n", "--out", force)
    write_json(out / "scale.json", doc, "--out", force)
    say(f"dist-logreg scale: wrote {out / 'scale.txt'} and {out / 'scale.json'}")
    return status


#: The files a sweep writes in its ``--out`` (besides each run's ``pP/``).
SCALE_FILES = ("scale.json", "scale.txt")


def check_out(out: Path, ranks: list[int], force: bool) -> None:
    """Before the first run: ``UsageError`` if ``out`` holds an earlier sweep (its
    ``scale.json`` or ``scale.txt``, or anything in a ``pP/`` of these world sizes: a run's
    results, which its train would refuse) and not ``force``; then each file the sweep
    writes goes through the shared checker (files.check_output: no link followed, no FIFO,
    device or folder at the name)."""
    if out.is_dir():
        held = [n for n in SCALE_FILES if (out / n).is_file() and not (out / n).is_symlink()]
        held += [f"p{p}" for p in ranks if _used(out / f"p{p}")]
        if held and not force:
            raise UsageError(
                f"--out {out}: holds an earlier scale run ({', '.join(held)}); expected a new "
                "directory or --force"
            )
    for name in SCALE_FILES:
        check_output(out / name, "--out", force)
    for p in ranks:  # each size's train --out: never followed (a run was written outside: R-H5)
        run = out / f"p{p}"
        if run.is_symlink() or (os.path.lexists(run) and not run.is_dir()):
            raise UsageError(
                f"--out {run}: expected a folder (or none), got "
                f"{'a symbolic link (it is not followed)' if run.is_symlink() else 'a file'}; "
                "remove it, or give a new directory"
            )


def _used(path: Path) -> bool:
    """Whether ``path`` is taken: anything there but an empty folder."""
    if not os.path.lexists(path):
        return False
    try:
        return path.is_symlink() or not path.is_dir() or any(path.iterdir())
    except OSError:
        return True


#: A run ``--timeout`` killed: the status of a process killed by SIGKILL.
TIMED_OUT = 128 + signal.SIGKILL


def _run_once(cmd: list[str], env: dict, timeout: float | None) -> int | None:
    """One run in its own process group: a timeout or Ctrl-C ends the launcher and ranks
    (None: the timeout did)."""
    proc = start_group(cmd, env, "scale")
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return None
    except KeyboardInterrupt:
        kill_group(proc)
        raise
