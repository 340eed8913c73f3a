"""Compiled loops where numba is installed (the ``fast`` extra), plain Python where not.

``njit`` is numba's ``njit(cache=True)`` when numba imports, else the function itself: the
kernels of :mod:`.eventloop` are written in the subset of Python that numba compiles (numpy
arrays and scalars, no objects), so both ways give the same numbers; numba only makes them
50-200 times faster (``--exact`` at thousands of ranks needs it: docs/simulation.md).
``DIST_LOGREG_NO_JIT=1`` in the environment (read at import) forces plain Python, for the
tests that hold both paths to the same numbers.
"""

from __future__ import annotations

import os

try:  # pragma: no cover - which branch runs depends on the environment
    if os.environ.get("DIST_LOGREG_NO_JIT", "") not in ("", "0"):
        raise ImportError("DIST_LOGREG_NO_JIT: plain Python asked for")
    import numba

    AVAILABLE = True

    def njit(fn):
        return numba.njit(cache=True, nogil=True)(fn)

except ImportError:  # pragma: no cover
    AVAILABLE = False

    def njit(fn):
        return fn


def interruptible(fn, *args):
    """``fn(*args)``, a compiled kernel, run off the main thread so Ctrl-C is answered at once.

    Compiled code never looks at Python's signal flag, so a SIGINT waits for the kernel to
    end (seconds to minutes at thousands of ranks), and one that lands while numba loads
    or compiles the kernel can leave it half-made (a segmentation fault at the call). Here
    the kernel runs in a daemon thread (``nogil``) and the main thread waits on it in short
    joins: KeyboardInterrupt reaches the caller within a tenth of a second, and the signal
    never touches numba. Plain Python (no numba) runs in place: it sees the signal itself.
    """
    if not AVAILABLE:
        return fn(*args)
    import threading

    box: dict = {}

    def work():
        try:
            box["out"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            box["err"] = exc

    worker = threading.Thread(target=work, name="compiled-kernel", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "err" in box:
        raise box["err"]
    return box["out"]
