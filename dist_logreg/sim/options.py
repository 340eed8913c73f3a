"""Typed engine options that carry their own command-line flag: one place per default.

An options class is a frozen dataclass whose fields are made with :func:`option`: the
field's default is the only place that default is written; its metadata (a :class:`Flag`)
says how the command line spells it, how text (or a Python value) is read into the typed
value, and the ``--help`` phrase. :func:`add_arguments` turns such a class into argparse
arguments with ``default=None`` (so "given explicitly" is "not None"), and :func:`read`
turns the given values into keyword arguments of the class; what is not given keeps the
field's default. The packet engine's options (:mod:`.packet_options`) and every
transport's (:mod:`.transports`) are written this way.

Example::

    >>> @dataclass(frozen=True)
    ... class Knobs:
    ...     queue: int = option(1 << 20, "--queue", size, "buffer in bytes", show=show_size)
    >>> Knobs(**read(Knobs, {"queue": "256K"}))
    Knobs(queue=262144)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from dist_logreg.errors import UsageError
from dist_logreg.sim.spec import seconds as spec_seconds
from dist_logreg.units import (
    LINK_RATE_BOUNDS,
    parse_bit_rate,
    parse_bytes,
    plain_float,
    plain_int,
    tc_rate,
)


@dataclass(frozen=True)
class Flag:
    """How one option is written: ``read(value, flag)`` takes CLI text or a Python value."""

    flag: str
    read: Callable
    help: str
    show: Callable | None = None  # the default as --help prints it (None: not printed)
    metavar: str | None = None
    choices: tuple | None = None
    repeat: bool = False  # the flag may be given several times (a list of NAME=VALUE)


def option(default, flag: str, read: Callable, help: str, **kw):
    """A dataclass field with its flag (a ``dict`` default becomes a fresh ``{}``)."""
    meta = {"flag": Flag(flag, read, help, **kw)}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


def flags(cls) -> dict:
    """``{field name: Flag}`` of an options class, in field order."""
    return {f.name: f.metadata["flag"] for f in dataclasses.fields(cls) if "flag" in f.metadata}


def add_arguments(group, cls, prefix: str) -> None:
    """One argparse argument per field of ``cls``, dest ``prefix + name``, default None."""
    for name, fl in flags(cls).items():
        default = getattr(cls(), name)
        shown = f" (default {fl.show(default)})" if fl.show else ""
        kw = {"metavar": fl.metavar} if fl.metavar else {}
        if fl.choices:
            kw["choices"] = fl.choices
        if fl.repeat:
            kw["action"] = "append"
        group.add_argument(fl.flag, dest=prefix + name, default=None, help=fl.help + shown, **kw)


def read(cls, given: dict) -> dict:
    """Keyword arguments of ``cls`` from the given values (CLI text or Python values)."""
    fl = flags(cls)
    return {k: fl[k].read(v, fl[k].flag) for k, v in given.items() if k in fl}


# readers: (CLI text or Python value, flag) -> typed value; bad input -> UsageError naming flag


def choice(options: tuple) -> Callable:
    def read_choice(value, flag: str) -> str:
        if str(value) not in options:
            raise UsageError(f"{flag}: expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return read_choice


#: ns-3 counts a queue's bytes in 32 bits; its clock is int64 nanoseconds, and no link's
#: delay or timeout is physical beyond the fabric spec's own bound on a hop (10 s).
MAX_SIZE, MAX_DURATION_S = 2**32 - 1, 10.0


def size(value, flag: str) -> int:
    """Bytes: an int as it is, text with binary suffixes (``256K``); None or ``off`` is 0."""
    if value is None or str(value).strip().lower() == "off":
        return 0
    try:
        n = value if isinstance(value, int) else parse_bytes(str(value))
    except UsageError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    if not 0 <= n <= MAX_SIZE:
        raise UsageError(f"{flag}: expected 0 to {MAX_SIZE} bytes (ns-3's limit), got {n}")
    return n


def percent(value, flag: str) -> float:
    """A probability: a float as it is; text (or an int) in percent, ``0 <= PCT < 100``."""
    if isinstance(value, float):
        return value
    pct = plain_float(str(value).strip().rstrip("%"))  # ASCII (--loss 0.８: R-M2)
    if not 0.0 <= pct < 100.0:
        raise UsageError(f"{flag}: expected a loss in percent, 0 <= PCT < 100, got {value!r}")
    return pct / 100.0


def duration(value, flag: str) -> float:
    """Seconds: a float as it is; text with s, ms, us, ns (a bare number is seconds)."""
    t = float(value) if isinstance(value, float) else spec_seconds(value, flag)
    if not 0.0 <= t <= MAX_DURATION_S:
        raise UsageError(f"{flag}: expected 0 to {MAX_DURATION_S:g} s, got {t:g}")
    return t


#: A timer's shortest period: one of ns-3's 1 ns steps would reschedule it at +0 forever.
MIN_TIMER_S = 1e-6


def timer(value, flag: str) -> float:
    """A timer's period: :func:`duration`, and at least :data:`MIN_TIMER_S` (1 us)."""
    t = duration(value, flag)
    if t < MIN_TIMER_S:
        raise UsageError(
            f"{flag}: expected a timer of at least {MIN_TIMER_S * 1e6:g} us (a timer of 0 "
            f"fires again at once, forever), got {t:g} s"
        )
    return t


def wall(value, flag: str) -> float:
    """Like :func:`time`, and ``2h``, ``10min`` too; more than 0."""
    t = _wall(value, flag)
    if not t > 0:
        raise UsageError(f"{flag}: expected a wall time > 0 (e.g. 10min, 2h), got {value!r}")
    return t


def _wall(value, flag: str) -> float:
    t = str(value).strip().lower()
    if isinstance(value, float):
        return value
    if not t.isascii():  # isdigit() takes a superscript that float() does not
        return spec_seconds(t, flag)
    if t.endswith("h") and t[:-1].replace(".", "", 1).isdigit():
        return float(t[:-1]) * 3600.0
    if t.endswith("min") and t[:-3].replace(".", "", 1).isdigit():
        return float(t[:-3]) * 60.0
    return spec_seconds(t, flag)


def bit_rate(value, flag: str) -> float:
    """Bits/s: a float as it is; text such as ``40mbit``, ``25G``; within
    :data:`~dist_logreg.units.LINK_RATE_BOUNDS` (``--dcqcn-min-rate 1e300`` was run)."""
    rate, (low, high) = (
        float(value) if isinstance(value, float) else parse_bit_rate(value, flag),
        LINK_RATE_BOUNDS,
    )
    if not low <= rate <= high:
        raise UsageError(f"{flag}: expected {low:g} to {high:g} bit/s, got {value!r}")
    return rate


def fraction(value, flag: str) -> float:
    """A number in (0, 1]: a float or text (``0.01``, ``1/256``)."""
    text = str(value).strip()
    num, _, den = text.partition("/")
    x, d = plain_float(num), plain_float(den) if den else 1.0  # ASCII (--ecn-pmax 0.８)
    x = x / d if d == d and d != 0 else float("nan")
    if not 0.0 < x <= 1.0:
        raise UsageError(
            f"{flag}: expected a number in (0, 1] such as 0.01 or 1/256, got {value!r}"
        )
    return x


def count(value, flag: str, most: int = 100_000, least: int = 0) -> int:
    """A whole number from ``least`` to ``most`` (queue samples: each is a row of every
    link)."""
    n = plain_int(value)  # ASCII digits (int() took --ack-every ٥: fourteenth attack, P-M1)
    if n is None or not least <= n <= most:
        raise UsageError(f"{flag}: expected a whole number from {least} to {most}, got {value!r}")
    return n


def count_from_one(value, flag: str) -> int:
    """:func:`count` from 1 (``--ack-every``: an ACK every 0 packets is none)."""
    return count(value, flag, least=1)


def pairs(read_value: Callable) -> Callable:
    """``NAME=VALUE`` items (a list, or one string) into ``{name: value}``; a dict as it is."""

    def read_pairs(items, flag: str) -> dict:
        if isinstance(items, dict):
            return items
        out = {}
        for item in [items] if isinstance(items, str) else list(items):
            name, sep, value = str(item).rpartition("=")
            if not sep or not name:
                raise UsageError(f"{flag}: expected NAME=VALUE, got {item!r}")
            out[name.strip()] = read_value(value.strip(), f"{flag} {name.strip()}")
        return out

    return read_pairs


# formatters of defaults for --help: read(show(default)) == default (a test checks)


def show_size(n: int) -> str:
    """``1 << 20`` -> ``"1M"``; 0 -> ``"off"``."""
    if n == 0:
        return "off"
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def show_rate(bits: float) -> str:
    """``4e7`` -> ``"40mbit"``."""
    return tc_rate(bits)


def show_percent(p: float) -> str:
    return f"{p * 100:g}"


def show_time(t: float) -> str:
    """``0.2`` -> ``"200ms"``, ``3600.0`` -> ``"1h"``."""
    for unit, scale in (("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:g}{unit}"
    return f"{t * 1e9:g}ns"
