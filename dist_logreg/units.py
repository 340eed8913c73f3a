"""Sizes, rates and times as people write them (``64M``, ``400G``, ``50GB/s``, ``2us``):
one grammar for every option and spec key, and the printing. Pure Python.

The grammar (documented in docs/cli.md, "Units"):

- **size**: a whole number of bytes with an optional binary prefix: ``8``, ``4K``, ``64M``,
  ``1G``, ``2T`` (also written ``KiB``, ``KB``, ``MiB`` ...; always 1024-based).
- **rate**: a number, an optional prefix, an optional unit. Prefixes ``k M G T`` are decimal
  (1000, as links are sold), ``Ki Mi Gi Ti`` binary (1024); case does not matter. Units:
  ``bit``, ``bit/s``, ``bps``, ``b/s`` are bits per second, ``B``, ``B/s``, ``Bps``, ``byte/s``
  bytes per second (``b`` bit, ``B`` byte); no unit is bits per second (but a rate for
  ``tc``, :func:`parse_rate`, needs a prefix or unit: tc reads a bare number as bytes/s).
  So ``25G``, ``25Gbit/s``, ``25gbit`` (tc) and ``25Gbps`` are one rate, ``50GB/s`` is 400 Gbit/s.
- **time**: a number >= 0 with an optional unit ``ns``, ``us`` (``µs``), ``ms``, ``s``,
  ``min``, ``h``; no unit is seconds (``1e-6``).

Errors name the option or key: ``--link-rate: expected a rate such as ..., got 'fast'``.
"""

from __future__ import annotations

import argparse
import re

from dist_logreg.errors import UsageError

_SIZE = re.compile(r"([0-9]+)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)
_SIZE_SCALE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
_RATE = re.compile(
    _NUMBER + r"\s*(?:([kKmMgGtT])(i?))?\s*(bits?/s|bits?|bps|b/s|B/s|Bps|B|bytes?/s)?"
)
_BIT_UNITS = {None, "bit", "bits", "bit/s", "bits/s", "bps", "b/s"}
_DECIMAL = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_TIME_UNITS = {"": 1.0, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_TIME_UNITS.update({"min": 60.0, "h": 3600.0})
_TIME = re.compile(_NUMBER + r"\s*(ns|us|µs|ms|s|min|h)?", re.IGNORECASE)

RATE_EXAMPLES = "25G, 400Gbit/s, 100mbit (bits/s) or 50GB/s (bytes/s)"
BYTE_RATE_EXAMPLES = "50GB/s, 800MB/s (bytes/s) or 400G (bits/s)"
TIME_EXAMPLES = "2us, 500ns or 1e-6 (seconds)"


#: A plain decimal number in ASCII: Python's float() and int() also take Arabic-Indic digits
#: and underscores (``oversubscription=٣``, ``--steps ١٢``, ``1_000``: thirteenth attack,
#: M-M4; fourteenth, P-M1).
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN_WHOLE = re.compile(r"[+-]?[0-9]+")


def plain_float(text) -> float:
    """``float(text)`` for a plain ASCII decimal number, else NaN."""
    t = str(text).strip()
    return float(t) if PLAIN_NUMBER.fullmatch(t) else float("nan")


def plain_int(text) -> int | None:
    """``int(text)`` for a whole number in ASCII digits (an int as it is), else None."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    t = str(text).strip()
    return int(t) if _PLAIN_WHOLE.fullmatch(t) and len(t) <= 40 else None


def whole_arg(text: str) -> int:
    """An argparse ``type``: a whole number in ASCII digits (``int`` takes ``١٢``, ``1_0``)."""
    n = plain_int(text)
    if n is None:
        raise argparse.ArgumentTypeError(f"expected a whole number (ASCII digits), got {text!r}")
    return n


def number_arg(text: str) -> float:
    """An argparse ``type``: a plain decimal number in ASCII (``float`` takes ``٠.٥``); ``inf``
    and ``nan`` pass, for the option's own bound to name them."""
    word = str(text).strip().lower().lstrip("+-")
    if word in ("inf", "infinity", "nan"):  # ASCII words: the option's own check names them
        return float(str(text).strip())
    x = plain_float(text)
    if x != x:
        raise argparse.ArgumentTypeError(
            f"expected a number (ASCII decimal, such as 0.5 or 1e-4), got {text!r}"
        )
    return x


def _refuse(name: str | None, noun: str, examples: str, text) -> UsageError:
    where = f"{name}: " if name else ""
    return UsageError(f"{where}expected {noun} such as {examples}, got {text!r}")


def parse_bytes(text, name: str | None = None) -> int:
    """``"64M"`` -> 67108864: a size in bytes (binary prefixes K, M, G, T)."""
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise _refuse(name, "a byte count", "8, 4K, 64M or 1G", text)
    return int(m.group(1)) * _SIZE_SCALE.get((m.group(2) or "").lower(), 1)


def parse_bit_rate(
    text, name: str, *, noun: str = "a rate", examples: str = RATE_EXAMPLES
) -> float:
    """A rate > 0 in bits/s, in the grammar above: ``"25G"`` -> 2.5e10, ``"50GB/s"`` -> 4e11."""
    m = _RATE.fullmatch(str(text).strip())
    value = 0.0
    if m:
        number, prefix, binary, unit = m.groups()
        scale = _DECIMAL[(prefix or "").lower()]
        if binary:
            scale = 1024.0 ** "kmgt".index(prefix.lower()) * 1024.0
        value = float(number) * scale * (1.0 if unit in _BIT_UNITS else 8.0)
    if not 0.0 < value < float("inf"):
        raise _refuse(name, noun, examples, text)
    return value


def parse_byte_rate(text, name: str, *, examples: str = BYTE_RATE_EXAMPLES) -> float:
    """The same grammar, in bytes/s: ``"50GB/s"`` -> 5e10, ``"400G"`` -> 5e10."""
    return parse_bit_rate(text, name, examples=examples) / 8.0


def parse_link_rate(text, flag: str = "--link-rate") -> float:
    """A link rate in bits/s (``25G``, ``400G``, ``100mbit``); the error says "link rate"."""
    examples = "25G, 400G, 100M or 1gbit (bits/s)"
    return parse_bit_rate(text, flag, noun="a link rate", examples=examples)


def tc_rate(bits: float) -> str:
    """1e8 -> ``"100mbit"``: a rate as ``tc`` reads it."""
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.12g}{unit}"
    return f"{bits:.12g}bit"


def parse_rate(text: str | None, flag: str) -> str | None:
    """A rate for ``tc`` (None stays None): any rate of the grammar -> ``"100mbit"``."""
    if text is None:
        return None
    examples = "100mbit, 1gbit or 25G (bits/s)"
    bits = parse_bit_rate(text, flag, examples=examples)
    if re.fullmatch(_NUMBER, str(text).strip()):  # tc would read a bare number as bytes/s
        raise _refuse(flag, "a rate", examples + " with a unit", text)
    return tc_rate(bits)


def rate_bits(rate) -> float:
    """``"100mbit"`` -> 1e8: a stored rate (any form of the grammar) in bits/s."""
    return parse_bit_rate(rate, "rate")


def parse_seconds(text, name: str, *, examples: str = TIME_EXAMPLES) -> float:
    """A duration >= 0 in seconds: ``2us``, ``500ns``, ``1.5ms``, ``2h``, ``1e-6``."""
    m = _TIME.fullmatch(str(text).strip())
    value = -1.0
    if m:
        value = float(m.group(1)) * _TIME_UNITS[(m.group(2) or "").lower()]
    if not 0.0 <= value < float("inf"):
        raise _refuse(name, "a time", examples, text)
    return value


def parse_timeout(text, name: str) -> float:
    """A time that ends something (``30``, ``90s``, ``2min``), in seconds: 1 ms to 10^6 s
    (1e-300 killed every run at once and blamed the launcher; 1e300 is no limit:
    seventeenth attack, S-M8)."""
    try:
        value = parse_seconds(text, name)
    except UsageError:
        value = 0.0
    if not 1e-3 <= value <= 1e6:
        raise UsageError(
            f"{name}: expected a number of seconds from 0.001 to 1e+06 (e.g. 30, 90s, 2min), "
            f"got {text!r}"
        )
    return value


def _scaled(x: float, units: tuple[tuple[str, float], ...], spec: str) -> str:
    """``x`` in the largest unit it reaches (the last one below all); zero in the first."""
    for unit, scale in units:
        if abs(x) >= scale or x == 0:
            return f"{x / scale:{spec}} {unit}"
    unit, scale = units[-1]
    return f"{x / scale:{spec}} {unit}"


def format_bytes(n: float, spec: str = ".2f") -> str:
    """``1536`` -> ``"1.50 KiB"``: binary units; ``spec`` formats the number above 1 KiB."""
    if abs(n) < 1024:
        return f"{n:.0f} B"
    units = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
    return _scaled(n, units, spec)


def format_seconds(t: float, spec: str = ".2f", micro: str = "us") -> str:
    """``0.0123`` -> ``"12.30 ms"``; from ns to s (a small time gets a small unit).
    ``micro="µs"`` where the page can show it (the report)."""
    return _scaled(t, (("s", 1.0), ("ms", 1e-3), (micro, 1e-6), ("ns", 1e-9)), spec)


def format_bit_rate(bits: float, spec: str = "g") -> str:
    """1e11 -> ``"100 Gbit/s"``; down to bit/s, so a small rate never reads 0."""
    units = (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3))
    return _scaled(bits, units + (("bit/s", 1.0),), spec)


def format_link_rate(bits: float) -> str:
    """1e11 -> ``100 Gbit/s``."""
    return format_bit_rate(bits)


def format_byte_rate(b: float, spec: str = ".2f") -> str:
    """``2.5e6`` B/s -> ``"2.50 MB/s"`` (decimal); down to B/s, so a small rate never reads 0."""
    units = (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3), ("B/s", 1.0))
    return _scaled(b, units, spec)


def format_loss(v: float) -> str:
    """A loss as the console prints it: 6 decimals, or 6 significant digits above 10^6 (a
    diverging run's loss of 9.6e262 was printed with 263 digits: eighteenth attack, U-M1)."""
    return f"{v:.6f}" if abs(v) < 1e6 else f"{v:.6g}"


#: The link rates a ceiling or a prediction may take, bit/s (1 B/s to 100 TB/s): model
#: predict's; report's --link-rate of 1e300 drew a ceiling of 1e+291 Gbit/s (U-H17).
LINK_RATE_BOUNDS = (8.0, 8e14)


def bounded_link_rate(text, name: str) -> float:
    """:func:`parse_bit_rate` within :data:`LINK_RATE_BOUNDS`, or ``UsageError``."""
    bits, (low, high) = parse_bit_rate(text, name), LINK_RATE_BOUNDS
    if not low <= bits <= high:
        raise UsageError(f"{name}: expected {low:g} to {high:g} bit/s, got {text!r}")
    return bits
