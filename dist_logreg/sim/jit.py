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
