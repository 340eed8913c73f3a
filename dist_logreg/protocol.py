"""What a job and the tools that start it (supervise, cluster) tell each other (pure: no MPI,
no numpy).

``dist-logreg supervise`` starts each attempt with these environment variables; the job
reads them. Kept apart from both sides so that neither imports the other.

The status file is how the job talks back: rank 0 merges fields into it (``started`` once
MPI runs, ``step`` at each progress report, ``checkpoint`` after each checkpoint written
or resumed from). A failed attempt whose status file stayed empty never started a rank:
a launch failure, not a lost rank.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
from pathlib import Path

#: Which attempt of a supervised run this is (0 or absent: the first, or unsupervised).
ATTEMPT_VAR = "DIST_LOGREG_ATTEMPT"
#: A file where rank 0 records its progress (for the supervisor's "work lost").
STATUS_VAR = "DIST_LOGREG_STATUS"
#: Set by an emulated-cluster launcher: a JSON object describing the cluster (topology, link
#: rates, delay, loss, ...), recorded as-is in the ``run`` block of ``summary.json`` and the
#: bench JSON. Rank 0 reads it, so it needs to reach rank 0 only (``mpirun -x`` across hosts).
CLUSTER_INFO_VAR = "DIST_LOGREG_CLUSTER_INFO"
#: JSON list, one object per earlier failed attempt (what it lost), for ``summary.json``.
HISTORY_VAR = "DIST_LOGREG_HISTORY"


def read_status(path: str | Path) -> dict:
    """The status file's fields ({} when absent or unreadable)."""
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def report(**fields) -> None:
    """Merge ``fields`` into the supervisor's status file (nothing when unsupervised).

    Called by rank 0 only. Written to a temporary file and renamed, so the supervisor never
    reads half a file; a failure to write is ignored (the job matters more).
    """
    path = os.environ.get(STATUS_VAR)
    if not path:
        return
    status = {**read_status(path), **fields}
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(status))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def history() -> list[dict]:
    """The earlier failed attempts of this supervised run, as the supervisor passed them."""
    try:
        past = json.loads(os.environ.get(HISTORY_VAR, "[]"))
    except ValueError:
        return []
    return past if isinstance(past, list) else []


#: The marker a run keeps in its ``--out`` while it runs: "pid host start-ticks", made with
#: O_EXCL. Two runs started into one new ``--out`` both ended 0, the last to finish having
#: replaced the other's results (a run writes nothing there until it ends: nineteenth
#: attack, X-H17).
RUNNING = ".running"


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), "" when unknown: a pid
    reused by another process is not the run that wrote the marker."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return fields[19] if len(fields) > 19 and fields[0] not in "ZX" else ""  # a zombie: gone


def claim(folder: Path) -> str | None:
    """Mark ``folder`` as this process's run's; or, where a live run on this host holds it,
    what that run is (``pid N on HOST``). A marker of a process that is gone (killed, or on
    another host: not checked) is replaced."""
    host, pid = socket.gethostname(), os.getpid()
    marker = folder / RUNNING
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            try:
                other_pid, other_host, ticks = marker.read_text()[:200].split()
                other = int(other_pid)
            except (OSError, ValueError):
                other, other_host, ticks = -1, "", ""
            if other_host == host and other != pid and ticks and _started(other) == ticks:
                return f"pid {other} on {other_host}"
            marker.unlink(missing_ok=True)  # stale: its run is gone
            continue
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{pid} {host} {_started(pid)}\n")
        except OSError:  # a full disk: no marker (the run's own writes say what failed)
            marker.unlink(missing_ok=True)
            return None
        atexit.register(release, folder)  # a run that fails leaves no live marker
        return None
    return None


def release(folder: Path) -> None:
    """Remove this process's marker from ``folder`` (another's stays)."""
    marker = folder / RUNNING
    try:
        if marker.read_text()[:200].split()[0] == str(os.getpid()):
            marker.unlink()
    except (OSError, IndexError):
        pass
