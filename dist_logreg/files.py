"""Files as the package opens and writes them: never block on open, always strict JSON.

Pure Python (no numpy, no MPI), so every layer can use it, the supervisor included.

- :func:`regular_file`: a data or config path must be a regular file *before* it is opened.
  Opening a FIFO blocks until a writer appears, and a device can block on read, so a typo
  like ``--data /dev/stdin`` would hang every rank where no watchdog can help.
- :func:`read_json`: a JSON file, or one ``UsageError`` line naming it and what is wrong.
- :func:`strict_json`: ``json.dumps`` turns ``nan`` and ``inf`` into ``NaN`` and
  ``Infinity``, which are not JSON (RFC 8259) and break other tools' parsers; here a
  non-finite number becomes ``null`` and anything else non-JSON is an error.
- :func:`check_writable`: probe an output file's directory before the work that fills it.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from dist_logreg.errors import UsageError


def regular_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a regular file; else ``UsageError`` naming ``what``.

    ``os.stat`` never blocks on a FIFO or a device, unlike ``open``. Missing files and
    directories get their own messages.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: not found") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{what} {path}: is a directory, expected a regular file")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise UsageError(
            f"{what} {path}: expected a regular file, got {kind} (reading it could block "
            "every rank forever)"
        )
    return path


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document in the regular file ``path``; errors name ``what`` and the path.

    One line for each way it fails: ``{what} {path}: not found`` (and the other
    :func:`regular_file` refusals), ``...: cannot read: <reason>``, ``...: not a readable
    JSON file (expected JSON: <where the parser stopped>)``.
    """
    where = f"{what} {path}"
    path = regular_file(path, what)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise UsageError(f"{where}: not a readable JSON file (expected JSON: {exc})") from None


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (dicts, lists, tuples)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def strict_json(obj: Any, **kwargs) -> str:
    """Strict JSON text of ``obj``: non-finite numbers become ``null`` (never ``NaN``)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON."""
    Path(path).write_text(strict_json(obj, indent=2) + "\n")


def check_writable(path: str | Path, what: str) -> None:
    """``UsageError`` unless a file can be created at ``path`` (its folder is made)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise UsageError(f"{what} {path}: is a directory, expected a file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot write there: {exc.strerror or exc}") from None
