"""The console: progress lines and the readable end-of-run block, printed by rank 0 only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol, runtime_checkable

from dist_logreg.protocol import report
from dist_logreg.record.progress import bar_for
from dist_logreg.units import format_byte_rate, format_loss, format_seconds
from dist_logreg.units import format_bytes as _bytes


def _time(s: float) -> str:
    return format_seconds(s, ".1f")


def _rate(gb_per_s: float) -> str:
    """A rate the summary holds in GB/s, in the unit that keeps its digits."""
    return format_byte_rate(gb_per_s * 1e9, ".3f")


#: Progress lines per run when the reporter does not ask for a number (:class:`Paced`).
DEFAULT_UPDATES = 10


class LoopReporter(Protocol):
    """What the training loop tells whoever watches (rank 0 prints; other ranks stay quiet).

    :class:`Reporter` (the console), :class:`NullReporter` (silence) and the tests' reporters
    implement it. Example::

        >>> train(comm, allreduce, cfg, ds, NullReporter())
    """

    def start(self, cfg, ds, world_size: int, steps: int) -> None:
        """Before the first step: the run's shape."""

    def progress(self, step: int, steps: int, loss: float, samples_per_s: float) -> None:
        """After ``step`` steps: the batch's global mean loss and the training rate."""

    def evaluation(self, step: int, steps: int, metrics: dict) -> None:
        """After a held-out evaluation: ``loss``, ``accuracy``, ``auc`` (None if K > 2)."""


@runtime_checkable
class Paced(Protocol):
    """A reporter that says how many :meth:`LoopReporter.progress` calls it wants per run
    (read after :meth:`LoopReporter.start`, which may set it)."""

    updates: int


def progress_every(cfg, steps: int, reporter) -> int:
    """Steps between progress calls: ``--log-every``, else the reporter's pace."""
    updates = reporter.updates if isinstance(reporter, Paced) else DEFAULT_UPDATES
    return cfg.log_every or max(1, steps // updates)


class NullReporter:
    """A reporter that prints nothing: for callers of ``train`` that only want the result
    (benchmarks, scripts). Same methods as :class:`Reporter`."""

    notes: tuple = ()

    def say(self, *args) -> None:
        pass

    start = progress = evaluation = warn = finish = close = say


class Reporter:
    """Progress and the final report, printed by rank 0 only.

    On a terminal, rank 0 shows a progress bar (updated about ``updates`` times a run) with
    the plain progress line printed above it about every tenth of the run; elsewhere, the
    plain lines only.
    """

    def __init__(self, rank: int, stream=None):
        self.rank = rank
        self.stream = stream if stream is not None else sys.stdout
        self.bar = None
        self.updates = DEFAULT_UPDATES  # progress() calls per run without --log-every
        self._next_line = 0
        self.notes: list[str] = []  # lines printed after the start line (model, held-out set)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif self.rank == 0:
            print(text, file=self.stream, flush=True)

    def start(self, cfg, ds, world_size: int, steps: int) -> None:
        self.say(
            f"dist-logreg train: {world_size} rank(s), {steps} steps, global batch "
            f"{cfg.batch_size} rows, {ds.n_total} samples x {ds.n_features} features "
            f"({cfg.dtype}), data {ds.source}, --shuffle {cfg.shuffle} --sampling {cfg.sampling}"
        )
        self.bar = bar_for(self.rank, self.stream, steps, "step")
        if self.bar is not None:
            self.updates = min(steps, 200)
            self._next_line = max(1, steps // 10)
        for note in self.notes:
            self.say(f"  {note}")

    def warn(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(f"dist-logreg: warning: {text}", sys.stderr)
        elif self.rank == 0:
            print(f"dist-logreg: warning: {text}", file=sys.stderr, flush=True)

    def progress(self, step: int, steps: int, loss: float, samples_per_s: float) -> None:
        width = len(str(steps))
        shown = format_loss(loss)
        line = f"  step {step:>{width}}/{steps}  batch loss {shown}  {samples_per_s:,.0f} samples/s"
        if self.bar is None:
            self.say(line)
        else:
            self.bar.advance_to(step, f"loss {loss:.4f}, {samples_per_s:,.0f} samples/s")
            if step >= self._next_line or step == steps:  # keep about ten lines in the log
                self.bar.write(line)
                every = max(1, steps // 10)
                self._next_line = (step // every + 1) * every
        if self.rank == 0:  # for `dist-logreg supervise`: the work lost if the job dies
            report(step=step, steps=steps)

    def evaluation(self, step: int, steps: int, m: dict) -> None:
        """A progress line for the held-out rows (loss without the penalty term)."""
        auc = f"  auc {m['auc']:.4f}" if m.get("auc") is not None else ""
        self.say(
            f"  step {step:>{len(str(steps))}}/{steps}  held-out loss {format_loss(m['loss'])}  "
            f"accuracy {100 * m['accuracy']:.2f}%{auc}"
        )

    def finish(self, summary: dict, out_dir: Path) -> None:
        self.close()
        if self.rank == 0:
            print(format_summary(summary, out_dir), file=self.stream, flush=True)

    def close(self) -> None:
        """End the progress bar, if any (before the end-of-run block or an error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _validation_lines(s: dict) -> list[str]:
    v = s.get("validation")
    if not v:
        return []
    auc = f"   auc {v['auc']:.4f}" if v.get("auc") is not None else ""
    return [
        f"  held-out loss   {format_loss(v['loss'])}  (mean log-loss)   accuracy "
        f"{100 * v['accuracy']:.2f}%{auc}"
    ]


def format_summary(s: dict, out_dir: Path) -> str:
    """The readable end-of-run block (every number says what it is and its unit)."""
    a, tr = s["allreduce"], s["time_s_per_rank"]
    cf = s["comm_fraction"]

    def spread(name: str) -> str:
        r = tr[name]
        return f"{r['median']:.3f} s [{r['min']:.3f}..{r['max']:.3f}]"

    forced = a.get("mpi_algorithm") or {}
    label = a["algorithm"] + (f", {forced['requested']}" if forced.get("requested") else "")
    lines = [
        f"done: {s['world_size']} rank(s), {s['steps']} steps ({s['epochs']:.2f} epochs), "
        f"{s['samples_per_s']:,.0f} samples/s",
        f"  final loss      {format_loss(s['final_loss'])}  (objective on all "
        f"{s['data']['samples']} "
        f"training rows)   accuracy {100 * s['final_accuracy']:.2f}%",
        *_validation_lines(s),
        f"  allreduce [{label}]  {a['calls']} calls/rank x {_bytes(a['bytes_per_call'])}"
        f" payload = {_bytes(a['bytes'])} payload per rank",
        f"    latency       p50 {_time(a['latency_s']['p50'])}   "
        f"p99 {_time(a['latency_s']['p99'])}",
        f"    bandwidth     algbw {_rate(a['algbw_GBps']['p50'])}   busbw "
        f"{_rate(a['busbw_GBps']['p50'])}   (per-call payload / latency, p50)",
        f"    per call      transfer p50 {_time(a['transfer_s']['p50'])} (min over ranks)   "
        f"skew p50 {_time(a['skew_s']['p50'])} (max - min over ranks)",
    ]
    if a["wire_bytes_observed"]:
        w = a["wire_bytes_per_rank"]
        line = f"    wire bytes    {_bytes(w['median'])} sent per rank (median, counted)"
        if "inter_node_bytes" in a:
            line += (
                f"; {a['nodes']} nodes: intra-node {_bytes(a['intra_node_bytes'])}, "
                f"inter-node {_bytes(a['inter_node_bytes'])} (all ranks)"
            )
        lines.append(line)
    else:
        lines.append(
            f"    wire bytes    not observed for the MPI library's algorithm; ESTIMATE "
            f"{_bytes(a['wire_bytes_estimate_per_rank'])} per rank (cost model 2(p-1)/p x payload)"
        )
    if a["compress"] != "none":
        lines.append(
            f"    compression   {a['compress']}: {_bytes(a['bytes_saved'])} of "
            f"{_bytes(a['bytes_uncompressed'])} payload saved per rank"
        )
    if "overlap_fraction" in a:
        o = a["overlap_fraction"]
        lines.append(
            f"    buckets       {a['calls_per_step']:.0f} per step of <= "
            f"{_bytes(a['bucket_bytes'])}; overlap {100 * o['median']:.1f}% median "
            f"[{100 * o['min']:.1f}%..{100 * o['max']:.1f}%] of comm hidden behind compute"
        )
    lines += [
        "  time per rank   median [min..max]",
        f"    total   {spread('total')}",
        f"    data    {spread('data')}   compute {spread('compute')}",
        f"    comm    {spread('comm')}   update  {spread('update')}",
        f"  comm fraction   {100 * cf['median']:.1f}% median [{100 * cf['min']:.1f}%.."
        f"{100 * cf['max']:.1f}%] of loop time in the gradient allreduce",
        *model_lines(s),
        f"  outputs         {out_dir}/",
    ]
    return "\n".join(lines)


def model_lines(s: dict, show: int = 3) -> list[str]:
    """The cost model against the measurement, and the stragglers (when the summary has them)."""
    lines = []
    m = s.get("cost_model")
    if m:
        ratio = f"{m['ratio']:.2f}" if m["ratio"] is not None else "-"
        lines.append(
            f"  model           measured p50 {_time(m['measured_p50_s'])}, predicted "
            f"{_time(m['predicted_s'])} (ratio {ratio})  [{m['algorithm']}, {m['source']}]"
        )
        if m["explanation"]:
            lines.append(f"    explanation   {m['explanation']}")
    st = s.get("stragglers")
    if st:
        lines.append(
            "  stragglers      the rank that entered each step's allreduce last, late by "
            "(vs the next-latest rank)"
        )
        lines += [
            f"    rank {r['rank']} (host {r['host']}) arrived last in {100 * r['share']:.0f}% "
            f"of steps, median +{_time(r['median_late_s'])}, worst +{_time(r['worst_late_s'])} "
            f"(step {r['worst_step']})"
            for r in st["table"][:show]
            if r["last_steps"]
        ]
        if "flagged_total" in st:
            lines.append(
                f"  flagged         {st['flagged_total']} step(s) took over "
                f"{st['slow_factor']:g}x the predicted allreduce"
                + ("; the slowest:" if st["flagged_total"] else "")
            )
            lines += [
                f"    step {f['step']}: {_time(f['measured_s'])} = {f['ratio']:.0f}x predicted; "
                f"rank {f['late_rank']} (host {f['late_host']}) arrived last, "
                f"+{_time(f['late_by_s'])}"
                for f in sorted(st["flagged_steps"], key=lambda f: -f["measured_s"])[:show]
            ]
    return lines
