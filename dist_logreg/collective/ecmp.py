"""Balls into bins: what ECMP hashing should do to an allreduce on a 2-tier leaf-spine.

Each algorithm is a list of steps; in a step every rank sends some bytes to one partner, all
at once. A cross-leaf transfer travels host link, uplink (leaf to spine), downlink (spine to
leaf), host link; it is carried by ``k`` TCP flows (one per ``btl_tcp_links`` connection),
each hashed onto a spine when the job starts and kept for the whole job. ``l4`` hashing puts
every flow on a spine independently; ``l3`` puts all flows between two hosts, both ways, on
one (see ``_flows``). A step lasts as long as its most loaded link needs (a fluid model:
every link drains at the same rate ``C``); the job's busbw follows from the sum of its steps.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dist_logreg.collective.schedule import phases


def schedule(algorithm: str, p: int, size: float) -> list[list[tuple[int, int, float]]]:
    """Per step, ``(src rank, dst rank, bytes)``: the algorithm's phases
    (:func:`dist_logreg.collective.schedule.phases`, one rank per host), each repeat a step.

    The model has every rank send once in every step, so an algorithm that folds ranks in
    first (halving and doubling at a ``p`` that is not a power of two) is refused.
    """
    out = []
    for ph in phases(algorithm, p):
        if sorted(ph.src.tolist()) != list(range(p)):
            raise ValueError(
                f"expected a power of two for {algorithm}, got p={p} (its fold-in steps "
                "leave ranks idle, which this model does not describe)"
            )
        step = [
            (int(a), int(b), float(f) * size)
            for a, b, f in zip(ph.src, ph.dst, ph.frac, strict=True)
        ]
        out += [step] * ph.repeat
    return out


@dataclass
class Fabric:
    """Hosts ``0..hosts-1`` (one rank each) spread evenly over ``leaves``; ``spines`` spines."""

    hosts: int = 4
    leaves: int = 2
    spines: int = 2

    def leaf(self, h: int) -> int:
        return h * self.leaves // self.hosts


def _flows(fab: Fabric, steps, k: int, hashing: str):
    """The cross-leaf flows: ``[(src, dst, connection)]`` and which ones hash together.

    ``l3`` (Linux, one seed on every leaf): the hash of the two addresses is symmetric, so
    all flows between two hosts, both ways, take one spine. ``l4``: every flow on its own.
    """
    pairs = sorted({(a, b) for step in steps for a, b, _ in step if fab.leaf(a) != fab.leaf(b)})
    flows = [(a, b, i) for a, b in pairs for i in range(k)]
    groups = [(min(a, b), max(a, b)) if hashing == "l3" else (a, b, i) for a, b, i in flows]
    return flows, groups


def _assignments(n_groups: int, spines: int, exact_limit: int, samples: int, seed: int):
    if spines**n_groups <= exact_limit:  # every outcome once: exact probabilities
        return np.array(list(itertools.product(range(spines), repeat=n_groups)), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, spines, size=(samples, n_groups))


def predict(
    algorithm: str,
    k: int,
    hashing: str,
    fab: Fabric | None = None,
    size: float = 1.0,
    exact_limit: int = 1 << 16,
    samples: int = 20000,
    seed: int = 0,
) -> dict:
    """Predicted busbw (in units of the link rate) and collision probability.

    Returns ``busbw`` (an array: one value per hash outcome), ``ideal`` (every step's
    cross-leaf bytes split evenly over the spines), ``collision`` (the probability that an
    uplink carries flows of two or more host pairs while a sibling carries none, per leaf
    and direction, as ``flows.json`` counts them) and ``flows`` (cross-leaf flows).
    """
    fab = fab or Fabric()
    steps = schedule(algorithm, fab.hosts, size)
    flows, groups = _flows(fab, steps, k, hashing)
    keys = sorted(set(groups))
    spine_of_group = _assignments(len(keys), fab.spines, exact_limit, samples, seed)
    assign = spine_of_group[:, [keys.index(g) for g in groups]]  # (outcomes, flows)
    n = assign.shape[0]
    total = np.zeros(n)
    ideal = 0.0
    for step in steps:
        host = np.zeros(2 * fab.hosts)  # up (sending) and down (receiving) per host
        up = np.zeros((n, fab.leaves, fab.spines))  # leaf -> spine
        down = np.zeros((n, fab.spines, fab.leaves))  # spine -> leaf
        even = np.zeros((fab.leaves, 2))  # leaf's cross-leaf bytes out, in
        for a, b, nbytes in step:
            host[a] += nbytes
            host[fab.hosts + b] += nbytes
            if fab.leaf(a) == fab.leaf(b):
                continue
            even[fab.leaf(a), 0] += nbytes
            even[fab.leaf(b), 1] += nbytes
            for f, (fa, fb, _) in enumerate(flows):
                if (fa, fb) == (a, b):
                    s = assign[:, f]
                    up[np.arange(n), fab.leaf(a), s] += nbytes / k
                    down[np.arange(n), s, fab.leaf(b)] += nbytes / k
        links = np.concatenate([up.reshape(n, -1), down.reshape(n, -1)], axis=1)
        total += np.maximum(host.max(), links.max(axis=1))
        ideal += max(host.max(), even.max() / fab.spines)
    moved = 2 * (fab.hosts - 1) / fab.hosts * size
    return {
        "busbw": moved / total,
        "ideal": moved / ideal,
        "collision": float(np.mean(_collided(fab, flows, assign))),
        "flows": len(flows),
        "exact": n == fab.spines ** len(keys),
    }


def _collided(fab: Fabric, flows, assign: np.ndarray) -> np.ndarray:
    """Per outcome: an uplink with flows of two or more host pairs while a sibling is idle."""
    hit = np.zeros(assign.shape[0], dtype=bool)
    for leaf in range(fab.leaves):
        for side in (0, 1):  # flows leaving the leaf, flows entering it
            mine = [f for f, fl in enumerate(flows) if fab.leaf(fl[side]) == leaf]
            pairs = sorted({flows[f][:2] for f in mine})
            if not mine:
                continue
            used = np.zeros((assign.shape[0], fab.spines), dtype=np.int64)  # flows per spine
            npairs = np.zeros_like(used)  # host pairs per spine
            for s in range(fab.spines):
                on = assign[:, mine] == s
                used[:, s] = on.sum(axis=1)
                for pair in pairs:
                    cols = [i for i, f in enumerate(mine) if flows[f][:2] == pair]
                    npairs[:, s] += on[:, cols].any(axis=1)
            hit |= (npairs.max(axis=1) >= 2) & (used.min(axis=1) == 0)
    return hit
