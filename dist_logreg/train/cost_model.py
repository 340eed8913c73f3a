"""The cost model of a train run (collective): read from ``--model FILE``, or fitted by a
sweep of about a second on the run's own ranks before training (``--model auto``)."""

from __future__ import annotations

from time import perf_counter

import numpy as np

from dist_logreg.bench.cost import measure_reduce, where
from dist_logreg.bench.sweep import measure, sizes
from dist_logreg.collective import costfile
from dist_logreg.collective.benchfit import fit_records
from dist_logreg.comm.registry import make_allreduce
from dist_logreg.errors import UsageError, raise_together

#: The auto sweep: sizes from payload / 64 to payload * 16, few calls each.
AUTO_WARMUP, AUTO_ITERS = 2, 10


def prepare(comm, cfg, payload: int, say) -> dict | None:
    """Collective: the model every rank uses for this run, or None without ``--model``."""
    if not cfg.cost_model:
        return None
    if cfg.cost_model == "auto" and comm.Get_size() > 1:
        return auto(comm, cfg, payload, say)
    error, model = None, None
    if comm.Get_rank() == 0 and cfg.cost_model != "auto":  # checked at one rank too: a
        try:  # missing or FIFO file was "ignored" with exit 0 (seventeenth attack, S-L2)
            model = costfile.load(cfg.cost_model)
            costfile.algorithm_params(model, cfg.allreduce)
        except UsageError as exc:
            error = UsageError(f"--cost-model: {exc}")
    raise_together(comm, error)
    if comm.Get_size() < 2:
        say("--cost-model: one rank, no communication to model; ignored")
        return None
    return comm.bcast(model, root=0)


def auto(comm, cfg, payload: int, say) -> dict:
    """Collective: a short bench of this run's algorithm on these ranks, fitted on rank 0."""
    t0 = perf_counter()
    allreduce = make_allreduce(cfg.allreduce, comm, ranks_per_node=cfg.ranks_per_node)
    itemsize = np.dtype(cfg.dtype).itemsize
    lo = max(itemsize, payload // 64)
    place = where(comm, cfg.ranks_per_node)
    records = []
    for nbytes in sizes(lo, max(payload * 16, lo * 1024), 4):
        rec = measure(comm, allreduce, nbytes, cfg.dtype, AUTO_WARMUP, AUTO_ITERS)
        rec.update(place, reduce_s=measure_reduce(comm, rec["bytes"], cfg.dtype, AUTO_ITERS))
        records.append(rec)
    allreduce.free()
    error, model = None, None
    if comm.Get_rank() == 0:
        try:
            model = fit_records(records, segments=1)
            model["source"]["auto"] = "train --model auto: a sweep on the run's own ranks"
        except UsageError as exc:
            error = UsageError(f"--cost-model auto: {exc}")
    raise_together(comm, error)
    model = comm.bcast(model, root=0)
    res = model["algorithms"][cfg.allreduce]["residuals"]
    say(
        f"model auto: {cfg.allreduce} fitted on {len(records)} sizes ({records[0]['bytes']}.."
        f"{records[-1]['bytes']} B) in {perf_counter() - t0:.1f} s; residuals median "
        f"{100 * res['median_rel']:.1f}%, max {100 * res['max_rel']:.1f}%"
    )
    return model
