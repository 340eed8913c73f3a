"""A sweep of simulations (algorithms x sizes x ranks x seeds) and its ``simulate.json``.

``sweep(fabric, ranks_list, algorithms, sizes, seeds, ...)`` returns the document the
command prints and writes: ``{"fabric": {...}, "placement": {...}, "results": [...]}``
(every key of a result: :data:`RESULT_UNITS`). Seed ``i`` hashes with ``hash-seed + i``
and, for ``random`` placement, places with ``placement-seed + i``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from dist_logreg.collective import algorithms
from dist_logreg.sim import engine as engines
from dist_logreg.sim.bounds import check_result
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place
from dist_logreg.sim.spec import key_info

FORMAT = "dist-logreg simulate"
RESULT_UNITS = {
    "algorithm": "",
    "bytes": "B (payload per rank)",
    "ranks": "ranks",
    "time_s": "s (the median seed's; the lower middle one of an even number)",
    "time_s_worst": "s (worst seed)",
    "time_s_seeds": "s (one per seed)",
    "ideal_s": "s (non-blocking fabric: only host links finite)",
    "ratio_to_ideal": "time_s / ideal_s",
    "algbw": "B/s (bytes / time_s)",
    "busbw": "B/s (algbw * the collective's nccl-tests factor: 2(p-1)/p for allreduce)",
    "bottleneck": "link class of the links that set most of the time",
    "max_flows_per_uplink": "flows (worst uplink, worst step, worst seed)",
    "collisions": "flows on uplinks beyond an even spread, summed over steps (median seed)",
    "cross_leaf_bytes": "B crossing a leaf uplink, all ranks (median seed)",
    "links": "utilisation 0..1 per link class, median seed: busy time / time_s",
}
#: The keys a result gains with ``--scenario neighbour:...`` (its ``time_s``: together).
NEIGHBOUR_UNITS = {
    "alone_s": "s (this job, the first, without the neighbour; median seed)",
    "slowdown": "time_s / alone_s (the first job's)",
    "jobs": "{first, neighbour}: ranks, algorithm, bytes, hosts, start_s (s), alone_s and "
    "together_s (s, from the job's own start), slowdown (together_s / alone_s); the "
    "neighbour's placement",
}


def fabric_doc(fab, spec: str) -> dict:
    """The fabric's parameters with units and where each came from."""
    params = {}
    for key, value in fab.values.items():
        info = key_info(key, fab.values["topology"])
        unit = info[2] if info else ("B/s" if key.endswith("rate") else "")
        v = float(value) if isinstance(value, np.floating) else value
        params[key] = {"value": v, "unit": unit, "source": fab.source.get(key, "derived")}
    return {
        "spec": spec,
        "hosts": fab.hosts,
        "switches": int((fab.node_tier > 0).sum()),
        "links": fab.links,
        "shape": fab.topology.describe(),
        "layout": fab.topology.summary(),
        "params": params,
        "pinned_paths": len(fab.pinned),
    }


def _one(engine, fab, host_of, alg, nbytes, seed, exact, options, neighbour=None):
    job = Job(fab, host_of, alg, nbytes, seed=seed, exact=exact, options=options)
    if hasattr(engine, "job_of"):  # the packet engine's --link-delay: the fabric it runs
        job = engine.job_of(job)
    res = check_result(job, engine.run(job), engine.name)  # never faster than physics
    return res if neighbour is None else with_neighbour(job, res, neighbour)


def with_neighbour(job, res, sc):
    """``res`` (the job alone, ``--exact``) with its time next to the neighbour of the
    scenario ``sc``: ``time_s`` together, ``extra["alone_s"]`` and ``extra["jobs"]``, each
    job's time alone and together (from its own start) and slowdown."""
    from dist_logreg.sim import exact as exact_mode
    from dist_logreg.sim.scenario import place_neighbour

    v, fab = sc.values, job.fabric
    hosts = place_neighbour(sc, fab, job.host_of, job.seed)
    other = Job(
        fab,
        hosts,
        v["algorithm"] or job.algorithm,
        v["bytes"] if v["bytes"] is not None else job.nbytes,
        seed=job.seed,
        exact=True,
        options=job.options,
        start_s=np.full(hosts.size, v["start_s"]),
    )
    host_of = np.asarray(job.host_of, dtype=np.int64)
    both = exact_mode.simulate_together([job, other], [host_of, hosts])
    alone = [res.time_s, exact_mode.simulate(other, hosts)["time_s"] - v["start_s"]]
    together = [both[0]["time_s"], both[1]["time_s"] - v["start_s"]]
    jobs = {}
    for k, (name, j) in enumerate((("first", job), ("neighbour", other))):
        jobs[name] = {
            "ranks": j.ranks,
            "algorithm": j.algorithm,
            "bytes": int(j.nbytes),
            "hosts": int(np.unique(fab.topology.endpoint_host[np.asarray(j.host_of)]).size),
            "start_s": 0.0 if k == 0 else float(v["start_s"]),
            "alone_s": float(alone[k]),
            "together_s": float(together[k]),
            "slowdown": together[k] / alone[k] if alone[k] > 0 else 1.0,
        }
    jobs["neighbour"]["placement"] = v["placement"]
    res = dataclasses.replace(res, time_s=together[0], extra=dict(res.extra))
    res.extra.update(alone_s=float(alone[0]), jobs=jobs)
    return check_result(job, res, "flow")


def point(
    engine,
    fab,
    ranks,
    per_host,
    mode,
    pseed,
    alg,
    nbytes,
    seeds,
    exact=False,
    options=None,
    on_seed=None,
    neighbour=None,
):
    """One result row: ``alg`` at ``nbytes`` on ``ranks``, over ``seeds`` seeds;
    ``on_seed()`` is called after each seed (progress); ``neighbour``: a neighbour
    scenario, run beside each seed's job (:func:`with_neighbour`)."""
    runs = []
    for i in range(seeds):
        f = dataclasses.replace(fab, hash_seed=fab.hash_seed + i)
        host_of = place(ranks, f, per_host, mode, pseed + i)
        runs.append(_one(engine, f, host_of, alg, nbytes, i, exact, options or {}, neighbour))
        if on_seed:
            on_seed()
    times = np.array([r.time_s for r in runs])
    # the median seed, the lower of the two middle ones when even: time, ideal, bottleneck,
    # links, ... all of ONE seed (a mean of two times over one seed's ideal fell below 1)
    mid = runs[int(np.argsort(times, kind="stable")[(len(times) - 1) // 2])]
    t = float(mid.time_s)
    algbw = nbytes / t if t > 0 else 0.0
    row = {
        "algorithm": alg,
        "bytes": int(nbytes),
        "ranks": int(ranks),
        "time_s": t,
        "time_s_worst": float(times.max()),
        "time_s_seeds": times.tolist(),
        "ideal_s": mid.ideal_s,
        "ratio_to_ideal": t / mid.ideal_s if mid.ideal_s > 0 else 1.0,
        "algbw": algbw,
        "busbw": algbw * _busbw_factor(alg, ranks),
        "bottleneck": mid.bottleneck,
        "max_flows_per_uplink": max(r.max_flows_per_uplink for r in runs),
        "collisions": mid.collisions,
        "cross_leaf_bytes": mid.extra.get("cross_leaf_bytes", 0.0),
        "links": mid.links,
    }
    if "packet" in mid.extra:  # the packet engine's drops, marks, queues, retransmissions
        row["packet"] = mid.extra["packet"]
    if exact:
        row["phase_sync_s"] = float(mid.extra["phase_sync_s"])
    if "jobs" in mid.extra:  # the median seed's two jobs, alone and together
        row["alone_s"] = mid.extra["alone_s"]
        row["slowdown"] = mid.extra["jobs"]["first"]["slowdown"]
        row["jobs"] = mid.extra["jobs"]
    return row


EXACT_MODE = "exact (dependency graph, event by event)"


def sweep(
    fab,
    spec,
    ranks_list,
    algorithms,
    sizes,
    seeds=1,
    per_host=1,
    mode="packed",
    placement_seed=0,
    exact=False,
    engine="flow",
    options=None,
    fabric_for=None,
    progress=None,
    neighbour=None,
) -> dict:
    """Every (ranks, algorithm, size) point; ``fabric_for(alg, nbytes)`` may swap in a
    fabric with other alpha/gamma (a cost model's fit per algorithm and size);
    ``progress(runs done, runs in all, seconds)`` after every seed of every point."""
    eng = engines.get_engine(engine)
    total = len(ranks_list) * len(algorithms) * len(sizes) * seeds
    t0, results, done = time.perf_counter(), [], [0]

    def tick():
        done[0] += 1
        if progress:
            progress(done[0], total, time.perf_counter() - t0)

    for p in ranks_list:
        for alg in algorithms:
            for n in sizes:
                f = fabric_for(alg, n) if fabric_for else fab
                row = point(
                    eng,
                    f,
                    p,
                    per_host,
                    mode,
                    placement_seed,
                    alg,
                    n,
                    seeds,
                    exact,
                    options,
                    tick,
                    neighbour,
                )
                results.append(row)
    return {
        "format": FORMAT,
        "engine": engine,
        "mode": EXACT_MODE if exact or engines.get(engine).event_by_event else "phase-synchronous",
        "fabric": fabric_doc(fab, spec),
        "placement": {
            "mode": mode,
            "ranks_per_host": per_host,
            "placement_seed": placement_seed,
            "seeds": seeds,
        },
        "units": RESULT_UNITS if neighbour is None else {**RESULT_UNITS, **NEIGHBOUR_UNITS},
        "results": results,
        "wall_s": time.perf_counter() - t0,
    }


def note_cost_model(doc, fabric_for, path) -> None:
    """The alpha and gamma each result took from the model, in ``params`` and the table:
    the one value when every result shares it, else null and every algorithm's value."""
    per = {
        key: {
            r["algorithm"]: getattr(fabric_for(r["algorithm"], r["bytes"]), key)
            for r in doc["results"]
        }
        for key in ("alpha", "gamma")
    }
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


def _busbw_factor(alg: str, ranks: int) -> float:
    """nccl-tests' factor of the collective ``alg`` implements (reduce-scatter: (p-1)/p)."""
    if ranks <= 1:
        return 0.0
    return algorithms.BUSBW_FACTORS[algorithms.get(alg).collective](ranks)
