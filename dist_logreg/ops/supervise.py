"""``dist-logreg supervise``: run a training job, and when it fails, run it again from the
newest checkpoint, optionally on fewer ranks, until it completes or the restarts are spent.

The supervisor is not an MPI process: it starts the launcher (``mpirun ...``) as a child in
its own process group and watches its exit status. It tells the job which attempt it is
(``DIST_LOGREG_ATTEMPT``, so injected faults fire only in the first) and where to report
progress (``DIST_LOGREG_STATUS``), which with the checkpoint directory gives the work lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dist_logreg.errors import EXIT_USAGE, NEVER_RESTART, UsageError
from dist_logreg.protocol import ATTEMPT_VAR, STATUS_VAR
from dist_logreg.train import checkpoint
from dist_logreg.train.options import add_arguments, load_toml

RANK_FLAGS = ("-n", "-np", "--np", "-c", "--n")


@dataclass
class Plan:
    """What the supervisor learned from the command line it was given."""

    command: list[str]
    rank_index: int | None  # position of the rank count in the command, if any
    checkpoint_dir: Path
    checkpoint_every: int
    open_mpi: bool
    failures: list[dict] = field(default_factory=list)


def plan(command: list[str]) -> Plan:
    """Find the rank count and the checkpoint directory in ``mpirun ... dist-logreg train``."""
    if not command:
        raise UsageError(
            "supervise: expected a command after --, e.g. -- mpirun -n 4 "
            "dist-logreg train --out runs/x --checkpoint-every 50"
        )
    if "train" not in command:
        raise UsageError(f"supervise: expected a 'dist-logreg train' command, got {command}")
    at = command.index("train")
    parser = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_arguments(parser)
    train_args, _ = parser.parse_known_args(command[at + 1 :])
    settings = vars(train_args)
    if getattr(train_args, "config", None):
        settings = {**load_toml(train_args.config), **settings}
    out, ckpt_dir = settings.get("out"), settings.get("checkpoint_dir")
    if not out and not ckpt_dir:
        raise UsageError(
            "supervise: the train command needs --out DIR or --checkpoint-dir DIR, "
            "so that a restarted job finds the checkpoints"
        )
    rank_index = None
    for i, token in enumerate(command[: at - 1]):
        if token in RANK_FLAGS and i + 1 < at and command[i + 1].isdigit():
            rank_index = i + 1
            break
    launcher = command[0]
    try:
        version = subprocess.run(
            [launcher, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    return Plan(
        command=list(command),
        rank_index=rank_index,
        checkpoint_dir=Path(ckpt_dir) if ckpt_dir else Path(out) / "checkpoints",
        checkpoint_every=int(settings.get("checkpoint_every") or 0),
        open_mpi="Open MPI" in version or "prte" in version.lower(),
    )


def attempt_command(p: Plan, attempt: int, ranks: int | None) -> list[str]:
    """The command of one attempt: fewer ranks if asked, ``--resume`` after the first."""
    cmd = list(p.command)
    if ranks is not None and p.rank_index is not None:
        cmd[p.rank_index] = str(ranks)
    if p.open_mpi:  # ranks on other nodes get only the variables mpirun is told to pass
        cmd[1:1] = ["-x", ATTEMPT_VAR, "-x", STATUS_VAR]
    if attempt > 0 and "--resume" not in cmd:
        cmd.append("--resume")
    return cmd


def _newest_checkpoint(directory: Path) -> int:
    files = checkpoint.candidates(directory)
    return int(checkpoint.NAME.match(files[-1].name).group(1)) if files else 0


def _progress(status: Path) -> int | None:
    try:
        return int(json.loads(status.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return None


def run(
    command: list[str],
    restarts: int,
    min_ranks: int | None,
    attempt_timeout: float | None,
    say=print,
) -> int:
    """Supervise ``command``; returns its final exit status (0: completed)."""
    p = plan(command)
    ranks = int(p.command[p.rank_index]) if p.rank_index is not None else None
    if min_ranks is not None:
        if ranks is None:
            raise UsageError(
                "supervise: --min-ranks needs a launcher rank count (-n P) in the command"
            )
        if not 1 <= min_ranks <= ranks:
            raise UsageError(f"supervise: --min-ranks: expected 1..{ranks}, got {min_ranks}")
    if not p.checkpoint_every:
        say(
            "dist-logreg supervise: warning: no --checkpoint-every in the train command: "
            "a restart starts again from step 0"
        )
    status = Path(tempfile.mkstemp(prefix="dist-logreg-status-")[1])
    started = time.monotonic()
    try:
        for attempt in range(restarts + 1):
            cmd = attempt_command(p, attempt, ranks)
            status.write_text("{}")
            say(
                f"dist-logreg supervise: attempt {attempt + 1} of at most {restarts + 1}: "
                f"{' '.join(cmd)}"
            )
            rc = _run_once(cmd, attempt, status, attempt_timeout, say)
            if rc == 0:
                lost = sum(f["steps_lost"] for f in p.failures)
                say(
                    f"dist-logreg supervise: completed after {len(p.failures)} failure(s) and "
                    f"{attempt} restart(s) in {time.monotonic() - started:.1f} s; work lost "
                    f"and redone: at least {lost} step(s)"
                )
                return 0
            reached, saved = _progress(status), _newest_checkpoint(p.checkpoint_dir)
            lost = max(0, (reached or 0) - saved)
            p.failures.append({"attempt": attempt, "exit": rc, "steps_lost": lost})
            how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
            say(
                f"dist-logreg supervise: attempt {attempt + 1} failed ({how}); last progress "
                f"report at step {reached if reached is not None else 'none'}, newest "
                f"checkpoint after step {saved}: at least {lost} step(s) of work lost"
            )
            if rc in NEVER_RESTART:
                why = "rejected its input" if rc == EXIT_USAGE else "diverged numerically"
                say(f"dist-logreg supervise: the job {why} (exit {rc}); not restarting")
                return rc
            if attempt == restarts:
                say(f"dist-logreg supervise: giving up after {restarts} restart(s)")
                return rc
            if min_ranks is not None and ranks is not None:
                ranks = max(min_ranks, ranks - 1)
        return 1
    finally:
        status.unlink(missing_ok=True)


def _run_once(cmd: list[str], attempt: int, status: Path, timeout: float | None, say) -> int:
    env = {**os.environ, ATTEMPT_VAR: str(attempt), STATUS_VAR: str(status)}
    proc = start_group(cmd, env, "supervise")
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        say(
            f"dist-logreg supervise: attempt {attempt + 1} exceeded --attempt-timeout "
            f"{timeout:g} s; killing it"
        )
        kill_group(proc)
        return -signal.SIGKILL
    except KeyboardInterrupt:
        kill_group(proc)
        say("dist-logreg supervise: interrupted; the job was stopped")
        sys.exit(130)


def start_group(cmd: list[str], env: dict, who: str) -> subprocess.Popen:
    """Start ``cmd`` (a launcher) in its own process group, so it can be ended whole."""
    try:
        return subprocess.Popen(cmd, env=env, start_new_session=True)
    except OSError as exc:
        raise UsageError(f"{who}: cannot start {cmd[0]}: {exc.strerror or exc}") from None


def kill_group(proc: subprocess.Popen) -> None:
    """End the launcher and every rank it started (they share its process group)."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
