"""Shared test helpers: launching ``mpirun`` with a hard timeout, the commands, collective
asserts. Tests import them from here; ``conftest.py`` holds only pytest's hooks and fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: World sizes every multi-rank test runs at (odd sizes find bugs).
WORLD_SIZES = (1, 2, 3)


def mpi_env() -> dict[str, str]:
    """Environment for Open MPI on this kind of machine: root allowed, idle ranks yield."""
    env = dict(os.environ)
    env.update(
        {
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_mpi_yield_when_idle": "1",
            # Shared memory only: no TCP listener is needed between ranks of one machine.
            "OMPI_MCA_btl": "self,sm",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_mpi(n: int, args: list[str], timeout: float = 60, cwd: Path | None = None) -> Completed:
    """Run ``mpirun -n n ARGS`` and return its result; a hang fails the test after ``timeout``.

    The launcher runs in its own process group, so on timeout the whole group (mpirun and
    every rank) is killed and nothing is left behind.
    """
    cmd = [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mpi_env(),
        cwd=cwd or ROOT,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"mpirun -n {n} {' '.join(args)} did not finish in {timeout} s "
            f"(deadlock?)\nstdout:\n{out}\nstderr:\n{err}"
        )
    return Completed(proc.returncode, out, err)


def train_cmd(*args: str) -> list[str]:
    """The ``dist-logreg train`` command line as the installed console script."""
    return [str(BIN / "dist-logreg"), "train", *args]


def tiny_run(out: Path, **edits) -> Path:
    """A 2-step serial train run of 200 rows x 4 features in ``out``, its ``summary.json``
    then edited: ``edits`` maps a dotted key (``run__tag`` for ``run.tag``) to a value."""
    import json

    args = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(out)), timeout=120).returncode == 0
    if edits:
        doc = json.loads((out / "summary.json").read_text())
        for key, value in edits.items():
            *parents, last = key.split("__")
            node = doc
            for k in parents:
                node = node[k]
            node[last] = value
        (out / "summary.json").write_text(json.dumps(doc))
    return out


#: The run the fault-tolerance and supervise tests kill, resume and compare (40 steps, with
#: momentum, so that resuming must restore the velocity too).
FAULT_RUN = [
    "--samples",
    "3000",
    "--features",
    "7",
    "--batch-size",
    "100",
    "--steps",
    "40",
    "--momentum",
    "0.5",
    "--seed",
    "2",
    "--log-every",
    "1",
]


def load_model(d: Path) -> np.ndarray:
    """``[coef..., intercept]`` of the model.npz in ``d``."""
    m = np.load(d / "model.npz", allow_pickle=False)
    return np.append(m["coef"], m["intercept"])


def collective_assert(comm, ok: bool, message: str = "") -> None:
    """Every rank fails together if any rank's condition is false (an assert that fails on
    some ranks only would leave the others waiting in the next collective)."""
    oks = comm.allgather(bool(ok))
    assert all(oks), f"failed on ranks {[r for r, o in enumerate(oks) if not o]}: {message}"


def star_network(ns3net, hosts, rate, queue, k=0, loss=0.0, lat=1e-6, **extra):
    """``hosts`` hosts on one switch (node ``hosts``) for the packet engine's network layer:
    links ``2h`` up and ``2h+1`` down, each at ``rate`` B/s with ``queue`` bytes, ECN step
    ``k``, ``loss`` and latency ``lat``; ``extra``: other ``ns3net.Network`` fields."""
    src, dst = [], []
    for h in range(hosts):
        src += [h, hosts]
        dst += [hosts, h]
    n = len(src)
    return ns3net.Network(
        hosts=hosts,
        nodes=hosts + 1,
        link_src=np.array(src),
        link_dst=np.array(dst),
        link_rate=np.full(n, rate),
        link_latency=np.full(n, lat),
        queue_bytes=np.full(n, queue),
        ecn_k=np.full(n, k),
        loss=np.full(n, loss),
        **extra,
    )


def plain_python(code: str, timeout: float = 600):
    """Run ``code`` (``{tests}`` formatted to this folder) in a child process with numba off
    (``DIST_LOGREG_NO_JIT=1``): the JSON of its last printed line."""
    import json

    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", code.format(tests=here)],
        env={**os.environ, "DIST_LOGREG_NO_JIT": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (mpirun's ranks), from ``/proc``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def interrupt_sweep(monkeypatch, argv: list[str], at: int) -> None:
    """``dist-logreg simulate --sweep ...`` (``argv``) in this process, Ctrl-C as point ``at``
    starts: its finished points are kept in ``--out`` (asserts exit 130)."""
    from dist_logreg.cli import simulate_sweep
    from dist_logreg.cli.main import main

    real = simulate_sweep.run_point

    def stop(*a):
        if a[3] == at:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(simulate_sweep, "run_point", stop)
    assert main(["simulate", *argv]) == 130
    monkeypatch.setattr(simulate_sweep, "run_point", real)


def signal_sweep(tmp_path: Path, n: int, grid: str, pick) -> tuple[int, str]:
    """``mpirun -n n dist-logreg simulate --sweep`` of ``grid`` in ``tmp_path``; once a point
    has finished (MPI started, the handlers set), SIGTERM to the ranks ``pick`` chooses of
    mpirun's children. Returns mpirun's status and its stderr; a hang fails after 180 s."""
    import time

    (tmp_path / "g.toml").write_text(grid)
    cmd = [str(BIN / "mpirun"), "-n", str(n), "--oversubscribe", sys.executable, "-m"]
    cmd += ["dist_logreg", "simulate", "--sweep", "g.toml", "--out", "o"]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=mpi_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list((tmp_path / "o").glob("*.partial*")):
            assert proc.poll() is None, proc.communicate()[1][-800:]
            time.sleep(0.2)
        for pid in pick(children_of(proc.pid)):
            os.kill(pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, err
