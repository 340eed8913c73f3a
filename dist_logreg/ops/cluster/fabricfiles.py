"""``links.json`` and ``flows.json``: one schema each, written and read here only.

``cluster run`` writes them (:func:`write_links`, :func:`write_flows`); ``dist-logreg
report`` reads them (:func:`read_links`, :func:`read_flows`), so the two can never drift
apart. Pure Python: the report runs where no cluster is.

``links.json``::

    {"schema": "dist-logreg/links/1", "cluster": NAME, "topology": ..., "seconds": S,
     "job_exit": RC, "ranks_per_host": R, "tcp_links": N, "uplinks": {...}, "tcp": {...},
     "links": [{"id": "l0-s1", "class": "host"|"uplink",
                "directions": {"l0>s1": {"way": "up"|"down", "bytes": B, "packets": P,
                                         "shaper_drops": D, "loss_drops": L,
                                         "Gbps": G}, ...}}, ...]}

``way`` is ``up`` away from the hosts (host to leaf, leaf to spine), ``down`` toward them.

``flows.json``: one flow map per part of the job (per algorithm of a bench of several, or
one for the whole job)::

    {"schema": "dist-logreg/flows/1", "cluster": NAME, "hash": "l3"|"l4",
     "ranks_per_host": R, "tcp_links": N,
     "maps": [{"label": "ring" or "job", "collisions": [...], "imbalance": {...},
               "flows": [{"src": "h0", "dst": "h3", "sport": P, "dport": Q,
                          "src_ranks": [...], "dst_ranks": [...], "src_leaf": "l0",
                          "dst_leaf": "l1", "bytes": B, "packets": P, "spine": "s1"|None,
                          "spine_bytes": {...}, "elephant": bool, "links": [...],
                          "lossy_links": {"l0-s1": 1.0}, "retransmits": N|None}, ...]}]}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.files import MAX_FILE_BYTES, loads, regular_file

LINKS_SCHEMA = "dist-logreg/links/1"
FLOWS_SCHEMA = "dist-logreg/flows/1"
DIRECTION_KEYS = ("way", "bytes", "packets", "shaper_drops", "loss_drops")
FLOW_KEYS = ("src", "dst", "sport", "dport", "src_ranks", "dst_ranks", "bytes", "spine")


def _write(path: Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)


def write_links(path: Path, report: dict) -> None:
    """``report``: what :func:`dist_logreg.ops.cluster.jobs.run` measured (``links`` etc.)."""
    _write(path, {"schema": LINKS_SCHEMA, **report})


def write_flows(path: Path, head: dict, maps: list[dict]) -> None:
    """``head``: cluster, hash, ranks_per_host, tcp_links; ``maps``: one per part of the job."""
    _write(path, {"schema": FLOWS_SCHEMA, **head, "maps": maps})


def _load(path: Path, kind: str, key: str) -> tuple[dict, list]:
    regular_file(path, "file")  # a FIFO would block the read
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise UsageError(
                f"{path}: expected at most {MAX_FILE_BYTES} bytes of JSON, got "
                f"{Path(path).stat().st_size}"
            )
        doc = loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: expected JSON, got a file that is not ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != kind:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(f"{path}: expected a `cluster run` file with schema {kind!r}, got {got!r}")
    items = doc.get(key)
    if not isinstance(items, list):
        raise UsageError(f"{path}: expected a list {key!r}, got {type(items).__name__}")
    return doc, items


def _count(path, where: str, value) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise UsageError(f"{path}: {where}: expected a count >= 0, got {value!r}")
    return float(value)


def read_links(path: Path) -> list[dict]:
    """Rows for the link plot: ``{name, class, direction, way, bytes, ...}`` per direction."""
    _, links = _load(path, LINKS_SCHEMA, "links")
    rows = []
    for i, link in enumerate(links):
        if not isinstance(link, dict) or not isinstance(link.get("directions"), dict):
            raise UsageError(f"{path}: links[{i}]: expected keys id, class, directions")
        for name, d in link["directions"].items():
            where = f"links[{i}].directions[{name!r}]"
            missing = [k for k in DIRECTION_KEYS if not isinstance(d, dict) or k not in d]
            if missing:
                raise UsageError(f"{path}: {where}: expected keys {', '.join(missing)}")
            if d["way"] not in ("up", "down"):  # ["x"] was drawn as a direction (L-H27)
                raise UsageError(f"{path}: {where}.way: expected up or down, got {d['way']!r}")
            rows.append(
                {
                    "name": str(link.get("id")),
                    "class": str(link.get("class")),
                    "direction": d["way"],
                    "from_to": name,
                    **{k: _count(path, f"{where}.{k}", d[k]) for k in DIRECTION_KEYS[1:]},
                }
            )
    return rows


def read_flows(path: Path) -> list[dict]:
    """``[{"label", "flows": [...], "collisions", "imbalance"}]``, every flow checked."""
    doc, maps = _load(path, FLOWS_SCHEMA, "maps")
    schema.flows_of(doc, str(path))  # the file kind's one schema, as simulate --flows reads it
    out = []
    for m, fmap in enumerate(maps):
        flows = fmap.get("flows") if isinstance(fmap, dict) else None
        if not isinstance(flows, list):
            raise UsageError(f"{path}: maps[{m}]: expected keys label, flows")
        for i, f in enumerate(flows):
            missing = [k for k in FLOW_KEYS if not isinstance(f, dict) or k not in f]
            if missing:
                raise UsageError(
                    f"{path}: maps[{m}].flows[{i}]: expected keys {', '.join(missing)}"
                )
            _count(path, f"maps[{m}].flows[{i}].bytes", f["bytes"])
        out.append(
            {
                "label": str(fmap.get("label", f"part {m}")),
                "flows": flows,
                "collisions": fmap.get("collisions", []),
                "imbalance": fmap.get("imbalance", {}),
            }
        )
    return out
