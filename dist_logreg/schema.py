"""One checked schema per file kind the tool reads: every key, its type and its bounds.

A schema is a tree of small checkers (:func:`number`, :func:`count`, :func:`text`,
:func:`items`, :func:`table`); :func:`check` walks a document with one and turns the first
thing wrong into a one-line ``UsageError`` naming the file, the key and the value::

    r/simulate.json: results[0].time_s: expected a finite number of seconds >= 0 and at
    most 1e+06, got nan

:func:`read` opens a JSON file the safe way first: a regular file (a FIFO would block),
of bounded size, strict JSON (``NaN`` and ``Infinity`` are read, then refused by the
number checkers, which name the key). Pure Python: every layer may use it.

Example::

    >>> SCHEMA = table({"steps": count(1, 10**9), "name": text()})
    >>> doc = check(read(path, "summary"), SCHEMA, f"summary {path}")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any

from dist_logreg.errors import UsageError
from dist_logreg.files import MAX_FILE_BYTES, loads, regular_file

#: A checker: ``checker(value, where)``; raises :class:`Invalid` (``where``, what was expected).
Checker = Callable[[Any, str], None]


class Invalid(Exception):
    """One thing wrong: ``where`` (``results[3].time_s``) and the message."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


def _got(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v) -> bool:
    """``math.isfinite`` that takes an integer too large for a float (JSON's integers have
    no bound: 400 digits were an ``OverflowError`` traceback, nineteenth attack W-H2)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def same(a, b) -> bool:
    """Whether the value ``a`` read from a file is ``b`` (a number to 12 significant digits;
    a bool only a bool; ``b`` may be a numpy scalar)."""
    b = b.item() if hasattr(b, "item") else b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is bool and type(b) is bool and a == b
    if is_number(a) and is_number(b) and _finite(a):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def is_finite(v) -> bool:
    """A JSON number (not a bool) that is finite."""
    return is_number(v) and _finite(v)


def unphysical(where: str, message: str) -> Invalid:
    """The :class:`Invalid` of a file whose numbers no simulation or run could give."""
    return Invalid(where, f"{message} (a file that breaks physics)")


def shown(v) -> str:
    """A value for a message: a finite number with ``:g``, anything else as ``repr``."""
    return f"{v:g}" if is_number(v) and _finite(v) else _got(v)


def number(low: float = 0.0, high: float = math.inf, what: str = "a number", above=False):
    """A finite JSON number in ``[low, high]`` (``above``: ``> low``); bools are refused."""

    def chk(v, where):
        ok = is_number(v) and _finite(v) and (v > low if above else v >= low)
        if not ok or v > high:
            bound = f"{'>' if above else '>='} {low:g}" + (
                f" and at most {high:g}" if high < math.inf else ""
            )
            raise Invalid(where, f"expected {what} {bound}, got {_got(v)}")

    chk.__doc__ = what
    return chk


def count(low: int = 0, high: int = 10**15, what: str = "a whole number"):
    """A JSON integer in ``[low, high]`` (``true`` and ``2.5`` are not)."""

    def chk(v, where):
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise Invalid(where, f"expected {what} from {low} to {high}, got {_got(v)}")

    return chk


def has_control(v: str) -> bool:
    """Whether ``v`` holds a control character (ESC, a newline, DEL, C1...): a string of a
    file the tool reads is printed to a terminal and written into ``report.md`` and
    ``report.html``, where an escape sequence would act (clear, recolour, retitle)."""
    return any(unicodedata.category(c) == "Cc" for c in v)


def text(*choices: str):
    """A string without control characters, one of ``choices`` if any are given."""

    def chk(v, where):
        if not isinstance(v, str) or (choices and v not in choices):
            want = f"one of {', '.join(choices)}" if choices else "a string"
            raise Invalid(where, f"expected {want}, got {_got(v)}")
        if has_control(v):
            raise Invalid(
                where, f"expected a string without control characters (ESC, newline), got {_got(v)}"
            )

    return chk


def flag():
    """``true`` or ``false`` (not a number)."""

    def chk(v, where):
        if not isinstance(v, bool):
            raise Invalid(where, f"expected true or false, got {_got(v)}")

    return chk


def anything(v, where) -> None:
    """Any value (kept, not read)."""


def optional(checker: Checker) -> Checker:
    """``null`` or what ``checker`` accepts."""

    def chk(v, where):
        if v is not None:
            checker(v, where)

    return chk


def items(checker: Checker, low: int = 0, high: int = 10**8, what: str = "a list"):
    """A list of ``low`` to ``high`` items, each accepted by ``checker``."""

    def chk(v, where):
        if not isinstance(v, list):
            raise Invalid(where, f"expected {what}, got {type(v).__name__} {_got(v)}")
        if not low <= len(v) <= high:
            raise Invalid(where, f"expected {what} of {low} to {high} items, got {len(v)}")
        for i, x in enumerate(v):
            checker(x, f"{where}[{i}]")

    return chk


def mapping(checker: Checker, what: str = "an object"):
    """An object whose every value ``checker`` accepts (any keys)."""

    def chk(v, where):
        if not isinstance(v, dict):
            raise Invalid(where, f"expected {what}, got {type(v).__name__} {_got(v)}")
        for k, x in v.items():
            if has_control(k):
                raise Invalid(where, f"expected keys without control characters, got {_got(k)}")
            checker(x, f"{where}.{k}" if where else str(k))

    return chk


def table(required: dict, optional_keys: dict | None = None, what: str = "an object"):
    """An object with every key of ``required`` and any of ``optional_keys``, each checked by
    its checker; other keys are kept unread."""
    optional_keys = optional_keys or {}

    def chk(v, where):
        if not isinstance(v, dict):
            raise Invalid(where, f"expected {what}, got {type(v).__name__} {_got(v)}")
        for k, c in (*required.items(), *optional_keys.items()):  # in order: schema first
            if k in v:
                c(v[k], f"{where}.{k}" if where else k)
            elif k in required:
                missing = [m for m in required if m not in v]
                raise Invalid(where, f"expected keys {', '.join(missing)} (missing)")

    return chk


def check(doc, schema: Checker, name: str):
    """``doc`` if ``schema`` accepts it; else ``UsageError("<name>: <where>: ...")``."""
    try:
        schema(doc, "")
    except Invalid as exc:
        raise UsageError(f"{name}: {exc}") from None
    return doc


def read(path, what: str, max_bytes: int = MAX_FILE_BYTES):
    """The JSON document at ``path``: checked to be a regular file of at most ``max_bytes``
    before it is opened; ``UsageError`` naming ``what`` and the path otherwise."""
    path = regular_file(path, what)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UsageError(
                f"{what} {path}: expected at most {max_bytes} bytes of JSON, got {size}"
            )
        return loads(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"{what} {path}: expected JSON, got a file that is not ({exc})") from None


def given_twice(rows: list[dict]) -> str | None:
    """Of bench records (``bench --out``; ``report`` and ``model fit`` read them): the phrase
    for the first record measuring what an earlier one did (its collective, algorithm,
    bytes, dtype, ranks and their placement on hosts). Bench measures each once, so a file
    holding two is edited or concatenated, and which to draw or fit is a guess."""
    seen: dict[tuple, int] = {}
    keys = ("collective", "algorithm", "bytes", "dtype", "world_size", "host_of_rank")
    for i, r in enumerate(rows):
        key = tuple(repr(r.get(k)) for k in (*keys, "ranks_per_node"))
        if key in seen:
            return (
                f"record {i}: {r.get('algorithm')} at {r.get('bytes')} B given twice (records "
                f"{seen[key]} and {i}); expected each collective, algorithm and size once "
                "per placement of the ranks"
            )
        seen[key] = i
    return None


_RATES = (1.0, 1e14)  # B/s: 8 bit/s (a unit rate in tests) to 800 Tbit/s
#: What is physical, per key: ``key -> (low, high)`` in the key's unit (SI), checked for
#: every value, from a spec, a file, a cluster or a cost model, so no sum overflows.
FABRIC_BOUNDS = {
    "rate": _RATES,
    "host-rate": _RATES,
    "reduce-rate": _RATES,
    "uplink-rate": _RATES,
    "core-rate": _RATES,
    "link-latency": (0.0, 10.0),
    "scaleup-rate": _RATES,
    "scaleup-latency": (0.0, 10.0),
    "alpha": (0.0, 100.0),
    "gamma": (0.0, 1.0),  # s/B: the reduce-rate's lower bound
    "oversubscription": (1e-3, 1e3),
    "core-oversubscription": (1e-3, 1e3),
    "nic-efficiency": (1e-3, 1.0),
    "hash-seed": (0, 2**32 - 1),
}


# --- flows.json: the flow maps `cluster run` writes (ops/cluster/fabricfiles.py), read by
# `simulate --flows` (sim/from_cluster.py) and `report` (a flows.json of lists and a spine
# of 3.5 was drawn: twelfth attack, L-H27) ------------------------------------------------

#: The schema ``cluster run`` writes (:mod:`dist_logreg.ops.cluster.fabricfiles`); a file
#: without ``schema`` is the older single map (its ``flows`` at the top).
FLOWS_SCHEMA = "dist-logreg/flows/1"
_FLOW_PORT = count(0, 65535, "a port")
_FLOW_RANKS = items(count(0, 10**6, "a rank"), 0, 10**6, "a list of ranks")
_FLOW = table(
    {
        "src": text(),
        "dst": text(),
        "bytes": number(0.0, 1e18, "a finite number of bytes"),
        "spine": optional(text()),
    },
    {  # what cluster run also writes: checked when present (a NaN port was taken)
        "sport": _FLOW_PORT,
        "dport": _FLOW_PORT,
        "packets": count(0, 10**18, "a whole number of packets"),
        "src_ranks": _FLOW_RANKS,
        "dst_ranks": _FLOW_RANKS,
    },
    what="a flow (an object)",
)
_FLOWS = items(_FLOW, 0, 10**6, "a list of flows")
#: The file's own keys besides its flows: checked when present.
_FLOWS_HEAD = {
    "hash": text("l3", "l4"),
    "ranks_per_host": count(1, 10**6, "a number of ranks per host"),
    "tcp_links": count(0, 10**9, "a number of TCP connections"),
}
FLOWS_FILE = table(
    {"schema": text(FLOWS_SCHEMA), "maps": items(table({"flows": _FLOWS}))},
    _FLOWS_HEAD,
)
FLOWS_FILE_OLD = table({"flows": _FLOWS}, _FLOWS_HEAD)


def flows_of(doc, name: str = "flows.json") -> list:
    """Every flow of a checked ``flows.json`` document (all its maps); ``name`` (the file)
    starts every error."""
    if not isinstance(doc, dict):
        raise UsageError(
            f"{name}: expected a flows.json of `cluster run` (an object with schema "
            f"{FLOWS_SCHEMA!r}), got a {type(doc).__name__}"
        )
    if "schema" in doc:
        check(doc, FLOWS_FILE, name)
        return [f for m in doc["maps"] for f in m["flows"]]
    return check(doc, FLOWS_FILE_OLD, name)["flows"]


# --- simulate.json's blocks a sweep and a cost model add (fifteenth attack, Q-M5) ------------

#: A cost model's alpha (s) and gamma (s/B) per algorithm, as a run under it took them.
COST_MODEL = table(
    {"path": text()},
    {
        "alpha_s": mapping(number(0.0, 1.0, "an alpha in seconds (0 to 1)")),
        "gamma_s_per_byte": mapping(number(0.0, 1e-3, "a gamma in s/B (0 to 1e-3)")),
    },
)
#: ``simulate --sweep``'s own block: the grid, as it ran.
SWEEP = table(
    {},
    {
        "file": text(),
        "points": count(1, 100_000, "a number of points"),
        "axes": mapping(items(text(), 1, 100_000, "a list of values")),
        "mpi_ranks": count(1, 10**6, "a number of MPI ranks"),
    },
)


def _a_string(v, where):
    if not isinstance(v, str):  # any string: Open MPI's own version ends in a NUL
        raise Invalid(where, f"expected a string, got {_got(v)}")


#: A bench record's typed fields besides its measurements, as ``model fit`` and ``report``
#: read them (a dtype of 5, hosts of 7, a count of {} were tracebacks: eighteenth attack,
#: U-H12, U-H13).
BENCH_FIELDS = {
    "dtype": text("float32", "float64"),
    "count": count(0, 1 << 50, "a whole number of elements"),
    "hosts": items(text(), 0, 10**7, "a list of host names"),
    "host_of_rank": items(count(0, 10**7, "a host number"), 1, 10**7, "a list of hosts"),
    "ranks_per_node": optional(count(1, 10**7, "a number of ranks")),
    "mpi_library": optional(_a_string),
}
