"""The serial oracle: plain numpy mini-batch SGD on whole batches, no slicing, no MPI."""

import numpy as np

from dist_logreg.train import model
from dist_logreg.train.data import GlobalBatches


def serial_sgd(X, y, *, batch_size, steps, lr, l2, momentum, seed):
    """Reference trajectory: returns ``[coef..., intercept]`` after ``steps`` steps."""
    n, d = X.shape
    params = np.zeros(d + 1)
    velocity = np.zeros(d + 1)
    batches = GlobalBatches(n, batch_size, seed)
    for step in range(steps):
        idx = batches.batch(step)
        gw, gb = model.full_gradient(
            np.asarray(X[idx], dtype=np.float64),
            np.asarray(y[idx], dtype=np.float64),
            params[:d],
            params[d],
            l2,
        )
        velocity = momentum * velocity + np.append(gw, gb)
        params = params - lr * velocity
    return params


class QuietReporter:
    """Stands in for the reporter: records what would be printed."""

    def __init__(self):
        self.lines = []

    def start(self, cfg, ds, world_size, steps):
        self.lines.append(("start", world_size, steps))

    def progress(self, step, steps, loss, samples_per_s):
        self.lines.append(("progress", step, loss))
