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
- :func:`check_output` / :func:`write_output`: THE writer of every output file: checked
  before the work (no directory, FIFO, link or, without ``--force``, existing file at the
  name), written to a temporary file in the same folder and renamed into place, so a
  failure never leaves half a file and a planted link is never followed.
  A link to a FOLDER on the way (``--out DIR`` where DIR is a link) is followed, on purpose:
  it is how a scratch disk is used, and refusing the last folder only would still follow
  every link above it (``runs/x`` with ``runs`` a link), which no check can refuse without
  refusing ``/tmp`` on systems where that is a link. What the rule protects holds there:
  the output file's own name is never a link followed, and nothing in the folder is
  replaced without ``--force``.
  :func:`output_parts`: the same for a file written in parts (``predict``'s CSV).
  :func:`distinct_outputs`: two options naming one file are refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
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


def once(pairs) -> dict:
    """``json.loads``'s ``object_pairs_hook``: an object with a key twice is refused
    (``ValueError``), where JSON would keep the last silently (``"steps": NaN, "steps": 40``
    read as 40: twelfth attack, L-M2)."""
    doc = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"expected each key once in an object, got {key!r} twice")
        doc[key] = value
    return doc


def json_int(text: str) -> int | float:
    """``json.loads``'s ``parse_int``: an integer beyond 2^63 is read as a float (inf past
    1e308), which the number checks refuse naming the key; JSON's integers have no bound,
    and one of 400 digits was an ``OverflowError`` traceback wherever a check or the
    arithmetic made it a float (nineteenth attack, W-H2)."""
    v = int(text)
    return v if -(1 << 63) <= v < (1 << 63) else float(text)


def loads(text: str | bytes):
    """A JSON document the tool reads: each key once (:func:`once`), huge integers as
    floats (:func:`json_int`)."""
    return json.loads(text, object_pairs_hook=once, parse_int=json_int)


#: The largest JSON file the tool reads whole (a bench file of 5,000 algorithms is ~10 MB):
#: a 4 GB one was read into memory, a ``MemoryError`` traceback (twelfth attack, L-H19).
MAX_FILE_BYTES = 256 << 20


def read_json(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The JSON document in the regular file ``path``; errors name ``what`` and the path.

    One line for each way it fails: ``{what} {path}: not found`` (and the other
    :func:`regular_file` refusals), ``...: cannot read: <reason>``, ``...: not a readable
    JSON file (expected JSON: <where the parser stopped>)``.
    """
    where = f"{what} {path}"
    path = regular_file(path, what)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UsageError(f"{where}: expected at most {max_bytes} bytes of JSON, got {size}")
        return loads(path.read_text())
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


def write_json(path: Path, obj: Any, what: str | None = None, force: bool = True) -> None:
    """Write ``obj`` as indented strict JSON: through :func:`write_output` when ``what``
    names the option (``UsageError``), else :func:`write_atomically` (``OSError``)."""
    text = strict_json(obj, indent=2) + "\n"
    if what is None:
        write_atomically(path, text)
    else:
        write_output(path, text, what, force=force)


def check_new_folder(out: Path) -> None:
    """``UsageError`` unless the folder ``out`` (not there yet) can be made: its nearest
    existing ancestor a folder this process may write in, on a writable file system."""
    if os.path.lexists(out):
        raise UsageError(f"--out {out}: cannot write there: a symbolic link to nothing")
    up = out.absolute().parent
    while not os.path.lexists(up):
        up = up.parent
    if not up.is_dir():
        raise UsageError(f"--out {out}: cannot write there: {up} is not a directory")
    if os.statvfs(up).f_flag & os.ST_RDONLY:
        raise UsageError(f"--out {out}: cannot write there: Read-only file system")
    if not os.access(up, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write there: Permission denied ({up})")


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


# --- the one writer for outputs -------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output(path: str | Path, what: str, force: bool = False) -> Path:
    """Before the work: ``UsageError`` unless :func:`write_output` can write ``path``.

    Refused: a directory, a FIFO, device or socket (never opened: a FIFO would block), a
    symbolic link (never followed: the file it points to is not ours to replace), and an
    existing file unless ``force`` (one run never overwrites another's results). The folder
    is made and probed, so a read-only file system fails here, not after the work.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot write there: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISLNK(mode):
        _refuse_device_link(path, what)
    if mode is not None and not stat.S_ISREG(mode) and not (force and stat.S_ISLNK(mode)):
        extra = (
            " (it is not followed; --force replaces the link itself)"
            if (stat.S_ISLNK(mode))
            else ""
        )
        raise UsageError(f"{what} {path}: expected a new file name, got {_kind(mode)}{extra}")
    if mode is not None and not force:
        size = os.lstat(path).st_size
        raise UsageError(
            f"{what} {path}: the file exists ({size} B, another run's results?); "
            "expected a new file name, or --force to replace it"
        )
    check_writable(path, what)
    return path


def _refuse_device_link(path: Path, what: str) -> None:
    """A link in /dev, or to a device, FIFO or socket (``/dev/stdout``): refused, and
    ``--force`` not offered, which would rename a file over the system's link."""
    try:
        target = os.stat(path).st_mode
    except OSError:  # dangling: --force replaces the link itself
        return
    in_dev = path.absolute().parent == Path("/dev")
    if stat.S_ISREG(target) and not in_dev:
        return
    link = "a symbolic link in /dev" if in_dev else f"a symbolic link to {_kind(target)}"
    raise UsageError(
        f"{what} {path}: expected a new file name, got {link} ({os.path.realpath(path)}); "
        "outputs are written to files: name a file"
    )


def not_an_input(
    out: str | Path, inputs, noun: str = "a file it reads", flag: str = "--out"
) -> None:
    """``UsageError`` if ``out`` names one of ``inputs`` (a link to one too), even with
    ``--force``: the output would replace what it was made of (``predict --data d --out d``,
    ``model fit b.json --out b.json``: fourteenth attack, P-M3)."""
    for path in inputs:
        if path and os.path.realpath(path) == os.path.realpath(out):
            raise UsageError(
                f"{flag} {out}: {noun} ({path}); expected another file name (the output would "
                "replace its input)"
            )


def distinct_outputs(paths: dict[str, str | Path | None]) -> None:
    """``UsageError`` if two output options name the same file (one would lose the other)."""
    seen: dict[str, str] = {}
    for flag, path in paths.items():
        if not path:
            continue
        key = os.path.realpath(os.path.abspath(path))
        if key in seen:
            raise UsageError(
                f"{flag} {path}: the same file as {seen[key]}; expected two different "
                "file names (one output would overwrite the other)"
            )
        seen[key] = f"{flag} {path}"


def write_output(path: str | Path, data: str | bytes, what: str, force: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all, never through a link at ``path``.

    The text goes to a temporary file in the same folder, then takes the final name: with
    ``force`` by ``os.replace`` (which replaces a link, never its target), else by
    ``os.link``, which fails if a file appeared there meanwhile. ``UsageError`` (one line)
    on any failure; no temporary file is left behind.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with output_parts(path, what, force, mode="wb") as fh:
        fh.write(raw)


@contextlib.contextmanager
def output_parts(path: str | Path, what: str, force: bool = False, mode: str = "w"):
    """:func:`write_output` for a file written in parts (``predict``'s CSV, rank by rank):
    yields a file open (``mode``) on a temporary file in ``path``'s folder, which takes the
    final name when the block ends and is removed when it raises or is interrupted (a
    SIGTERM halfway leaves nothing under the final name). An ``OSError``, in the block or
    at the rename, becomes one ``UsageError`` line; other exceptions pass unchanged.
    """
    path = Path(path)
    try:
        if force and os.path.lexists(path):
            mode_now = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode_now) or stat.S_ISLNK(mode_now)):
                raise UsageError(f"{what} {path}: expected a new file name, got {_kind(mode_now)}")
        with _atomic(path, replace=force, mode=mode) as fh:
            yield fh
    except FileExistsError:
        raise UsageError(
            f"{what} {path}: the file exists (written meanwhile?); expected a new file name, "
            "or --force to replace it"
        ) from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot write there: {exc.strerror or exc}") from None


def write_atomically(path: str | Path, data: str | bytes, replace: bool = True) -> None:
    """:func:`write_output` without the checks: ``OSError`` propagates (a caller that
    rescues results on a full disk catches it); ``replace=False``: ``FileExistsError`` if
    ``path`` exists."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with _atomic(path, replace, "wb") as fh:
        fh.write(raw)


@contextlib.contextmanager
def _atomic(path: str | Path, replace: bool, mode: str):
    """A temporary file beside ``path``, renamed to it when the block ends (``replace``:
    ``os.replace``, else ``os.link``, ``FileExistsError`` if ``path`` exists), removed on
    any exception, an interrupt included."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
