"""What one rank ends a training run with: its parameters and the timestamps of every step.

The loop fills a :class:`TrainResult`; the statistics and the output files read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Columns of the per-step timing array.
PHASES = ("data", "compute", "comm", "update")
#: Timestamps taken in every step (perf_counter_ns): the columns of ``TrainResult.marks``.
MARKS = ("data_start", "data_end", "first_post", "comm_end", "update_end")


@dataclass
class TrainResult:
    """What one rank ends with. ``params`` is the model's flat vector (``[coef..., intercept]``,
    shape ``(d + 1,)`` for binary; see :mod:`dist_logreg.train.models`)."""

    params: np.ndarray
    steps: int  # the step count the run ends at
    first_step: int  # where this run started (> 0 when resumed from a checkpoint)
    marks: np.ndarray  # (steps, 5) int64 timestamps, columns MARKS
    comm_ns: np.ndarray  # (steps,) time this rank spent inside allreduce calls
    batch_loss: np.ndarray  # (steps,) global mean loss of each step's batch (before the step)
    loop_ns: int  # wall time of the whole loop on this rank
    final_loss: float  # objective on the full training set, after training
    final_accuracy: float
    epochs: float  # passes over the data completed
    model: object  # the models.Binary / models.Softmax trained
    evals: list = field(default_factory=list)  # held-out metrics: {"step", "loss", ...}
    eval_ns: int = 0  # time spent in periodic held-out evaluations (not in loop_ns)

    @property
    def phase_ns(self) -> np.ndarray:
        """(steps, 4) int64: data, compute, comm, update time of each step (PHASES)."""
        return self.phases_of(self.marks, self.comm_ns)

    @staticmethod
    def phases_of(m: np.ndarray, comm_ns: np.ndarray) -> np.ndarray:
        """:attr:`phase_ns` of the marks (steps, MARKS) and comm times (steps,) given."""
        compute = m[:, 3] - m[:, 1] - comm_ns  # between data and update, not in comm
        return np.stack([m[:, 1] - m[:, 0], compute, comm_ns, m[:, 4] - m[:, 3]], axis=1)

    @property
    def comm_span_ns(self) -> np.ndarray:
        """(steps,) from the first allreduce posted to the last one completed."""
        return self.marks[:, 3] - self.marks[:, 2]

    @property
    def coef(self) -> np.ndarray:
        return self.model.unpack(self.params)[0]

    @property
    def intercept(self):
        if self.model.kind == "binary":
            return float(self.params[-1])
        return self.model.unpack(self.params)[1]

    def model_arrays(self) -> dict:
        """The arrays of ``model.npz``: ``coef``, ``intercept`` and ``classes``."""
        return {
            "coef": self.coef,
            "intercept": np.asarray(self.intercept),
            "classes": self.model.classes,
        }
