"""``dist-logreg model predict``: tables of what the fitted model predicts (pure, no MPI).

For a placement (ranks, ranks per host, topology) and a link rate: per algorithm and size,
the predicted time, algbw, busbw and the shares of latency (alpha), bandwidth (beta) and
reduction (gamma); the fastest algorithm per size and the crossovers; and, given a run's
``summary.json``, the communication fraction that run would have at another scale.
"""

from __future__ import annotations

import copy

from dist_logreg.collective import algorithms, costfile
from dist_logreg.collective.schedule import Placement
from dist_logreg.units import format_bytes, format_link_rate, format_seconds


def table(model: dict, names: list[str], sizes: list[int], place: Placement, link_rate=None):
    """Predictions per algorithm and size (dicts, see :func:`costfile.predict`)."""
    rows = []
    for name in names:
        for n in sizes:
            r = costfile.predict(model, name, n, place, link_rate)
            t = r["time_s"]
            algbw = n / t / 1e9 if t > 0 else 0.0
            rows.append(
                {
                    **r,
                    "algbw_GBps": algbw,
                    "busbw_GBps": algbw * _factor(name, place.ranks),
                    "share": {
                        k: (r[f"{k}_s"] / t if t > 0 else 0.0) for k in ("alpha", "beta", "gamma")
                    },
                }
            )
    return rows


def _factor(name: str, p: int) -> float:
    """nccl-tests' busbw factor of the collective ``name`` implements (p >= 2)."""
    return algorithms.BUSBW_FACTORS[algorithms.get(name).collective](p) if p > 1 else 0.0


def _same_collective(names) -> list[str]:
    """The names of the first name's collective: fastest and crossovers compare only those
    (an allgather is no alternative to an allreduce)."""
    first = algorithms.get(names[0]).collective
    return [n for n in names if algorithms.get(n).collective == first]


def describe(place: Placement, link_rate: float | None) -> str:
    k = place.ranks // place.hosts
    text = f"{place.ranks} ranks, {k} per host ({place.hosts} hosts)"
    if place.leaf_of is not None:
        leaves = len(set(place.leaf_of))
        text += f", two-tier: {leaves} leaves, uplinks {place.uplink_factor:g}x slower per byte"
    else:
        text += ", flat"
    return text + (f", link {format_link_rate(link_rate)}" if link_rate else ", fitted links")


def _b(n: float) -> str:
    return format_bytes(n, ".3g")


def _t(s: float) -> str:
    return format_seconds(s, ".1f")


def report(model: dict, names, sizes, place: Placement, link_rate=None, given=None) -> dict:
    """Everything ``model predict`` prints (and ``--json`` writes).

    ``given``: what :func:`with_fabric` says of the parameters the user stated. The MPI
    library's own allreduce is modelled generically (its choice of algorithm for a size and
    rank count is not observable), so it is predicted but never named fastest.
    """
    rows = table(model, names, sizes, place, link_rate)
    group = _same_collective(list(names))  # an allgather is no alternative to an allreduce
    ours = [n for n in group if algorithms.get(n).phases is not None] or group  # not generic
    fastest = []
    for n in sizes:
        best = min(
            (r for r in rows if r["bytes"] == n and r["algorithm"] in ours),
            key=lambda r: r["time_s"],
        )
        fastest.append({"bytes": n, "algorithm": best["algorithm"], "time_s": best["time_s"]})
    cross = costfile.crossovers(model, ours, place, min(sizes), max(sizes), link_rate)
    notes = sorted({note for r in rows for note in r.pop("notes")})
    notes += [
        f"{n}: left out of fastest and crossovers: its model is generic (ceil(lg p) messages, "
        "a ring's bytes), not the algorithm the library picks for this size and rank count; "
        "bench the library's algorithms with --mpi-algorithm to compare them"
        for n in group
        if n not in ours
    ]
    return {
        "placement": describe(place, link_rate),
        "ranks": place.ranks,
        "hosts": place.hosts,
        "link_rate_bits": link_rate,
        "parameters": given or parameters_from(model, None, link_rate),
        "trust": trust(model, names, sizes, place, link_rate),
        "predictions": rows,
        "fastest": fastest,
        "crossovers": [{"bytes": b, "from": a, "to": c} for b, a, c in cross],
        "notes": notes,
    }


def trust(model: dict, names, sizes, place: Placement, link_rate=None) -> dict:
    """How far the predictions can be trusted: the fit's residuals on its own data, and
    how far outside what was measured (sizes, rank counts, link rate) they reach."""
    src = model.get("source") or {}
    residuals = {n: model["algorithms"][n].get("residuals") for n in names}
    warn = []
    lo, hi = (src.get("bytes") or [None, None])[:2]
    if hi and max(sizes) > hi:
        warn.append(
            f"size {_b(max(sizes))} is {max(sizes) / hi:.3g}x above the largest measured ({_b(hi)})"
        )
    if lo and min(sizes) < lo:
        warn.append(
            f"size {_b(min(sizes))} is {lo / min(sizes):.3g}x below the smallest "
            f"measured ({_b(lo)})"
        )
    ws = src.get("world_sizes") or []
    if ws and place.ranks > max(ws):
        warn.append(
            f"{place.ranks} ranks is {place.ranks / max(ws):.3g}x the most measured ({max(ws)})"
        )
    elif ws and place.ranks < min(ws):
        warn.append(f"{place.ranks} ranks is fewer than the fewest measured ({min(ws)})")
    fit_rate = src.get("link_rate_bits")
    if link_rate and fit_rate and link_rate != fit_rate:
        warn.append(
            f"link rate {format_link_rate(link_rate)} is {link_rate / fit_rate:.3g}x "
            f"the fit's ({format_link_rate(fit_rate)})"
        )
    elif link_rate and not fit_rate:
        warn.append(
            f"link rate {format_link_rate(link_rate)}: the fit's own link rate is not "
            "known (beta = serialization time)"
        )
    return {"residuals": residuals, "extrapolation": warn}


def parameters_from(model: dict, user: dict | None, link_rate) -> dict:
    """Which parameter came from the fit and which from the user, as readable phrases."""
    user = user or {}
    fit_rate = (model.get("source") or {}).get("link_rate_bits")
    if not link_rate:
        beta = "fit (per byte, as measured)"
    elif fit_rate:
        beta = (
            f"fit, scaled from its {format_link_rate(fit_rate)} to "
            f"{format_link_rate(link_rate)} (--link-rate)"
        )
    else:
        beta = f"user: 8 / {format_link_rate(link_rate)} (--link-rate, serialization time)"
    out = {
        "alpha": f"user: {user['alpha'] * 1e6:g} us"
        if "alpha" in user
        else "fit (per message, as measured)",
        "beta": beta,
        "gamma": f"user: {user['gamma'] * 1e9:g} ns/B"
        if "gamma" in user
        else "fit (the local reduction, as measured)",
    }
    if "link_latency" in user:
        out["link_latency"] = f"user: {user['link_latency'] * 1e6:g} us per inter-host message"
    return out


def with_fabric(model: dict, user: dict) -> dict:
    """The model with the parameters the user stated: ``alpha`` (seconds per message, every
    link), ``link_latency`` (added per message between hosts), ``gamma`` (per byte reduced)."""
    if not user:
        return model
    m = copy.deepcopy(model)
    for alg in m["algorithms"].values():
        for seg in alg["segments"]:
            for link in costfile.LINKS:
                if seg.get(link) is None:
                    continue
                if "alpha" in user:
                    seg[link]["alpha_s"] = user["alpha"]
                if link == "inter" and "link_latency" in user:
                    seg[link]["alpha_s"] += user["link_latency"]
    if "gamma" in user:
        for g in m["gamma"]:
            g["s_per_byte"] = user["gamma"]
    return m


def format_report(rep: dict, model_path: str) -> str:
    lines = [f"# dist-logreg model predict: {rep['placement']}; model {model_path}"]
    names = list(dict.fromkeys(r["algorithm"] for r in rep["predictions"]))
    head = (
        f"{'bytes':>12} {'time(us)':>12} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12} "
        f"{'latency':>8} {'bandwidth':>10} {'reduction':>10}"
    )
    for name in names:
        lines += ["", name, head]
        for r in rep["predictions"]:
            if r["algorithm"] == name:
                s = r["share"]
                lines.append(
                    f"{r['bytes']:>12} {r['time_s'] * 1e6:>12.2f} {r['algbw_GBps']:>12.3f} "
                    f"{r['busbw_GBps']:>12.3f} {100 * s['alpha']:>7.0f}% {100 * s['beta']:>9.0f}% "
                    f"{100 * s['gamma']:>9.0f}%"
                )
    lines += [
        "",
        "fastest: " + ", ".join(f"{_b(f['bytes'])} {f['algorithm']}" for f in rep["fastest"]),
    ]
    if len(names) > 1:
        lines.append(
            "crossovers: "
            + (
                "; ".join(
                    f"{c['to']} overtakes {c['from']} at {_b(c['bytes'])}"
                    for c in rep["crossovers"]
                )
                or "none in this size range"
            )
        )
    lines += [f"note: {n}" for n in rep["notes"]]
    return "\n".join(lines + format_trust(rep))


def format_trust(rep: dict) -> list[str]:
    """The lines that say where the parameters came from and how far to trust them."""
    par = rep["parameters"]
    lines = [
        "parameters: "
        + "; ".join(
            f"{k} {v[6:]} from the user" if v.startswith("user: ") else f"{k} from the fit"
            for k, v in par.items()
        )
    ]
    res = rep["trust"]["residuals"]
    lines.append(
        "fit residuals on its own data: "
        + "; ".join(
            f"{n} median {100 * r['median_rel']:.1f}%, worst {100 * r['max_rel']:.1f}% over "
            f"{r['rows']} measurements"
            if r
            else f"{n} not recorded"
            for n, r in res.items()
        )
    )
    lines += [f"warning: extrapolation: {w}" for w in rep["trust"]["extrapolation"]]
    return lines


def run_fraction(
    model: dict, summary: dict, place: Placement, link_rate=None, scaling: str = "strong", name=None
) -> dict:
    """The comm fraction a run (its ``summary.json``) would have on ``place``.

    Compute per step: the run's data + compute time per step (median rank), scaled by
    ``p0 / P`` under strong scaling (the global batch is fixed, each rank gets fewer rows) or
    kept under weak scaling; the update does not scale. Communication per step: the calls per
    step times the predicted allreduce of the run's buffer.
    """
    a, t = summary["allreduce"], summary["time_s"]
    steps = max(summary["steps_run"], 1)
    p0 = summary["world_size"]
    name = name or a["algorithm"]
    rows = t["data"] / steps + t["compute"] / steps
    update = t["update"] / steps
    factor = p0 / place.ranks if scaling == "strong" else 1.0
    local = rows * factor + update
    calls = a.get("calls_per_step", 1)
    # a call's bytes: the step's over its calls (buckets differ: the median call was priced
    # times the calls, 35 % off the bytes a step carried: sixteenth attack, R-H1)
    size = a["bytes_per_step"] / calls if a.get("bytes_per_step") and calls else a["bytes_per_call"]
    per_call = costfile.predict(model, name, size, place, link_rate)
    comm = per_call["time_s"] * calls
    host_of = (summary.get("placement") or {}).get("host_of_rank") or [0] * p0
    at_p0 = costfile.predict(model, name, size, Placement(tuple(host_of)))
    return {
        "algorithm": name,
        "placement": describe(place, link_rate),
        "scaling": scaling,
        "bytes_per_call": size,
        "calls_per_step": calls,
        "predicted_comm_s_per_step": comm,
        "local_s_per_step": local,
        "predicted_comm_fraction": comm / (comm + local) if comm + local > 0 else 0.0,
        "measured": {
            "world_size": p0,
            "comm_fraction": summary.get("comm_fraction", {}).get("median"),
            "latency_p50_s": a["latency_s"]["p50"],
            "predicted_s_same_placement": at_p0["time_s"],
        },
        "notes": per_call["notes"],
    }


def format_run_fraction(r: dict) -> str:
    m = r["measured"]
    lines = [
        f"# dist-logreg model predict --run: {r['placement']}, {r['scaling']} scaling",
        f"  allreduce [{r['algorithm']}] of {_b(r['bytes_per_call'])} x {r['calls_per_step']:g} "
        f"per step: predicted {_t(r['predicted_comm_s_per_step'])} per step",
        f"  data + compute + update per step: {_t(r['local_s_per_step'])}",
        f"  predicted comm fraction: {100 * r['predicted_comm_fraction']:.1f}%",
        f"  the run itself: {m['world_size']} ranks, comm fraction "
        + (f"{100 * m['comm_fraction']:.1f}%" if m["comm_fraction"] is not None else "?")
        + f", allreduce latency p50 {_t(m['latency_p50_s'])} (model at its placement: "
        f"{_t(m['predicted_s_same_placement'])})",
    ]
    lines += [f"note: {n}" for n in r["notes"]]
    return "\n".join(lines + (format_trust(r) if "trust" in r else []))
