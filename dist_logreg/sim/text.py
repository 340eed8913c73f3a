"""``simulate``'s console table and parameter list, from the ``simulate.json`` document."""

from __future__ import annotations

from dist_logreg import units
from dist_logreg.sim.transports import table as transports


def seconds(t: float) -> str:
    """``0.0123`` -> ``"12.30 ms"``."""
    return units.format_seconds(t)


def bandwidth(b: float) -> str:
    """``2.5e6`` B/s -> ``"2.50 MB/s"``: small allreduces keep their digits."""
    return units.format_byte_rate(b)


def size(n: float) -> str:
    return units.format_bytes(n, ".4g")


def _param(key: str, p: dict) -> str:
    v, unit = p["value"], p["unit"]
    if v is None:  # one per algorithm of a cost model; a sweep's cost-model axis: per row
        text = "per row" if "each row" in str(p.get("source")) else "per algorithm"
    elif unit == "B/s":
        text = f"{v * 8 / 1e9:g} Gbit/s ({v / 1e9:g} GB/s)"
    elif unit == "s":
        text = seconds(v)
    elif unit == "s/B":
        text = f"{v * 1e12:g} ps/B" + (f" ({1 / v / 1e9:g} GB/s)" if v else "")
    else:
        text = f"{v} {unit}".strip()
    return f"  {key:<22} {text:<34} from {p['source']}"


def packet_line(p: dict) -> str:
    """One line of a packet-engine row: drops, marks, the transport's counts, peak queue."""
    pfc = ""
    if p.get("pause_frames") or p.get("headroom_drops"):  # PFC: named where it dropped
        worst = [d["link"] for d in p.get("links_detail", []) if d.get("headroom_drops")]
        pfc = f", {p['pause_frames']} PAUSEs, {p['headroom_drops']} headroom drops" + (
            f" (in on {', '.join(worst[:3])}: headroom too small)" if worst else ""
        )
    return (
        f"{'':<19}packet: {p['drops']} drops{pfc}, {p['ecn_marks']} ECN marks, {p['lost']} lost, "
        f"{transports.summary(p)}, peak queue {size(p['peak_queue_bytes'])}, "
        f"{p['wall_s']:.1f} s wall{_setup(p)}"
    )


def _setup(p: dict) -> str:
    """What the run was: the transport (and its variant), PFC on or off, the loss."""
    o = p.get("options")
    if not o:  # a simulate.json written before the block kept its options
        return ""
    tr, lab = str(o.get("transport", "tcp")), str(p.get("transport_label") or "")
    name = lab if lab.startswith(tr) else f"{tr} {lab}".strip()
    per_link = [f"{k} {v * 100:g}%" for k, v in (o.get("loss_link") or {}).items()]
    loss = float(o.get("loss") or 0.0)
    lossy = ([f"{loss * 100:g}%"] if loss else []) + per_link
    return f"; {name}, PFC {o.get('pfc', 'off')}, " + (
        f"loss {', '.join(lossy)}" if lossy else "no loss"
    )


def phase_sync_line(r: dict) -> str:
    """The phase-synchronous time beside the exact one, like with like: with a neighbour
    (``alone_s``) ``time_s`` is the two jobs together and ``phase_sync_s`` the first job
    alone, so the ratio is the exact time alone over it."""
    top, what = (
        (r["alone_s"], "exact alone / phase-sync alone")
        if "alone_s" in r
        else (
            r["time_s"],
            "exact / phase-sync",
        )
    )
    ratio = f"{top / r['phase_sync_s']:.3f}" if r["phase_sync_s"] > 0 else "-"  # one rank: 0 s
    return f"{'':<19}phase-synchronous {seconds(r['phase_sync_s'])} ({what} = {ratio})"


def _slot(fab: dict) -> str:
    """Where ranks sit: a GPU on the rail family (its shape has GPUs), else a host."""
    return "GPU" if "gpus" in fab.get("shape", {}) else "host"


def lines(doc: dict) -> list[str]:
    fab, pl = doc["fabric"], doc["placement"]
    # the algorithm column fits its longest name (hierarchical-2d:rabenseifner is 28)
    w = max([19, *(len(r["algorithm"]) + 2 for r in doc["results"])])
    out = [
        f"fabric {fab['spec']}: {fab['hosts']} hosts, {fab['switches']} switches, "
        f"{fab['links']} directed links ({fab['layout']})",
        f"placement {pl['mode']}, {pl['ranks_per_host']} rank(s) per {_slot(fab)}; {pl['seeds']} "
        f"seed(s); engine {doc['engine']}, {doc['mode']}",
        f"{'algorithm':<{w}}{'ranks':>6}{'bytes':>10}{'time median':>13}{'worst':>11}"
        f"{'busbw':>12}{'ideal':>11}{'x ideal':>8}  {'bottleneck':<12}{'flows/uplink':>12}",
    ]
    for r in doc["results"]:
        out.append(
            # a blank before each column however long it is (Q-L1: 1 TiB at 8 bit/s ran on)
            f"{r['algorithm']:<{w}}{r['ranks']:>6}{' ' + size(r['bytes']):>10}"
            f"{' ' + seconds(r['time_s']):>13}{' ' + seconds(r['time_s_worst']):>11}"
            f"{' ' + bandwidth(r['busbw']):>12}{' ' + seconds(r['ideal_s']):>11}"
            f"{r['ratio_to_ideal']:>8.2f}  {r['bottleneck']:<12}{r['max_flows_per_uplink']:>12.4g}"
        )
        if "packet" in r:  # the packet engine (ns-3): what the network did
            out.append(packet_line(r["packet"]))
        if "phase_sync_s" in r:
            out.append(phase_sync_line(r))
    out.append(
        "busbw = bytes / time * 2(p-1)/p ((p-1)/p for reduce-scatter, allgather); ideal: "
        "every link but the host links infinitely fast; flows/uplink: the worst leaf or "
        "spine uplink in the worst step"
    )
    if any("phase_sync_s" in r for r in doc["results"]):
        out.append(
            "--exact: time is event by event; ideal, bottleneck, flows/uplink and link "
            "utilisation are the phase-synchronous run's"
        )
    out.append("parameters:")
    out += [
        _param(k, p)
        for k, p in fab["params"].items()
        if p["unit"] or k in ("hash", "hash-polarize", "hash-seed", "topology")
    ]
    if "run" in doc:
        out += run_lines(doc["run"])
    return out


def run_lines(run: dict) -> list[str]:
    out = [
        f"train run {run['path']}: measured at {run['world_size']} ranks, "
        f"{run['calls_per_step']:g} allreduce(s) of {size(run['bytes_per_call'])} per step"
    ]
    for p in run["predictions"]:
        out.append(
            f"  {p['algorithm']:<19} at {p['ranks']} ranks: step {seconds(p['step_s'])} = compute "
            f"{seconds(p['compute_s'])} (measured, x {run['world_size']}/{p['ranks']}) + comm "
            f"{seconds(p['comm_s'])} (simulated); comm fraction {p['comm_fraction']:.1%}"
        )
    if run.get("overlapped") and run.get("calls_per_step", 1) > 1:  # two answers (T-M4)
        out.append(
            "  (each bucket's allreduce after the compute, none hidden: the step table's "
            "rows overlap the buckets with the backward pass, as the run did)"
        )
    return out


IN_TABLE = ("ranks", "algorithm", "bytes")


def sweep_table(out: list[str], doc: dict, varying: list[str]) -> list[str]:
    """A sweep's console lines: ``out`` (:func:`lines` of ``doc``) with a column in front of
    the results table for each axis in ``varying`` besides ranks, algorithm and bytes
    (fabric, placement, workload, scenario...); fabrics by number (``F1``...), named under
    the table."""
    keys = [k for k in varying if k not in IN_TABLE]
    rows = doc["results"]
    if not keys or len(out) < 3:
        return out
    specs = list(dict.fromkeys(r["fabric"] for r in rows))
    cell = lambda r, k: (  # noqa: E731
        f"F{specs.index(r['fabric']) + 1}" if k == "fabric" else str(r.get(k, ""))
    )
    width = {k: max(len(k), *(len(cell(r, k)) for r in rows)) + 2 for k in keys}
    blank = " " * sum(width.values())
    head = "".join(f"{k:<{width[k]}}" for k in keys)
    done, n, inside = list(out[:2]) + [head + out[2]], 0, True
    for line in out[3:]:
        if inside and line.startswith("busbw ="):  # the table's footnote: its end
            inside = False
            if "fabric" in keys:
                done += [f"F{i + 1} = {spec}" for i, spec in enumerate(specs)]
        if not inside:
            done.append(line)
        elif not line.startswith(" ") and n < len(rows):  # a result's row
            done.append("".join(f"{cell(rows[n], k):<{width[k]}}" for k in keys) + line)
            n += 1
        else:  # its packet or phase-synchronous line
            done.append(blank + line)
    return done
