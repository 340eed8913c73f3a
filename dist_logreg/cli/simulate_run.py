"""What ``simulate`` does once parsed: resolve the fabric (spec, cluster, cost model), sweep,
print, write ``simulate.json``; with ``--run``, predict a train run's step time."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from dist_logreg.collective import costfile as costmodel
from dist_logreg.collective.algorithms import scheduled_keys
from dist_logreg.errors import UsageError
from dist_logreg.files import check_output, write_output
from dist_logreg.record.progress import status_line
from dist_logreg.sim import cluster as cluster_fabric
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.runner import sweep
from dist_logreg.sim.text import lines


def resolve_fabric(args):
    """The fabric, with a cluster's keys and pinned paths when ``cluster:NAME``."""
    spec, over = args.fabric, {}
    if spec.strip().lower().startswith("cluster:"):
        from dist_logreg.ops.cluster import state

        name, _, extra = spec.split(":", 1)[1].partition(",")
        c = state.load(name.strip())
        raw = dataclasses.asdict(c)
        spec, over = cluster_fabric.overrides(raw)
        if extra.strip():  # cluster:NAME,alpha=2ms: the user's keys win over the cluster's
            spec += "," + extra.strip()
            for key in [k.split("=")[0].strip().lower() for k in extra.split(",") if k.strip()]:
                over.pop(key, None)
        spines = [r[len(c.name) + 1 :] for r in c.routers if r.startswith(f"{c.name}-s")]
        if args.flows:
            over["pinned"] = (
                cluster_fabric.pinned(_json(args.flows, "--flows"), spines),
                "flows.json",
            )
        spec_text = f"{args.fabric} = {spec}"
    else:
        spec_text = spec
        if args.flows:
            over["pinned"] = (cluster_fabric.pinned(_json(args.flows, "--flows")), "flows.json")
    if "pinned" in over:
        over["pinned"] = over["pinned"]  # kept in Fabric.values; not a spec key
    pinned = over.pop("pinned", (None, None))[0]
    fab = parse_fabric(spec, **over)
    if pinned:
        fab = dataclasses.replace(fab, pinned=pinned)
    return fab, spec_text


def regular_file(path, flag: str) -> None:
    """Refuse a FIFO, device or directory up front: reading one would block or fail late."""
    p = Path(path)
    if p.exists() and not p.is_file():
        raise UsageError(f"{flag} {path}: expected a regular file, got a directory, FIFO or device")


def _json(path, flag: str):
    regular_file(path, flag)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{flag} {path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{flag} {path}: not a readable JSON file ({exc})") from None


def cost_model_fabrics(fab, path):
    """``fabric_for(alg, nbytes)``: alpha (inter-host) and gamma of the model's segment."""
    regular_file(path, "--cost-model")
    model = costmodel.load(path)
    cache = {}

    def fabric_for(alg: str, nbytes: int):
        par, _ = costmodel.params(model, alg)
        seg = costmodel.segment_of(nbytes, model["breakpoints"])
        alpha, gamma = float(par[seg, 2]), float(par[seg, 4])
        if not (np.isfinite(alpha) and np.isfinite(gamma) and alpha >= 0 and gamma >= 0):
            raise UsageError(
                f"cost model {path}: {alg} segment {seg}: expected finite alpha, gamma >= 0, "
                f"got {alpha!r}, {gamma!r}"
            )
        key = (alpha, gamma)
        if key not in cache:
            src = f"cost model {path} ({alg}, size segment {seg})"
            cache[key] = dataclasses.replace(
                fab,
                alpha=alpha,
                gamma=gamma,
                values={**fab.values, "alpha": alpha, "gamma": gamma},
                source={**fab.source, "alpha": src, "gamma": src},
            )
        return cache[key]

    return fabric_for


def _cost_model_params(doc, fabric_for, path) -> None:
    """The alpha and gamma each result took from the model, in ``params`` and the table:
    the one value when every result shares it, else null and every algorithm's value."""
    per = {
        key: {r["algorithm"]: getattr(fabric_for(r["algorithm"], r["bytes"]), key)
              for r in doc["results"]}
        for key in ("alpha", "gamma")
    }  # fmt: skip
    unit = {"alpha": ("us", 1e6), "gamma": ("ps/B", 1e12)}
    for key, values in per.items():
        name, scale = unit[key]
        distinct = set(values.values())
        text = ", ".join(f"{a} {v * scale:.4g} {name}" for a, v in values.items())
        doc["fabric"]["params"][key]["value"] = distinct.pop() if len(distinct) == 1 else None
        doc["fabric"]["params"][key]["source"] = f"cost model {path} ({text})"
    doc["cost_model"] = {
        "path": str(path),
        "alpha_s": per["alpha"],
        "gamma_s_per_byte": per["gamma"],
    }


def _progress(done: int, total: int, elapsed: float) -> None:
    if elapsed > 2.0 or done == total and elapsed > 2.0:
        status_line(sys.stderr, f"simulate: {done}/{total} points, {elapsed:.1f} s", done == total)


def run(args) -> int:
    for key in ("algorithm", "ranks", "bytes"):  # ring,ring: one row, not two
        setattr(args, key, list(dict.fromkeys(getattr(args, key))))
    if args.out is not None:
        _check_out(args.out, getattr(args, "force", False))
    for alg in args.algorithm:
        if alg not in scheduled_keys():  # reduce-scatter/ring and the like too
            raise UsageError(
                f"--algorithm: expected one of {', '.join(scheduled_keys())} (with a "
                f"schedule), got {alg!r}"
            )
    fab, spec_text = resolve_fabric(args)
    if args.exact and args.engine == "flow":
        _check_exact(args)
    fabric_for = cost_model_fabrics(fab, args.cost_model) if args.cost_model else None
    options = {k: getattr(args, k) for k in getattr(args, "engine_option_dests", [])}
    sizes = args.bytes
    train = None
    if args.run:
        from dist_logreg.cli.simulate_train import read_run

        train = read_run(args.run)
        sizes = [train["bytes_per_call"]]
    doc = sweep(
        fab,
        spec_text,
        args.ranks,
        args.algorithm,
        sizes,
        seeds=args.seeds,
        per_host=args.ranks_per_host,
        mode=args.placement,
        placement_seed=args.placement_seed,
        exact=args.exact,
        engine=args.engine,
        options=options,
        fabric_for=fabric_for,
        progress=None if args.json else _progress,
    )
    if fabric_for:
        _cost_model_params(doc, fabric_for, args.cost_model)
    if train:
        from dist_logreg.cli.simulate_train import predict_steps

        doc["run"] = predict_steps(train, doc["results"])
    _check_finite(doc)
    text = json.dumps(doc, indent=1)
    if args.out is not None:
        _write(Path(args.out), text, getattr(args, "force", False))
    print(text if args.json else "\n".join(lines(doc)))
    if args.out and not args.json:
        print(f"wrote {Path(args.out) / 'simulate.json'}")
    return 0


#: ``--exact`` sweeps estimated longer than this are refused up front, longer than
#: :data:`EXACT_WARN_S` announced.
EXACT_MAX_S, EXACT_WARN_S = 3600.0, 60.0


def _check_exact(args) -> None:
    """Refuse an ``--exact`` sweep that would run for hours; say so when it takes minutes."""
    from dist_logreg.sim.exact import estimate_s

    one = sum(estimate_s(a, p) for a in args.algorithm for p in args.ranks)
    total = one * len(args.bytes) * args.seeds
    what = (
        f"--exact: estimated {total:,.0f} s of event-by-event simulation (about 2 us x ranks^2 "
        f"x steps per run, {len(args.bytes)} size(s) x {args.seeds} seed(s); good to a factor "
        f"of a few)"
    )
    if total > EXACT_MAX_S:
        raise UsageError(
            f"{what}, expected at most {EXACT_MAX_S:.0f} s: drop --exact (phase-synchronous "
            f"runs in seconds), or simulate fewer ranks, sizes or seeds"
        )
    if total > EXACT_WARN_S:
        print(f"simulate: {what}", file=sys.stderr, flush=True)


def _check_out(out: str, force: bool = False) -> None:
    """Before simulating: ``--out`` must name a directory, new or existing, not a file, and
    ``simulate.json`` there must be new (or ``--force``) and never a link (files.check_output)."""
    if not out.strip():
        raise UsageError("--out: expected a directory name, got ''")
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out}: expected a directory (new or existing), got a file")
    check_output(Path(out) / "simulate.json", "--out", force)


def _write(out: Path, text: str, force: bool = False) -> None:
    write_output(out / "simulate.json", text + "\n", "--out", force)


def _check_finite(doc) -> None:
    for r in doc["results"]:
        for k in ("time_s", "ideal_s", "busbw"):
            if not np.isfinite(r[k]):
                raise RuntimeError(
                    f"simulate: {r['algorithm']} {r['bytes']} B: {k} is {r[k]} (a bug)"
                )
