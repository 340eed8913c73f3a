"""Fabric specs as people write them: ``leaf-spine:leaves=32,spines=16,rate=400G``, or a
JSON/TOML file holding the same keys. Pure parsing: text to numbers in SI units.

The presets are a table, :data:`PRESETS`: one :class:`Preset` record per topology, naming
the function that builds it and the keys of its shape. Every other key, its unit and its
default is in :data:`KEYS`; :func:`parse_spec` returns the
values and, for each one, where it came from (``preset``, ``spec``, ``file``, ``default``,
``derived``, or what the caller says, e.g. ``cost-model``). Errors name the key and the
value: ``fabric spec: rate: expected a link rate such as 100G or 400G, got 'fast'``.
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.files import loads
from dist_logreg.sim.values import (  # noqa: F401  (read through spec by callers)
    BOUNDS,
    HASHES,
    bounded,
    bytes_per_s,
    choice,
    count,
    ecmp_hash,
    mtu,
    positive,
    seconds,
    yes_no,
)

#: The keys every preset takes: key -> (parser, default, unit, help). Defaults None: absent
#: unless given (or derived).
KEYS = {
    "rate": (bytes_per_s, 400e9 / 8, "B/s", "host link rate"),
    "link-latency": (seconds, 1e-6, "s", "per hop, propagation + switching"),
    "alpha": (seconds, 5e-6, "s", "per-message software overhead at the host"),
    "gamma": (seconds, None, "s/B", "seconds per byte reduced"),
    "reduce-rate": (bytes_per_s, None, "B/s", "bytes reduced per second (1/gamma)"),
    "host-rate": (bytes_per_s, 100e9, "B/s", "a flow between two ranks of one host"),
    "mtu": (mtu, 9000, "B", "maximum transfer unit"),
    "hash": (ecmp_hash, "l4", "", "ECMP: l3 host pair, l4 5-tuple, spray, qp:N queue pairs"),
    "qps": (count, None, "", "queue pairs per connection, each hashed (hash=qp:N)"),
    "hash-seed": (lambda t, k: count(t, k, 0), 0, "", "seed of the ECMP hash"),
    "hash-polarize": (yes_no, False, "", "every switch hashes with one function and seed"),
}


@dataclass(frozen=True)
class Preset:
    """One topology preset: ``--fabric NAME:key=value,...`` (or ``topology = NAME``).

    ``build``: ``"module:function"``, ``function(values, source) -> Topology`` (imported
    when a fabric is built; it may add derived values); ``keys``: the preset's own keys,
    ``key -> (parser, default, unit, help)`` as in :data:`KEYS`; ``file``: a parameter file
    of ``dist_logreg.sim.presets`` whose values sit below the spec's (a named preset).
    """

    name: str
    build: str
    keys: dict
    help: str = ""
    file: str = ""

    def builder(self):
        module, _, fn = self.build.partition(":")
        return getattr(importlib.import_module(module), fn)


_UPLINK = {
    "hosts-per-leaf": (count, None, "hosts", "hosts under each leaf"),
    "uplink-rate": (bytes_per_s, None, "B/s", "leaf-to-spine link rate (default: rate)"),
    "oversubscription": (positive, None, "", "leaf: host bandwidth / uplink bandwidth"),
}
_CLOS = "dist_logreg.sim.topology.clos:build"


#: The keys of the rail family (``rail``, ``rail3``, ``tor`` and the named presets).
_RAIL = {
    "hosts-per-unit": (count, None, "hosts", "hosts in a scalable unit (one leaf per rail)"),
    "units": (count, 1, "units", "scalable units"),
    "rails": (count, None, "NICs", "NICs per host (default 8)"),
    "nics-per-host": (count, None, "NICs", "the same as rails"),
    "gpus-per-host": (count, 8, "GPUs", "GPUs (ranks) per host; GPU g uses NIC g*nics/gpus"),
    "nic-ports": (count, 1, "ports", "ports per NIC"),
    "dual-tor": (yes_no, False, "", "each port of a NIC on its own ToR of a pair"),
    "planes": (count, 1, "", "2: ToR k of each pair reaches only plane k's spines"),
    "pxn": (yes_no, True, "", "cross-rail traffic over the scale-up domain first (NCCL PXN)"),
    "nic-efficiency": (positive, 1.0, "", "share of a NIC port's rate a transfer reaches"),
    "scaleup-rate": (bytes_per_s, 450e9, "B/s", "each GPU into its scale-up switch, each way"),
    "scaleup-latency": (seconds, 1e-6, "s", "per scale-up hop"),
    "spines": (count, None, "switches", "spines (per pod with a core tier)"),
    "uplink-rate": _UPLINK["uplink-rate"],
    "oversubscription": (positive, None, "", "leaf: down / up bandwidth (default 1)"),
    "units-per-pod": (count, None, "units", "units under one pod's spines (rail3)"),
    "cores-per-plane": (count, None, "switches", "cores each spine reaches (default pods/2)"),
    "core-rate": (bytes_per_s, None, "B/s", "spine-to-core rate (default: non-blocking)"),
    "core-oversubscription": (positive, None, "", "spine: down / up bandwidth (default 1)"),
}
_RAILS = "dist_logreg.sim.topology.rail"

#: The preset table: every fabric spec names one (tests may add a record).
PRESETS = {
    p.name: p
    for p in (
        Preset(
            "flat",
            _CLOS,
            {"hosts": (count, None, "hosts", "hosts on the one switch")},
            "one switch",
        ),
        Preset(
            "leaf-spine",
            _CLOS,
            {
                "leaves": (count, None, "switches", "leaves"),
                "spines": (count, None, "switches", "spines"),
                **_UPLINK,
            },
            "two tiers",
        ),
        Preset(
            "fat-tree",
            _CLOS,
            {"k": (count, None, "ports", "switch radix (even)")},
            "a k-ary fat tree",
        ),
        Preset(
            "clos3",
            _CLOS,
            {
                "pods": (count, None, "pods", "pods"),
                "leaves-per-pod": (count, None, "switches", "leaves in each pod"),
                "spines-per-pod": (count, None, "switches", "spines in each pod"),
                "super-spines": (count, None, "switches", "a multiple of spines-per-pod"),
                **_UPLINK,
                "core-rate": (bytes_per_s, None, "B/s", "spine-to-super-spine rate"),
                "core-oversubscription": (positive, None, "", "spine down / up bandwidth"),
            },
            "three tiers",
        ),
        Preset("rail", f"{_RAILS}:build_rail", _RAIL, "rail-optimized, two tiers"),
        Preset("rail3", f"{_RAILS}:build_rail", _RAIL, "rail-optimized, a core tier over pods"),
        Preset("tor", f"{_RAILS}:build_tor", _RAIL, "every NIC of a host on one leaf"),
        Preset(
            "superpod-h100",
            f"{_RAILS}:build_superpod",
            _RAIL,
            "NVIDIA DGX SuperPOD (H100)",
            "superpod-h100.toml",
        ),
        Preset("spectrum-x", f"{_RAILS}:build_rail", _RAIL, "Spectrum-X", "spectrum-x.toml"),
        Preset("hpn", f"{_RAILS}:build_rail", _RAIL, "Alibaba HPN", "hpn.toml"),
        Preset("meta-ai-zone", f"{_RAILS}:build_tor", _RAIL, "Meta AI zone", "meta-ai-zone.toml"),
    )
}


def preset_file(preset: Preset) -> dict:
    """The values of a named preset's parameter file (``{}`` for the others)."""
    if not preset.file:
        return {}
    text = resources.files("dist_logreg.sim.presets").joinpath(preset.file).read_text()
    return {k.replace("_", "-").lower(): v for k, v in tomllib.loads(text).items()}


def key_info(key: str, topology: str | None = None) -> tuple | None:
    """``(parser, default, unit, help)`` of a common key or of a preset's (``topology``'s
    first, then any preset's); None for an unknown key."""
    if key in KEYS:
        return KEYS[key]
    names = [topology] if topology in PRESETS else []
    for name in names + list(PRESETS):
        if key in PRESETS[name].keys:
            return PRESETS[name].keys[key]
    return None


def _split(spec: str) -> tuple[str, dict]:
    head, _, rest = spec.partition(":")
    head = head.strip().lower()
    if head == "cluster":
        raise UsageError(
            f"--fabric {spec}: an emulated cluster's fabric comes from its state: "
            "dist_logreg.sim.fabric.resolve(spec, cluster_state=...) (the command line reads it)"
        )
    if head not in PRESETS:
        raise UsageError(
            f"--fabric: expected a preset ({', '.join(p + ':...' for p in PRESETS)}, "
            f"cluster:NAME) or a .json/.toml file, got {spec!r}"
        )
    raw = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"fabric spec: expected key=value, got {item!r} in {spec!r}")
        key = key.strip().lower().replace("_", "-")  # as in files: link_latency too
        if key in raw:
            raise UsageError(
                f"fabric spec: {key}: given twice ({raw[key]!r} and {value.strip()!r}) in {spec!r}"
            )
        raw[key] = value.strip()
    return head, raw


#: A fabric file is a few lines; anything larger is not one (and is not read into memory).
MAX_FILE_BYTES = 1 << 20


def _read_file(path: Path) -> tuple[str, dict]:
    try:
        if path.exists() and not path.is_file():
            raise OSError(f"{path}: expected a regular file, got a directory, FIFO or device")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OSError(
                f"{path.stat().st_size} bytes, expected at most {MAX_FILE_BYTES} for a fabric"
            )
        text = path.read_text()
        if path.suffix == ".toml":
            doc = tomllib.loads(text)
        else:
            doc = loads(text)
    except (
        OSError,
        UnicodeDecodeError,
        RecursionError,
        ValueError,
        tomllib.TOMLDecodeError,
    ) as exc:
        raise UsageError(
            f"fabric file {path}: not a readable {path.suffix[1:]} file ({exc})"
        ) from None
    if not isinstance(doc, dict) or "topology" not in doc:
        raise UsageError(
            f"fabric file {path}: expected a table with a 'topology' key, got {str(doc)[:60]!r}"
        )
    raw: dict = {}
    for k, v in doc.items():
        key = str(k).replace("_", "-").lower()
        if key in raw:
            raise UsageError(
                f"fabric file {path}: {key}: given twice, spelled two ways ({raw[key]!r} and {v!r})"
            )
        raw[key] = v
    return str(raw.pop("topology")).lower(), raw


def parse_spec(spec: str, **overrides) -> tuple[dict, dict]:
    """``(values, source)``: every key of :data:`KEYS` and of the preset's that is set, in
    SI units.

    ``overrides``: ``key=(value, source)`` pairs that win over the spec (e.g. alpha from a
    cost model), keys spelled with ``_`` or ``-``.
    """
    path = Path(spec)
    origin = "spec"
    if path.suffix in (".json", ".toml"):
        topology, raw = _read_file(path)
        origin = "file"
    else:
        topology, raw = _split(spec)
    choice(tuple(PRESETS))(topology, "topology")
    own = PRESETS[topology].keys
    values, source = {"topology": topology}, {"topology": origin}
    for key, value in raw.items():
        info = key_info(key, topology)
        if info is None:
            raise UsageError(
                f"fabric spec: unknown key {key!r}; expected one of {', '.join([*own, *KEYS])}"
            )
        if key not in KEYS and key not in own:
            raise UsageError(
                f"fabric spec: {key}: not a key of {topology} (its keys: "
                f"{', '.join(own)}; common keys: rate, alpha, link-latency, ...)"
            )
        values[key], source[key] = info[0](value, key), origin
    for key, value in preset_file(PRESETS[topology]).items():
        if key not in values:
            values[key], source[key] = key_info(key, topology)[0](value, key), f"preset {topology}"
    for key, (value, src) in overrides.items():
        key = key.replace("_", "-")
        if key_info(key, topology) is None:
            raise UsageError(f"fabric spec: unknown key {key!r} (from {src})")
        values[key], source[key] = (
            key_info(key, topology)[0](value, key) if isinstance(value, str) else value,
            src,
        )
    for key, (_, default, _, _) in {**own, **KEYS}.items():
        if key not in values and default is not None:
            values[key], source[key] = default, "default"
    if "gamma" in values and "reduce-rate" in values:
        if source["gamma"] == source["reduce-rate"]:
            raise UsageError("fabric spec: give reduce-rate or gamma, not both")
    if "reduce-rate" in values and "gamma" not in values:
        values["gamma"], source["gamma"] = 1.0 / values["reduce-rate"], "derived (reduce-rate)"
    if "gamma" not in values:
        values["gamma"], source["gamma"] = 0.0, "default (reduction not modelled)"
    for key in (k for k in BOUNDS if k in values):  # reduce-rate before gamma
        bounded(key, values[key], key_info(key, topology)[2])
    return values, source
