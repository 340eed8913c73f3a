"""The serial oracle: plain numpy mini-batch SGD on whole batches, no slicing, no MPI."""

import numpy as np

from dist_logreg.train import model, softmax
from dist_logreg.train.data import GlobalBatches


def serial_sgd(X, y, *, batch_size, steps, lr, l2, momentum, seed, classes=0):
    """Reference trajectory: returns ``[coef..., intercept]`` after ``steps`` steps.

    ``classes=K`` runs the K-class softmax model (``[W (K, d) row-major, b (K)]``).
    """
    n, d = X.shape
    k = classes or 1
    params = np.zeros(k * (d + 1))
    velocity = np.zeros(k * (d + 1))
    batches = GlobalBatches(n, batch_size, seed)
    for step in range(steps):
        idx = batches.batch(step)
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
