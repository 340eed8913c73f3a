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

from dist_logreg import schema, units
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


#: ``flows.json``'s schema is the file kind's one (:mod:`dist_logreg.schema`), which
#: ``report`` reads it with too.
FLOWS_SCHEMA, flows_of = schema.FLOWS_SCHEMA, schema.flows_of


def _index(name: str, where: str, what: str, high: int, names: str) -> int:
    m = re.fullmatch(r"[a-z]+([0-9]+)", str(name))  # ASCII digits: int() takes "０" too
    if not m or (high >= 0 and int(m.group(1)) >= high):
        raise UsageError(f"{where}: expected {what} ({names}), got {name!r}")
    return int(m.group(1))


def pinned(flows_doc, spine_names=None, fab=None, name: str = "flows.json") -> dict:
    """``{(src host, dst host): spine index}`` from a flow map (``flows.json``), every flow
    checked (:func:`flows_of`) and, given the fabric ``fab``, its hosts and spines too.

    ``spine_names``: the cluster's spines in order (``["s0", "s1"]``); default: by number.
    """
    flows = flows_of(flows_doc, name)
    hosts = fab.hosts if fab is not None else -1
    shape = getattr(fab.topology, "shape", None) if fab is not None else None
    planes = int(getattr(shape, "planes", 1) or 1)
    if planes > 1:  # a spine index was put past the links: a traceback (twelfth attack, L-H30)
        raise UsageError(
            f"{name}: a flow map pins each flow to a spine of a one-plane fabric (an emulated "
            f"cluster's); this fabric has planes={planes}, whose spines a flow's plane "
            "decides: expected planes=1, or no --flows"
        )
    n_spines = int(getattr(shape, "spines", 0)) if fab is not None else -1
    host_names = f"h0..h{hosts - 1}, {hosts} hosts" if hosts > 0 else "h0, h1, ..."
    order = list(spine_names) if spine_names else None
    spine_text = (
        ", ".join(order)
        if order
        else f"s0..s{n_spines - 1}, {n_spines} spines"
        if n_spines > 0
        else "none: this fabric has no spines"
    )
    seen = []  # (pair, bytes, spine as named, flow index)
    for i, f in enumerate(flows):
        where = f"{name}: flows[{i}]"
        pair = tuple(
            _index(f[k], f"{where}.{k}", "a host of the fabric", hosts, host_names)
            for k in ("src", "dst")
        )
        if f["spine"] in (None, "unseen"):
            continue
        if order and f["spine"] not in order:
            raise UsageError(
                f"{where}.spine: expected one of the cluster's spines {spine_text}, "
                f"got {f['spine']!r}"
            )
        spine = (
            order.index(f["spine"])
            if order
            else _index(f["spine"], f"{where}.spine", "a spine", -1, spine_text)
        )
        seen.append((pair, f["bytes"], spine, i))
    best: dict = {}  # by number, s0 is the first spine (as the cluster names them)
    for pair, nbytes, spine, i in seen:
        if n_spines >= 0 and spine >= n_spines:
            raise UsageError(
                f"{name}: flows[{i}].spine: expected a spine of the fabric ({spine_text}), "
                f"got {flows[i]['spine']!r}"
            )
        if nbytes >= best.get(pair, (-1, 0))[0]:
            best[pair] = (nbytes, spine)
    return {pair: s for pair, (_, s) in best.items()}
