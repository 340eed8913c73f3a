"""What ``cluster run`` adds to a job's results and prints after it.

Train: a ``fabric`` block in ``summary.json`` (TCP retransmissions next to the allreduce
latency tail, uplink balance, busbw as a percentage of the calibrated ceiling). Bench:
``ceiling_GBps`` and ``busbw_pct_of_ceiling`` in each record of its ``--out`` file.
"""

from __future__ import annotations

import json
from pathlib import Path

from dist_logreg.files import write_json
from dist_logreg.ops.cluster import attribution, flows, tcpinfo
from dist_logreg.ops.cluster.state import Cluster
from dist_logreg.ops.cluster.status import describe


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def post_process(c: Cluster, kind: str, result: Path, report: dict, ceiling, rc: int) -> dict:
    """Add the fabric's view to the job's own output file(s); returns the ``fabric`` block."""
    tcp = report["tcp"]["total"]
    block = {
        "cluster": c.name,
        "description": describe(c),
        "loss_pct_per_link": c.spec.loss_pct or 0.0,
        "loss_links_pct": c.spec.loss_links,
        "tcp_segments_sent": tcp["OutSegs"],
        "tcp_retransmitted": tcp["RetransSegs"],
        "tcp_retransmitted_pct": tcp["retrans_pct"],
        "uplinks": report["uplinks"],
        "ceiling": None,
        "busbw_pct_of_ceiling": None,
    }
    if ceiling:
        cls, gbps = ceiling
        block["ceiling"] = {
            "class": cls,
            "Gbps_per_direction": gbps,
            "GBps": gbps / 8,
            "tool": c.calibration["tool"],
        }
    if kind == "train":
        path = result / "summary.json"
        if not path.exists():
            return block
        summary = json.loads(path.read_text())
        allreduce = summary.get("allreduce", {})
        block["allreduce_latency_s"] = {
            k: allreduce.get("latency_s", {}).get(k) for k in ("p50", "p99", "max")
        }
        busbw = allreduce.get("busbw_GBps", {}).get("p50")
        if ceiling and busbw is not None:
            block["busbw_pct_of_ceiling"] = 100 * busbw / block["ceiling"]["GBps"]
            block["busbw_GBps_p50"] = busbw
        summary["fabric"] = block
        write_json(path, summary)
    elif result.exists():
        doc = json.loads(result.read_text())
        records = doc["records"] if isinstance(doc, dict) else doc  # {"run", "records"}
        for r in records:
            if ceiling:
                r["ceiling_GBps"] = block["ceiling"]["GBps"]
                r["busbw_pct_of_ceiling"] = 100 * r["busbw"] / block["ceiling"]["GBps"]
        write_json(result, doc)
        block["records"] = records
    return block


def _busbw_lines(block: dict) -> list[str]:
    ceil = block["ceiling"]
    if ceil is None:
        return ["  busbw           no calibrated ceiling (`cluster up --calibrate` measures one)"]
    ref = (
        f"of the calibrated ceiling {ceil['GBps']:.4f} GB/s per direction, both ways at once "
        f"({ceil['class']} links, {ceil['tool']})"
    )
    if "records" in block:
        return [
            f"  busbw           {r['algorithm']} {r['bytes']:,} B: {r['busbw']:.4f} GB/s = "
            f"{r['busbw_pct_of_ceiling']:.0f}% {ref}"
            for r in block["records"]
        ]
    if block["busbw_pct_of_ceiling"] is None:
        return []
    return [
        f"  busbw           p50 {block['busbw_GBps_p50']:.4f} GB/s = "
        f"{block['busbw_pct_of_ceiling']:.0f}% {ref}"
    ]


def fabric_lines(c: Cluster, report: dict, maps: list[dict], block: dict | None) -> list[str]:
    """The console summary of what the fabric saw of the job (``maps``: one per part)."""
    tcp = report["tcp"]["total"]
    line = (
        f"  tcp             {tcp['RetransSegs']:,} of {tcp['OutSegs']:,} segments "
        f"retransmitted ({tcp['retrans_pct']:.2f}%) on the hosts"
    )
    lat = (block or {}).get("allreduce_latency_s")
    if lat and lat.get("p50") is not None:
        line += "; allreduce latency " + "  ".join(
            f"{k} {_ms(lat[k])}" for k in ("p50", "p99", "max")
        )
    lines = [f"fabric: {describe(c)}", line]
    if block:
        lines += _busbw_lines(block)
    lines.append(f"  {report['uplinks']['line']}")
    for fmap in maps:
        lines += _map_lines(c, fmap, lat, several=len(maps) > 1)
    return lines


def _map_lines(c: Cluster, fmap: dict, lat: dict | None, several: bool) -> list[str]:
    fl = fmap["flows"]
    lines = [f"  flow map        {fmap['label']}"] if several else []
    lines += attribution.loss_lines(fl, lat)
    sampled = sum(f["retransmits"] or 0 for f in fl if f.get("retransmits") is not None)
    if any(f.get("lossy_links") for f in fl):
        lines.append(
            f"  retransmissions {sampled:,} seen on the flows' connections (ss -tin, "
            f"sampled every {tcpinfo.PERIOD:g} s: a lower bound)"
        )
    if c.spec.topology != "leaf-spine":
        return lines
    cross = [f for f in fl if f["spine"]]
    elephants = sum(f["elephant"] for f in cross)
    lines.append(
        f"  flows           {len(cross)} TCP flows crossed the spines ({elephants} "
        f"elephants), {len(fl) - len(cross)} stayed under a leaf"
    )
    lines += attribution.collision_lines(fmap.get("collisions", []), fmap.get("imbalance", {}))
    return lines + (flows.table(cross) if cross else [])
