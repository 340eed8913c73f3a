"""The serial oracle: plain numpy mini-batch SGD on whole batches, no slicing, no MPI."""

import numpy as np

from dist_logreg.train import binary as model
from dist_logreg.train import softmax
from dist_logreg.train.data import GlobalBatches
from dist_logreg.train.sampling import BatchPlan, rank_slice, shard_stream


def serial_sgd(X, y, *, batch_size, steps, lr, l2, momentum, seed, classes=0, batches=None):
    """Reference trajectory: returns ``[coef..., intercept]`` after ``steps`` steps.

    ``classes=K`` runs the K-class softmax model (``[W (K, d) row-major, b (K)]``).
    ``batches(step)`` gives the global batch's row indices (default: the ``rows`` order).
    """
    n, d = X.shape
    k = classes or 1
    params = np.zeros(k * (d + 1))
    velocity = np.zeros(k * (d + 1))
    batches = batches or GlobalBatches(n, batch_size, seed).batch
    for step in range(steps):
        idx = batches(step)
        Xb, yb = np.asarray(X[idx], dtype=np.float64), np.asarray(y[idx], dtype=np.float64)
        if classes:
            W, b = params[: k * d].reshape(k, d), params[k * d :]
            gw, gb = softmax.full_gradient(Xb, yb, W, b, l2)
            grad = np.concatenate([gw.ravel(), gb])
        else:
            gw, gb = model.full_gradient(Xb, yb, params[:d], params[d], l2)
            grad = np.append(gw, gb)
        velocity = momentum * velocity + grad
        params = params - lr * velocity
    return params


def global_rows(n, batch_size, seed, shuffle):
    """The global batches of a contiguous shuffle mode, as one process draws them."""
    plan = BatchPlan(n, batch_size, 0, batch_size, seed, shuffle)
    return lambda step: np.arange(n)[plan.rows(step)]


def sharded_rows(n, batch_size, seed, shuffle, size):
    """The global batch of ``--sampling sharded`` at ``size`` ranks, simulated in one
    process: each shard draws its share from its own rows with its own stream."""
    shards = [rank_slice(n, size, r) for r in range(size)]
    shares = [hi - lo for lo, hi in (rank_slice(batch_size, size, r) for r in range(size))]
    spe = min((hi - lo) // m for (lo, hi), m in zip(shards, shares, strict=True))
    plans = [
        BatchPlan(hi - lo, m, 0, m, seed, shuffle, shard_stream(r), spe)
        for r, ((lo, hi), m) in enumerate(zip(shards, shares, strict=True))
    ]
    return lambda step: np.concatenate(
        [lo + np.arange(hi - lo)[p.rows(step)] for (lo, hi), p in zip(shards, plans, strict=True)]
    )


class QuietReporter:
    """Stands in for the reporter: records what would be printed."""

    def __init__(self):
        self.lines = []

    def start(self, cfg, ds, world_size, steps):
        self.lines.append(("start", world_size, steps))

    def progress(self, step, steps, loss, samples_per_s):
        self.lines.append(("progress", step, loss))

    def evaluation(self, step, steps, metrics):
        self.lines.append(("evaluation", step, metrics))
