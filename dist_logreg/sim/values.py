"""The readers of a fabric spec's values and their bounds (:mod:`.spec` holds the keys).

Each reader is ``reader(text, key) -> value`` in SI units and raises ``UsageError`` naming
the key and the value: ``fabric spec: hosts: expected a whole number >= 1, got '²'``.
:data:`BOUNDS` says what is physical per key; :func:`bounded` holds a value to it.
"""

from __future__ import annotations

import re

from dist_logreg import schema, units
from dist_logreg.errors import UsageError
from dist_logreg.units import plain_float

HASHES = ("l3", "l4", "spray")


def seconds(text, key: str) -> float:
    """``"5us"`` -> 5e-6; a bare number is seconds (the grammar of :mod:`dist_logreg.units`)."""
    name = key if key.startswith("-") else f"fabric spec: {key}"  # an option names itself
    return units.parse_seconds(text, name, examples="1us, 5us or 0.2ms")


def bytes_per_s(text, key: str) -> float:
    """A rate in bytes/s: ``"400G"`` (bits/s, as links are sold), ``"20GB/s"`` (bytes/s)."""
    name = key if key.startswith("-") else f"fabric spec: {key}"  # an option names itself
    examples = "100G, 400G (bits/s) or 20GB/s (bytes/s)"
    return units.parse_byte_rate(text, name, examples=examples)


def count(text, key: str, low: int = 1) -> int:
    t = str(text).strip()
    if not re.fullmatch(r"[0-9]{1,30}", t) or int(t) < low:  # isdigit() would take a superscript
        raise UsageError(f"fabric spec: {key}: expected a whole number >= {low}, got {text!r}")
    return int(t)


def positive(text, key: str) -> float:
    t = re.sub(r":\s*1$", "", str(text).strip())  # "2:1" means 2
    value = plain_float(t)
    if not 0.0 < value < float("inf"):  # NaN fails too
        raise UsageError(f"fabric spec: {key}: expected a positive number such as 2, got {text!r}")
    return value


def yes_no(text, key: str) -> bool:
    t = str(text).strip().lower()
    if t in ("yes", "true", "1", "on"):
        return True
    if t in ("no", "false", "0", "off"):
        return False
    raise UsageError(f"fabric spec: {key}: expected yes or no, got {text!r}")


def choice(options):
    def parse(text, key: str) -> str:
        t = str(text).strip().lower()
        if t not in options:
            raise UsageError(
                f"fabric spec: {key}: expected one of {'|'.join(options)}, got {text!r}"
            )
        return t

    return parse


def ecmp_hash(text, key: str) -> str:
    """``l3``, ``l4``, ``spray``, or ``qp:N``: each connection split over N queue pairs that
    hash independently (N from 1 to 64)."""
    t = str(text).strip().lower()
    m = re.fullmatch(r"qp:([0-9]{1,2})", t)
    if t in HASHES or (m and 1 <= int(m.group(1)) <= 64):
        return f"qp:{int(m.group(1))}" if m else t
    raise UsageError(
        f"fabric spec: {key}: expected one of {'|'.join(HASHES)}, got {text!r} (or qp:N, N "
        "queue pairs per connection, 1 to 64)"
    )


def mtu(text, key: str) -> int:
    t = str(text).strip().upper().removesuffix("B")
    if not re.fullmatch(r"[0-9]{1,6}", t) or not 68 <= int(t) <= 65536:
        raise UsageError(f"fabric spec: {key}: expected bytes between 68 and 65536, got {text!r}")
    return int(t)


#: What is physical, per key (the table lives with the schemas: a ``simulate.json``'s fabric
#: block is held to it too).
BOUNDS = schema.FABRIC_BOUNDS


def bounded(key: str, value, unit: str) -> None:
    """``UsageError`` naming the bound unless ``low <= value <= high`` (NaN is not)."""
    low, high = BOUNDS[key]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and low <= value <= high:
        return
    u = f" {unit}" if unit else ""
    show = lambda v: str(v) if isinstance(v, int) else f"{v:g}"  # noqa: E731
    want = f"{show(low)} to {show(high)}{u}"
    if number and value < low:
        want = f"at least {show(low)}{u} ({want})"
    elif number and value > high:
        want = f"at most {show(high)}{u} ({want})"
    got = show(value) if number else repr(value)
    raise UsageError(f"fabric spec: {key}: expected {want}, got {got}")
