"""Faults: injected on purpose (``--inject-fault``) and caught (``--comm-timeout``).

Injected faults act on the first attempt only, so a supervised run can recover: the
supervisor numbers its attempts in the environment variable ``DIST_LOGREG_ATTEMPT``
(0 or absent: the first).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from dist_logreg.errors import EXIT_COMM_TIMEOUT, UsageError
from dist_logreg.protocol import ATTEMPT_VAR
from dist_logreg.units import plain_float, plain_int

FAULT_FORMS = "kill:rank=R:step=N or stall:rank=R:step=N:seconds=S"


@dataclass(frozen=True)
class Fault:
    """One planned fault: ``kind`` is "kill" or "stall"."""

    kind: str
    rank: int
    step: int
    seconds: float = 0.0


def parse_fault(text: str) -> Fault:
    """``"stall:rank=1:step=5:seconds=3"`` -> ``Fault("stall", 1, 5, 3.0)``."""
    kind, _, rest = text.partition(":")
    fields = {}
    for part in filter(None, rest.split(":")):
        key, eq, value = part.partition("=")
        if not eq:
            raise UsageError(f"--inject-fault: expected {FAULT_FORMS}, got {text!r}")
        fields[key] = value
    need = {"kill": {"rank", "step"}, "stall": {"rank", "step", "seconds"}}.get(kind)
    if need is None or set(fields) != need:
        raise UsageError(f"--inject-fault: expected {FAULT_FORMS}, got {text!r}")
    rank, step = plain_int(fields["rank"]), plain_int(fields["step"])  # ASCII (R-M2)
    text_s = str(fields.get("seconds", "0")).strip()  # inf and nan: named as not finite below
    seconds = (
        float(text_s) if text_s.lower().lstrip("+-") in ("inf", "nan") else plain_float(text_s)
    )
    if rank is None or step is None or (seconds != seconds and text_s.lower() != "nan"):
        raise UsageError(
            f"--inject-fault: expected integers for rank and step and a number "
            f"of seconds, got {text!r}"
        )
    fault = Fault(kind, rank, step, seconds)
    if not math.isfinite(fault.seconds):  # nan would pass the test below; inf never wakes
        raise UsageError(f"--inject-fault: expected a finite number of seconds, got {text!r}")
    if fault.rank < 0 or fault.step < 0 or fault.seconds < 0:
        raise UsageError(f"--inject-fault: expected non-negative values, got {text!r}")
    if fault.seconds > MAX_WAIT_S:  # 1e10 s was an OverflowError in time.sleep (S-H6)
        raise UsageError(
            f"--inject-fault: expected a stall of at most {MAX_WAIT_S:g} seconds, got {text!r}"
        )
    return fault


#: The longest stall or timeout, s (11.6 days: a run's longest measured span elsewhere), and
#: the shortest timeout (MPI_Init alone takes a good part of it).
MAX_WAIT_S = 1e6
MIN_TIMEOUT_S = 0.1


def attempt() -> int:
    """Which attempt of a supervised run this is (0: the first, or unsupervised)."""
    try:
        return int(os.environ.get(ATTEMPT_VAR, "0"))
    except ValueError:
        return 0


def planned(fault: Fault | None, rank: int) -> Fault | None:
    """The fault this rank must cause in this attempt, if any."""
    if fault is None or fault.rank != rank or attempt() != 0:
        return None
    return fault


def inject(fault: Fault, step: int) -> None:
    """Cause ``fault`` now (called at the start of step ``fault.step`` on its rank)."""
    if fault.kind == "kill":
        print(
            f"dist-logreg: injected fault: rank {fault.rank} kills itself at step {step}",
            file=sys.stderr,
            flush=True,
        )
        os.kill(os.getpid(), signal.SIGKILL)
    print(
        f"dist-logreg: injected fault: rank {fault.rank} stalls {fault.seconds:g} s in step {step}",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(fault.seconds)


class Watchdog:
    """Ends the job if a collective does not complete within ``timeout`` seconds.

    One watchdog covers the whole run, from ``MPI_Init`` to the last write: it is started
    before MPI (``comm=None``), :meth:`attach`-ed to the communicator once MPI runs, and
    armed around every collective: start-up (``MPI_Init``, the agreement on the
    configuration, the checks of the data, the resume point), each step's allreduce, and
    the end (gathering the records, agreeing that the files were written,
    ``MPI_Finalize``). Local work (reading a file, computing) is never timed: a rank that
    hangs there makes the others time out in their next collective.

    The training thread arms it before a collective (``arm(what, step, now_ns)``) and
    disarms it after (``disarm()``): a few attribute stores, nothing else on the hot path.
    A daemon thread checks the deadline a few times per second; when it passes, it prints
    which collective at which step did not complete and calls ``MPI_Abort``, which ends
    every rank (the training thread is blocked inside MPI and cannot). mpi4py starts MPI
    with ``MPI_THREAD_MULTIPLE``, which makes the call from a second thread legal. Before
    MPI is up or after it is finalized there is no communicator to abort: the process
    exits with the same status, and the launcher ends the others.
    """

    def __init__(self, comm, timeout: float):
        self.comm = comm
        self.timeout_ns = int(timeout * 1e9)
        self.deadline = 0  # perf_counter_ns deadline; 0 = disarmed
        self.what = ""
        self.step = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="comm-watchdog", daemon=True)
        self._thread.start()

    def attach(self, comm) -> None:
        """MPI runs now: abort through ``comm`` (None again once MPI is finalized)."""
        self.comm = comm

    def arm(self, what: str, step: int, now_ns: int) -> None:
        self.what = what
        self.step = step
        self.deadline = now_ns + self.timeout_ns

    def disarm(self) -> None:
        self.deadline = 0

    @contextlib.contextmanager
    def phase(self, what: str):
        """``with dog.phase("config agreement"):`` a collective outside the steps."""
        self.arm(what, -1, time.perf_counter_ns())
        try:
            yield
        finally:
            self.disarm()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        period = min(0.25, max(self.timeout_ns / 1e9 / 10, 0.01))
        while not self._stop.wait(period):
            deadline = self.deadline
            if deadline and time.perf_counter_ns() > deadline:
                self._expire()

    def _expire(self) -> None:
        comm = self.comm
        where = f"step {self.step}: " if self.step >= 0 else ""
        if comm is not None:
            who = f"rank {comm.Get_rank()} of {comm.Get_size()}"
        else:  # MPI not (or no longer) running: the launcher's variables say which rank
            rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK"))
            who = f"rank {rank}" if rank is not None else f"process {os.getpid()}"
        print(
            f"dist-logreg: error on {who}: {where}{self.what} did not complete within "
            f"--comm-timeout {self.timeout_ns / 1e9:g} s (a rank stopped or stalled, or a "
            "link dropped); aborting all ranks",
            file=sys.stderr,
            flush=True,
        )
        if comm is not None:
            comm.Abort(EXIT_COMM_TIMEOUT)
        os._exit(EXIT_COMM_TIMEOUT)


class NoWatchdog:
    """Stands in when ``--comm-timeout`` is 0: arming costs nothing."""

    def attach(self, comm) -> None:
        pass

    def arm(self, what: str, step: int, now_ns: int) -> None:
        pass

    def disarm(self) -> None:
        pass

    @contextlib.contextmanager
    def phase(self, what: str):
        yield

    def close(self) -> None:
        pass


def start_watchdog(timeout) -> Watchdog | NoWatchdog:
    """A watchdog for ``--comm-timeout`` as given (before validation: anything but a
    positive finite number of seconds means none; validation reports bad values later)."""
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if number and math.isfinite(timeout) and MIN_TIMEOUT_S <= timeout <= MAX_WAIT_S:
        return Watchdog(None, float(timeout))
    return NoWatchdog()
