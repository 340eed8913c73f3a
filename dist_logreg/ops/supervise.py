"""``dist-logreg supervise``: run a training job, and when it fails, run it again from the
newest checkpoint, optionally on fewer ranks, until it completes or the restarts are spent.

The supervisor is not an MPI process: it starts the launcher (``mpirun ...``) as a child in
a session of its own and watches its exit status. It tells the job which attempt it is
(``DIST_LOGREG_ATTEMPT``, so injected faults fire only in the first), where to report
progress (``DIST_LOGREG_STATUS``, a file next to the checkpoints, so that rank 0 on another
node can reach it), and what the earlier attempts lost (``DIST_LOGREG_HISTORY``, which the
job puts in ``summary.json``). A failed attempt that never reported a start is a launch
failure (the command is wrong, or no slot was free), not a lost rank.

SIGTERM and SIGINT sent to the supervisor go to the job: forwarded to the launcher, then,
after a grace period, every process of the job's session is killed. Nothing is left
running and writing into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from dist_logreg.errors import EXIT_COMM_TIMEOUT, EXIT_USAGE, NEVER_RESTART, UsageError
from dist_logreg.protocol import ATTEMPT_VAR, HISTORY_VAR, STATUS_VAR, read_status
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
    home: Path  # --out (or the checkpoint directory): where the status file goes
    out: Path | None  # --out, where the job keeps each attempt's partial measurements
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
        home=Path(out) if out else Path(ckpt_dir),
        out=Path(out) if out else None,
    )


def attempt_command(p: Plan, attempt: int, ranks: int | None) -> list[str]:
    """The command of one attempt: fewer ranks if asked, ``--resume`` after the first."""
    cmd = list(p.command)
    if ranks is not None and p.rank_index is not None:
        cmd[p.rank_index] = str(ranks)
    if p.open_mpi:  # ranks on other nodes get only the variables mpirun is told to pass
        cmd[1:1] = ["-x", ATTEMPT_VAR, "-x", STATUS_VAR, "-x", HISTORY_VAR]
    if attempt > 0 and "--resume" not in cmd:
        cmd.append("--resume")
    return cmd


class Stopped(Exception):
    """The supervisor was sent SIGTERM or SIGINT; the job has been stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run(
    command: list[str],
    restarts: int,
    min_ranks: int | None,
    attempt_timeout: float | None,
    say=print,
    grace: float = 10.0,
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
    try:
        p.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"supervise: cannot create {p.home}: {exc.strerror or exc}") from None
    status = p.home / f".supervise-status-{os.getpid()}.json"
    started = time.monotonic()
    try:
        for attempt in range(restarts + 1):
            cmd = attempt_command(p, attempt, ranks)
            status.write_text("{}")
            say(
                f"dist-logreg supervise: attempt {attempt + 1} of at most {restarts + 1}: "
                f"{' '.join(cmd)}"
            )
            env = {
                ATTEMPT_VAR: str(attempt),
                STATUS_VAR: str(status),
                HISTORY_VAR: json.dumps(p.failures),
            }
            rc = _run_once(cmd, env, attempt, attempt_timeout, grace, say)
            if rc == 0:
                lost = sum(f["steps_lost"] for f in p.failures)
                say(
                    f"dist-logreg supervise: completed after {len(p.failures)} failure(s) and "
                    f"{attempt} restart(s) in {time.monotonic() - started:.1f} s; work lost "
                    f"and redone: at least {lost} step(s)"
                )
                return 0
            failure = _failure(attempt, rc, read_status(status), p.out)
            p.failures.append(failure)
            say(_describe(failure))
            # exit 3 is a stall wherever it happens (MPI_Init on a loaded machine included)
            if not failure["launched"] and attempt == 0 and rc != EXIT_COMM_TIMEOUT:
                say(
                    "dist-logreg supervise: no rank started, so the command itself failed "
                    "(see the launcher's message above: too few slots? add --oversubscribe "
                    "or lower -n); not restarting"
                )
                return EXIT_USAGE
            if rc in NEVER_RESTART:
                why = "rejected its input" if rc == EXIT_USAGE else "diverged numerically"
                say(f"dist-logreg supervise: the job {why} (exit {rc}); not restarting")
                return rc
            if attempt == restarts:
                say(f"dist-logreg supervise: giving up after {restarts} restart(s)")
                return rc if rc > 0 else 1
            if min_ranks is not None and ranks is not None:
                ranks = max(min_ranks, ranks - 1)
        return 1
    except Stopped as stop:
        say(f"dist-logreg supervise: stopped by {stop}; the job was stopped, not restarting")
        return 128 + stop.signum
    finally:
        status.unlink(missing_ok=True)


def _failure(attempt: int, rc: int, status: dict, out: Path | None) -> dict:
    """What one failed attempt lost, from its exit status and what rank 0 reported."""
    reached, saved = status.get("step"), int(status.get("checkpoint") or 0)
    number = int(status.get("attempt") or attempt + 1)  # the job's number in --out
    kept = []
    if out is not None and (out / "partial").is_dir():
        kept = sorted(f.name for f in (out / "partial").glob(f"metrics-attempt{number}-*"))
    return {
        "attempt": number,
        "exit_status": rc if rc >= 0 else None,
        "signal": -rc if rc < 0 else None,
        "launched": bool(status.get("started")),
        "last_progress_step": reached,
        "checkpoint_step": saved,
        "steps_lost": max(0, int(reached or 0) - saved),
        "partial_files": kept,  # its measurements up to the last flush, in <out>/partial
    }


def _describe(f: dict) -> str:
    how = f"signal {f['signal']}" if f["signal"] else f"exit status {f['exit_status']}"
    if not f["launched"] and f["exit_status"] == EXIT_COMM_TIMEOUT:
        return (
            f"dist-logreg supervise: attempt {f['attempt']} stalled before any rank reported a "
            f"start ({how}: a communication timeout, e.g. in MPI_Init under --comm-timeout); "
            "a stall, so it is restarted"
        )
    if not f["launched"]:
        return (
            f"dist-logreg supervise: attempt {f['attempt']} failed to launch ({how}): no rank "
            "started"
        )
    reached = f["last_progress_step"]
    return (
        f"dist-logreg supervise: attempt {f['attempt']} failed ({how}); last progress "
        f"report at step {reached if reached is not None else 'none'}, newest "
        f"checkpoint after step {f['checkpoint_step']}: at least {f['steps_lost']} step(s) "
        "of work lost"
    )


def _run_once(cmd, env: dict, attempt: int, timeout: float | None, grace: float, say) -> int:
    """One attempt; SIGTERM/SIGINT meanwhile stop the job and raise :class:`Stopped`."""
    received: list[int] = []
    handlers = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        handlers[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        proc = start_group(cmd, {**os.environ, **env}, "supervise")
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            try:
                return proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            if received:
                name = signal.Signals(received[0]).name
                say(
                    f"dist-logreg supervise: {name} received: forwarding it to the job, "
                    f"killing it after a grace period of {grace:g} s"
                )
                stop_job(proc, received[0], grace)
                raise Stopped(received[0])
            if deadline is not None and time.monotonic() > deadline:
                say(
                    f"dist-logreg supervise: attempt {attempt + 1} exceeded --attempt-timeout "
                    f"{timeout:g} s; killing it"
                )
                stop_job(proc, signal.SIGTERM, grace)
                return -signal.SIGKILL
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` (Linux ``/proc``): the launcher and its local ranks.

    Open MPI puts each rank in a process group of its own, so signalling the launcher's
    group does not reach them; the session (started by the launcher) holds them all.
    """
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # state ppid pgrp session ...
            members.append(int(entry))  # (a zombie is dead already, only not yet reaped)
    return members


def stop_job(proc: subprocess.Popen, sig: int, grace: float) -> None:
    """Send ``sig`` to the launcher's group, wait up to ``grace`` s, then SIGKILL the session.

    The launcher forwards the signal to every rank (on every node) and ends; whatever is
    still alive after the grace period is killed, so no rank goes on writing.
    """
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        pass
    end = time.monotonic() + grace
    for _ in range(int((grace + 10) / 0.05)):  # bounded: never wait forever on the job
        left = [pid for pid in session_members(proc.pid) if pid != os.getpid()]
        if not left:
            break
        if time.monotonic() > end:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def start_group(cmd: list[str], env: dict, who: str) -> subprocess.Popen:
    """Start ``cmd`` (a launcher) in a session of its own, so it can be ended whole."""
    try:
        return subprocess.Popen(cmd, env=env, start_new_session=True)
    except OSError as exc:
        raise UsageError(f"{who}: cannot start {cmd[0]}: {exc.strerror or exc}") from None


def kill_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """End the launcher and every rank it started: SIGTERM, then SIGKILL the session."""
    stop_job(proc, signal.SIGTERM, grace)
