"""MEDIUM defects of issue 29's ninth attack (I-M1, I-M2, I-M3), each a test that failed
before its fix."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import ROOT, WORLD_SIZES, run_mpi, train_cmd

# --- I-M1, I-M2: SIGTERM before a sub-command's own handler: Ctrl-C's line, exit 143 -------

#: A real signal at a chosen moment of the real entry point (the console script's): a
#: hook sends it to the process itself, so the moment does not depend on the machine's load.
#: ``when`` is ``import`` (while ``dist_logreg.cli`` loads), ``mpi`` (as MPI starts) or
#: ``end`` (the sub-command done, as the process is about to exit).
HOOK = """\
import importlib.abc, os, signal, sys
when, signum, sys.argv = sys.argv[1], int(sys.argv[2]), ["dist-logreg", *sys.argv[3:]]

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if when == "import" and name == "dist_logreg.cli.main":  # numpy and the parsers next
            os.kill(os.getpid(), signum)
        return None

sys.meta_path.insert(0, Hook())
from dist_logreg.cli import entry

if when == "mpi":
    cli_main = sys.modules["dist_logreg.cli.main"]
    real = cli_main.init_mpi

    def init_mpi():
        os.kill(os.getpid(), signum)
        return real()

    cli_main.init_mpi = init_mpi
if when == "end":  # the sub-command is done (its files written, its lines printed)
    cli_main = sys.modules["dist_logreg.cli.main"]
    done = cli_main._main

    def _main(*a):
        status = done(*a)
        os.kill(os.getpid(), signum)
        return status

    cli_main._main = _main
entry()
"""


def _signalled(tmp_path, when, signum, *args, launched=False):
    env = {k: v for k, v in os.environ.items() if k not in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK")}
    env.update(PYTHONPATH=str(ROOT), OMPI_ALLOW_RUN_AS_ROOT="1")
    env.update(OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,sm")
    if launched:  # as mpirun sets it in every rank (MPI never starts here: killed before)
        env["OMPI_COMM_WORLD_RANK"] = "1"
    cmd = [sys.executable, "-c", HOOK, when, str(int(signum)), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


COMMANDS = {
    "model fit": ["model", "fit", "bench.json", "--out", "m.json"],
    "simulate": ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1M"],
    "report": ["report", "nothing-here", "--out", "rep"],
    "bench": ["bench", "--max-bytes", "1K", "--out", "o.json"],
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_command_loads_gives_one_line_naming_it(tmp_path, command, signum):
    """Attack I-M2: SIGTERM in a command's first half second (while numpy and the parsers
    load) ended it with 143 and no line, for every sub-command; Ctrl-C there said
    ``interrupted (SIGINT) while starting; nothing done``. Now both, each with its name."""
    r = _signalled(tmp_path, "import", signum, *COMMANDS[command])
    name = signal.Signals(signum).name
    assert r.returncode == 128 + signum, (r.returncode, r.stderr[-2000:])
    assert r.stderr == f"dist-logreg: interrupted ({name}) while starting; nothing done\n"
    assert r.stdout == ""
    assert os.listdir(tmp_path) == []  # nothing written


def test_a_rank_of_mpirun_keeps_sigterm_while_it_loads(tmp_path):
    """mpirun ends the other ranks with SIGTERM when one fails (rank 0's bad flag): they die
    of it quietly, leaving the line to that rank, as before (cli/guard.py takes SIGTERM in
    the sub-command); Ctrl-C's line while loading stays."""
    r = _signalled(tmp_path, "import", signal.SIGTERM, *COMMANDS["bench"], launched=True)
    assert r.returncode == -signal.SIGTERM and r.stderr == "", (r.returncode, r.stderr)
    r = _signalled(tmp_path, "import", signal.SIGINT, *COMMANDS["bench"], launched=True)
    assert r.returncode == 130, r.stderr
    assert r.stderr == "dist-logreg: interrupted (SIGINT) while starting; nothing done\n"


def test_importing_the_command_line_leaves_the_handlers_as_they_were():
    code = (
        "import signal; import dist_logreg.cli; "
        "assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL; "
        "assert signal.getsignal(signal.SIGINT) == signal.default_int_handler; print('ok')"
    )
    for rank in ({}, {"OMPI_COMM_WORLD_RANK": "1"}):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **rank}
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


SERIAL = {  # MPI sub-commands run as a singleton, without mpirun
    "bench": COMMANDS["bench"],
    "train": ["train", "--samples", "400", "--features", "8", "--steps", "5", "--out", "o"],
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", sorted(SERIAL))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_as_a_serial_mpi_command_starts_mpi_gives_one_line(tmp_path, command, signum):
    """Attack I-M1: SIGTERM to a serial ``bench`` while MPI started (its first second or
    two) ended it with 143 and no line; Ctrl-C there said ``interrupted (SIGINT); nothing
    done``. Now SIGTERM says the same with its name, exit 143, and nothing is written."""
    r = _signalled(tmp_path, "mpi", signum, *SERIAL[command])
    name = signal.Signals(signum).name
    assert r.returncode == 128 + signum, (r.returncode, r.stderr[-2000:])
    assert r.stderr == f"dist-logreg: interrupted ({name}); nothing done\n"
    assert os.listdir(tmp_path) == []  # nothing written: neither o.json nor o/


# --- I-M3: --resume with fewer steps given as --epochs ---------------------------------------

#: 400 rows in batches of 20: 20 steps an epoch, so --epochs 0.25 is 5 steps, 0.5 is 10.
TRAIN = ["--samples", "400", "--features", "8", "--batch-size", "20"]
TRAIN += ["--checkpoint-every", "5", "--keep-checkpoints", "3"]


def _train(n, out, *extra):
    return run_mpi(n, train_cmd(*TRAIN, "--out", str(out), *extra), 120)


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _refused(n, out, *extra) -> str:
    r = _train(n, out, "--resume", *extra)
    errors = [x for x in r.stderr.splitlines() if "dist-logreg: error" in x]
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
    return errors[0]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_resume_with_fewer_epochs_names_them_and_the_completed_run(tmp_path, n):
    """Attack I-M3: after a run of 20 steps (checkpoints kept: 10, 15, 20), ``--resume
    --epochs 0.25`` (5 steps, before every checkpoint kept) said "no usable checkpoint ...
    expected a run with checkpoints (--checkpoint-every)"; ``--steps 5`` said the same.
    Now both say what ``--steps`` says of a rewind, the epochs named with their steps."""
    out = tmp_path / "run"
    assert _train(n, out, "--steps", "20").returncode == 0
    kept = sorted(p.name[5:13] for p in (out / "checkpoints").glob("ckpt-*.npz"))
    assert kept == ["00000010", "00000015", "00000020"]
    before = _files(out)
    for extra, asked in (
        (["--epochs", "0.25"], "--epochs 0.25 (5 steps)"),  # no checkpoint at or before 5
        (["--epochs", "0.5"], "--epochs 0.5 (10 steps)"),  # the checkpoint at 10
        (["--steps", "5"], "--steps 5"),
    ):
        line = _refused(n, out, *extra)
        assert f"holds a run that completed 20 steps, and {asked} would replace" in line, line
        assert "no usable checkpoint" not in line and "--force" in line
        assert _files(out) == before  # nothing replaced
    # --epochs with a looser --steps beside it: the epochs set the count, and are named
    line = _refused(n, out, "--steps", "15", "--epochs", "0.25")
    assert "and --epochs 0.25 (5 steps) would replace" in line, line
    # --force: its first 5 steps again from step 0, the checkpoints past them kept
    r = _train(n, out, "--epochs", "0.25", "--resume", "--force")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["steps_run"] == 5
    assert summary["resumed_from_step"] == 0
    assert (out / "checkpoints").is_dir()


@pytest.mark.timeout(300)
def test_resume_without_checkpoints_still_asks_for_them(tmp_path):
    """A completed run without --checkpoint-every: fewer --epochs is still the fresh start
    that the run's results forbid ("no usable checkpoint"), not a rewind (nothing to resume
    from at any step count)."""
    out = tmp_path / "run"
    args = ["--samples", "400", "--features", "8", "--batch-size", "20", "--out", str(out)]
    assert run_mpi(1, train_cmd(*args, "--steps", "20"), 120).returncode == 0
    r = run_mpi(1, train_cmd(*args, "--epochs", "0.25", "--resume"), 120)
    assert r.returncode == 2 and "no usable checkpoint to continue from" in r.stderr, r.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["simulate", "bench"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_once_the_command_is_done_is_dropped(tmp_path, command, signum):
    """Eleventh attack K-L1: SIGTERM just after ``model fit`` wrote its file ended it with
    143 and no line (the handlers were put back before the exit: the default action); a
    Ctrl-C there said "nothing done" after the work was. The work is complete: exit 0, its
    output whole, no line about an interrupt."""
    r = _signalled(tmp_path, "end", signum, *COMMANDS[command])
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "interrupted" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    if command == "bench":
        assert json.loads((tmp_path / "o.json").read_text())["records"]
    else:
        assert "time" in r.stdout
