"""Helpers for the emulated-network tests: the ``root`` marker, the CLI, leftovers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, mpi_env

_skip_unless_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None,
    reason="emulated hosts need root and iproute2 (ip, tc)",
)
_skip_unless_nft = pytest.mark.skipif(
    shutil.which("nft") is None,
    reason="leaf-spine and --loss need nft (Debian package nftables; .ci/run installs it)",
)


def needs_root(test):
    """Marked ``root`` (select with -m root) and skipped with the reason when not root."""
    return pytest.mark.root(_skip_unless_root(test))


def needs_nft(test):
    """As :func:`needs_root`, and skipped with the reason when ``nft`` is missing."""
    return needs_root(_skip_unless_nft(test))


def leftovers(name: str) -> list[str]:
    """Every namespace and interface whose name starts with ``<name>-``."""
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    words = (spaces + links).replace("@", " ").replace(":", " ").split()
    return sorted({w for w in words if w.startswith(f"{name}-")})


def cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``dist-logreg cluster ARGS`` as a subprocess (its own session, a hard timeout)."""
    return subprocess.run(
        [str(BIN / "dist-logreg"), "cluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or mpi_env(),
        start_new_session=True,
    )


def read_json(path: Path):
    return json.loads(Path(path).read_text())
