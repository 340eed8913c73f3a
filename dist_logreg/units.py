"""Sizes and rates as people write them (``64M``, ``1gbit``): parsing and printing, pure
Python."""

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
