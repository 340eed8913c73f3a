"""Ctrl-C during ``--exact``'s compiled event loop (fifth attack, E-H2 and E-M2): answered
within a second, never a segmentation fault.

Compiled code never reads Python's signal flag: a SIGINT used to wait for the loop's end
(13-24 s at 2000 ranks) and, landing while numba loaded the kernel, could crash the process
(exit 139). :func:`dist_logreg.sim.jit.interruptible` runs the kernel in a thread and waits
in short joins.
"""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pytest

from dist_logreg.sim import jit

pytestmark = pytest.mark.skipif(
    not jit.AVAILABLE, reason="numba not installed (the test extra has it)"
)


@jit.njit
def _spin(flag):  # runs until flag[0] is set: a kernel that outlives the signal
    n = 0
    while flag[0] == 0:
        n += 1
    return n


def test_a_kernel_returns_its_value_and_raises_its_error():
    flag = np.ones(1, dtype=np.int64)
    assert jit.interruptible(_spin, flag) == 0
    with pytest.raises(TypeError):
        jit.interruptible(_spin)  # a kernel's own error reaches the caller as it is


def test_ctrl_c_reaches_the_caller_while_the_kernel_runs():
    flag = np.zeros(1, dtype=np.int64)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            jit.interruptible(_spin, flag)
        waited = time.monotonic() - t0
    finally:
        flag[0] = 1  # the kernel ends: nothing left spinning
        timer.cancel()
    # the signal came at 0.5 s; the kernel would spin for ever: a generous bound under load
    assert waited < 30, waited
