"""The console: progress lines and the readable end-of-run block, printed by rank 0 only."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from dist_logreg.protocol import STATUS_VAR


class Reporter:
    """Progress and the final report, printed by rank 0 only."""

    def __init__(self, rank: int, stream=None):
        self.rank = rank
        self.stream = stream if stream is not None else sys.stdout

    def say(self, text: str) -> None:
        if self.rank == 0:
            print(text, file=self.stream, flush=True)

    def start(self, cfg, ds, world_size: int, steps: int) -> None:
        self.say(
            f"dist-logreg train: {world_size} rank(s), {steps} steps, global batch "
            f"{cfg.batch_size} rows, {ds.n_total} samples x {ds.n_features} features "
            f"({cfg.dtype}), data {ds.source}, --shuffle {cfg.shuffle} --sampling {cfg.sampling}"
        )

    def warn(self, text: str) -> None:
        if self.rank == 0:
            print(f"dist-logreg: warning: {text}", file=sys.stderr, flush=True)

    def progress(self, step: int, steps: int, loss: float, samples_per_s: float) -> None:
        width = len(str(steps))
        self.say(
            f"  step {step:>{width}}/{steps}  batch loss {loss:.6f}  {samples_per_s:,.0f} samples/s"
        )
        if self.rank == 0 and STATUS_VAR in os.environ:  # for `dist-logreg supervise`
            with contextlib.suppress(OSError):
                Path(os.environ[STATUS_VAR]).write_text(json.dumps({"step": step, "steps": steps}))

    def finish(self, summary: dict, out_dir: Path) -> None:
        if self.rank == 0:
            print(format_summary(summary, out_dir), file=self.stream, flush=True)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _us(s: float) -> str:
    return f"{s * 1e6:.1f} us"


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
        f"  final loss      {s['final_loss']:.6f}  (objective on all {s['data']['samples']} "
        f"training rows)   accuracy {100 * s['final_accuracy']:.2f}%",
        f"  allreduce [{label}]  {a['calls']} calls/rank x {_bytes(a['bytes_per_call'])}"
        f" payload = {_bytes(a['bytes'])} payload per rank",
        f"    latency       p50 {_us(a['latency_s']['p50'])}   p99 {_us(a['latency_s']['p99'])}",
        f"    bandwidth     algbw {a['algbw_GBps']['p50']:.3f} GB/s   busbw "
        f"{a['busbw_GBps']['p50']:.3f} GB/s   (per-call payload / latency, p50)",
        f"    per call      transfer p50 {_us(a['transfer_s']['p50'])} (min over ranks)   "
        f"skew p50 {_us(a['skew_s']['p50'])} (max - min over ranks)",
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
        f"  outputs         {out_dir}/",
    ]
    return "\n".join(lines)
