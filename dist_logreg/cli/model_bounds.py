"""``model fit|predict``: what their options may be, checked before anything is fitted or
predicted.

The same bounds as the simulator's (``dist_logreg.sim.values.BOUNDS``): a prediction of
``inf`` or ``nan%`` from an option out of range is refused here, in one line.
"""

from __future__ import annotations

import argparse
import re

from dist_logreg.errors import UsageError

#: The largest payload a prediction takes, as ``simulate --bytes`` (1 TiB).
MAX_BYTES = 1 << 40
_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?"
#: ``option -> (low, high, unit)``: the simulator's bounds for the same quantities.
BOUNDS = {
    "--alpha": (0.0, 100.0, "s"),
    "--link-latency": (0.0, 10.0, "s"),
    "--gamma": (0.0, 1.0, "s/B"),
    "--link-rate": (8.0, 8e14, "bit/s"),
    "--reduce-rate": (1.0, 1e14, "B/s"),
    "--oversubscription": (1e-3, 1e3, ""),
}


def whole(text: str) -> int:
    """An argparse type: a whole number in ASCII digits (``int`` takes ``４`` and ``²`` no)."""
    t = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,18}", t):
        raise argparse.ArgumentTypeError(f"expected a whole number (ASCII digits), got {text!r}")
    return int(t)


def bounded(flag: str, value: float, shown: str | None = None) -> float:
    """``value`` when within ``BOUNDS[flag]``, else one line naming the bound."""
    low, high, unit = BOUNDS[flag]
    if not low <= value <= high:
        side = f"at least {low:g}" if value < low else f"at most {high:g}"
        u = f" {unit}" if unit else ""
        raise UsageError(
            f"{flag}: expected {side}{u} ({low:g} to {high:g}), got {shown or f'{value:g}'}"
        )
    return value


def oversubscription(text: str) -> float:
    """``"2:1"`` (or ``"2"``) -> 2.0, within the simulator's bounds."""
    m = re.fullmatch(rf"\s*({_NUMBER})\s*(?::\s*1)?\s*", text)
    if not m:
        raise UsageError(f"--oversubscription: expected X:1 with X > 0, e.g. 2:1, got {text!r}")
    return bounded("--oversubscription", float(m.group(1)), repr(text))


def check_fabric(user: dict, link_rate: float | None) -> None:
    """The user's ``alpha``, ``link_latency``, ``gamma`` (seconds) and link rate (bits/s)."""
    for key, value in user.items():
        bounded("--" + key.replace("_", "-"), value)
    if link_rate is not None:
        bounded("--link-rate", link_rate)


def check_sizes(sizes: list[int], flag: str) -> list[int]:
    """Each payload 1 B to 1 TiB (0 B divided by zero in the trust check)."""
    if not sizes:
        raise UsageError(f"{flag}: expected at least one size, e.g. 8,64K,16M")
    for n in sizes:
        if not 1 <= n <= MAX_BYTES:
            raise UsageError(f"{flag}: expected 1 to {MAX_BYTES} bytes (1 TiB) a call, got {n}")
    return sizes


def check_link_latency(model: dict, user: dict) -> None:
    """``--link-latency`` is added to the inter-host links the fit measured; a model fitted
    on one host has none (its intra-host parameters stand in), so it would be ignored."""
    if "link_latency" not in user:
        return
    fitted = any(
        seg.get("inter") is not None
        for alg in model["algorithms"].values()
        for seg in alg["segments"]
    )
    if not fitted:
        raise UsageError(
            f"--link-latency {user['link_latency']:g} s: the model has no inter-host links "
            "fitted (its bench ran on one host), so the latency would not be added; expected "
            "a model fitted across hosts, or --alpha for every message"
        )


#: The largest size a bench record may hold (``benchfit.MAX_BYTES``): a boundary past it
#: makes a segment nothing can be measured in.
MAX_BREAKPOINT = 1 << 50


def check_breakpoints(bps: list[int], text: str) -> None:
    """``model fit --breakpoints``: increasing sizes from 1 B to 2^50 B."""
    if any(not 1 <= b <= MAX_BREAKPOINT for b in bps):
        raise UsageError(
            f"--breakpoints: expected message sizes from 1 B to 2^50 B (what a bench record "
            f"may hold), got {text!r}"
        )
    if any(b >= c for b, c in zip(bps, bps[1:], strict=False)):
        raise UsageError(
            f"--breakpoints: expected increasing sizes, each once (e.g. 64K,1M), got {text!r}"
        )
