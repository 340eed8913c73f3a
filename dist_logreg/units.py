"""Sizes and rates as people write them (``64M``, ``1gbit``, ``400G``): parsing and printing,
pure Python."""

from __future__ import annotations

from dist_logreg.errors import UsageError

_SUFFIX = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GIB": 1 << 30,
}


def parse_bytes(text: str) -> int:
    """``"64M"`` -> 67108864 (binary suffixes K, M, G, optional "iB"/"B")."""
    t = text.strip().upper()
    digits = t.rstrip("KMGIB")
    unit = t[len(digits) :]
    if not digits.isdigit() or unit not in _SUFFIX:
        raise UsageError(f"expected a byte count such as 8, 4K, 64M or 1G, got {text!r}")
    return int(digits) * _SUFFIX[unit]


def parse_rate(text: str | None, flag: str) -> str | None:
    """``tc`` rate syntax: a number with kbit, mbit or gbit (e.g. 100mbit, 1gbit)."""
    if text is None:
        return None
    t = text.strip().lower()
    for unit in ("gbit", "mbit", "kbit", "bit"):
        if t.endswith(unit) and t[: -len(unit)].replace(".", "", 1).isdigit():
            if float(t[: -len(unit)]) > 0:
                return t
    raise UsageError(f"{flag}: expected a rate such as 100mbit or 1gbit, got {text!r}")


def rate_bits(rate: str) -> float:
    """``"100mbit"`` -> 1e8 (bits per second)."""
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if rate.endswith(unit):
            return float(rate[: -len(unit)]) * scale
    raise ValueError(rate)


def format_bytes(n: float, spec: str = ".2f") -> str:
    """``1536`` -> ``"1.50 KiB"``: binary units; ``spec`` formats the number above 1 KiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:{spec}} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


_BIT_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_link_rate(text: str, flag: str = "--link-rate") -> float:
    """A link rate in bits/s: ``25G``, ``400G``, ``100M`` (decimal prefixes, bits, as links
    are sold), also ``100mbit``, ``1gbit`` (tc) and ``10Gbps``."""
    t = text.strip().lower()
    for unit in ("bit/s", "bps", "bit", "b/s"):
        if t.endswith(unit):
            t = t[: -len(unit)]
            break
    prefix = t[-1:] if t[-1:] in _BIT_PREFIX else ""
    number = t[: len(t) - len(prefix)]
    try:
        value = float(number) * _BIT_PREFIX[prefix]
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise UsageError(
            f"{flag}: expected a link rate such as 25G, 400G, 100M or 1gbit (bits/s), got {text!r}"
        )
    return value


def format_link_rate(bits: float) -> str:
    """1e11 -> ``100 Gbit/s``."""
    for scale, unit in ((1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bits >= scale:
            return f"{bits / scale:g} {unit}"
    return f"{bits:g} bit/s"


_TIME = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0}


def parse_seconds(text: str, flag: str) -> float:
    """A duration >= 0 as people write one: ``2us``, ``500ns``, ``1.5ms``, ``1e-6`` (s)."""
    t = text.strip().lower().replace(" ", "")
    for unit in ("ns", "us", "µs", "ms", "s", ""):
        if t.endswith(unit):
            try:
                value = float(t[: len(t) - len(unit)]) * _TIME[unit]
            except ValueError:
                continue
            if 0 <= value < float("inf"):
                return value
            break
    raise UsageError(f"{flag}: expected a time such as 2us, 500ns or 1e-6 (seconds), got {text!r}")


_BYTE_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_byte_rate(text: str, flag: str) -> float:
    """A rate in bytes/s > 0: ``50GB/s``, ``50G``, ``800MB/s`` (decimal prefixes)."""
    t = text.strip().lower().replace(" ", "")
    for unit in ("b/s", "bps", "b"):
        if t.endswith(unit):
            t = t[: -len(unit)]
            break
    prefix = t[-1:] if t[-1:] in _BYTE_PREFIX else ""
    try:
        value = float(t[: len(t) - len(prefix)]) * _BYTE_PREFIX[prefix]
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"{flag}: expected a rate such as 50GB/s or 800MB/s (bytes/s), got {text!r}"
        )
    return value
