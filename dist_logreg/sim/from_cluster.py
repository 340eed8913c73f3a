"""A fabric from an emulated cluster (``--fabric cluster:NAME``): its state as fabric keys,
and its measured paths (``flows.json``) as pinned routes. Pure: the command line reads the
files, :func:`dist_logreg.sim.fabric.resolve` calls this.

The emulated hosts become a leaf-spine (``two-tier``: one spine; ``flat``: one switch) with
the cluster's shaped rates, or better, its calibrated bidirectional ceilings (an allreduce
sends and receives at once). A flow map pins each host pair to the spine that carried most
of its bytes; pairs the map does not name are hashed as usual.
"""

from __future__ import annotations

import re

from dist_logreg import units
from dist_logreg.errors import UsageError


def _gbit(text) -> str:
    """A cluster's tc rate (``"100mbit"``) as a fabric spec rate (``"0.1G"``, bits/s)."""
    return f"{units.rate_bits(str(text)) / 1e9:g}G"


def overrides(state: dict) -> tuple[str, dict]:
    """``(preset, {key: (value, source)})`` of a cluster's ``state.json`` contents."""
    spec = state.get("spec", {})
    name = spec.get("name", "?")
    hosts = int(spec.get("hosts", len(state.get("hosts", [])) or 2))
    topo = spec.get("topology", "flat")
    src = f"cluster {name}"
    out = {"hash": (spec.get("hash", "l4"), src)}
    # Linux leaves hash with one function and seed (collective/ecmp.py): polarized
    out["hash-polarize"] = (True, f"{src} (Linux: one hash seed on every leaf)")
    if spec.get("rate"):
        out["rate"] = (_gbit(spec["rate"]), f"{src} (shaped rate)")
    cal = (state.get("calibration") or {}).get("classes", {})
    if "host" in cal:
        out["rate"] = (cal["host"]["bidir_Gbps"] * 1e9 / 8, f"{src} (calibrated host ceiling)")
    if spec.get("delay_ms"):
        out["link-latency"] = (spec["delay_ms"] * 1e-3, f"{src} (delay)")
    if topo == "flat":
        return f"flat:hosts={hosts}", out
    leaves = int(spec.get("leaves", 2))
    spines = int(spec.get("spines", 2)) if topo == "leaf-spine" else 1
    if spec.get("uplink_rate"):
        out["uplink-rate"] = (_gbit(spec["uplink_rate"]), f"{src} (shaped uplink rate)")
    if "uplink" in cal:
        out["uplink-rate"] = (
            cal["uplink"]["bidir_Gbps"] * 1e9 / 8,
            f"{src} (calibrated uplink ceiling)",
        )
    per_leaf = -(-hosts // leaves)
    return f"leaf-spine:leaves={leaves},spines={spines},hosts-per-leaf={per_leaf}", out


def spec_of(state: dict, extra: str = "") -> tuple[str, dict, list]:
    """``(preset, overrides, spine names)`` of ``cluster:NAME[,extra]``: the cluster's keys
    (:func:`overrides`), with the user's ``extra`` keys (``alpha=2ms,...``) winning."""
    preset, over = overrides(state)
    if extra.strip():
        preset += "," + extra.strip()
        for key in [k.split("=")[0].strip().lower() for k in extra.split(",") if k.strip()]:
            over.pop(key, None)
    name = state.get("spec", {}).get("name", "?")
    spines = [r[len(name) + 1 :] for r in state.get("routers", []) if r.startswith(f"{name}-s")]
    return preset, over, spines


def _index(name: str, what: str) -> int:
    m = re.fullmatch(r"[a-z]+(\d+)", str(name))
    if not m:
        raise UsageError(f"flows.json: expected a {what} name such as h0 or s1, got {name!r}")
    return int(m.group(1))


def pinned(flows_doc, spine_names=None) -> dict:
    """``{(src host, dst host): spine index}`` from a flow map (``flows.json``).

    ``spine_names``: the cluster's spines in order (``["s0", "s1"]``); default: by number.
    """
    flows = flows_doc.get("flows", []) if isinstance(flows_doc, dict) else flows_doc
    order = list(spine_names) if spine_names else None
    best: dict = {}
    for f in flows:
        if not isinstance(f, dict) or "src" not in f or f.get("spine") in (None, "unseen"):
            continue
        pair = (_index(f["src"], "host"), _index(f["dst"], "host"))
        spine = (
            order.index(f["spine"])
            if order and f["spine"] in order
            else _index(f["spine"], "spine")
        )
        if f.get("bytes", 0) >= best.get(pair, (-1, 0))[0]:
            best[pair] = (f.get("bytes", 0), spine)
    if order is None and best:  # numbers as named: make them 0-based
        low = min(s for _, s in best.values())
        best = {k: (b, s - low) for k, (b, s) in best.items()}
    return {pair: s for pair, (_, s) in best.items()}
