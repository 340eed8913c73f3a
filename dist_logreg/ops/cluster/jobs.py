"""``cluster run``: ``mpirun`` across the emulated hosts, and what the fabric saw of the job.

Before the job every counter is read and the flow counters are emptied; after it, the
counters are read again and ``links.json`` (every link and direction), ``flows.json`` (the
flow map, leaf-spine only) and a ``fabric`` block in the run's ``summary.json`` (train) or
``busbw_pct_of_ceiling`` in each record (bench) are written. Where: train's ``--out`` DIR;
for bench, whose ``--out`` is a file, ``FILE.links.json`` and ``FILE.flows.json`` next to
it; ``--fabric-out DIR`` puts both files in DIR instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import calibrate, counters, flows
from dist_logreg.ops.cluster.report import fabric_lines, post_process
from dist_logreg.ops.cluster.state import Cluster, load, preflight
from dist_logreg.protocol import CLUSTER_INFO_VAR

ENV = ("PATH", "OMPI_MCA_mpi_yield_when_idle", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
       "PYTHONPATH", "VIRTUAL_ENV", "DIST_LOGREG_ATTEMPT", "DIST_LOGREG_STATUS",
       CLUSTER_INFO_VAR)  # fmt: skip


def mpirun_command(
    c: Cluster, ranks_per_host: int, program: list[str], tcp_links: int
) -> list[str]:
    """The mpirun line that runs ``program`` with ``ranks_per_host`` ranks on every host."""
    mpirun = Path(sys.executable).parent / "mpirun"
    exe = str(mpirun) if mpirun.exists() else (shutil.which("mpirun") or "mpirun")
    ranks = len(c.hosts) * ranks_per_host
    cmd = [exe, "--hostfile", str(c.state_dir / "hostfile"), "-n", str(ranks),
           "--map-by", f"ppr:{ranks_per_host}:node", "--bind-to", "none",
           "--prtemca", "plm_ssh_agent", str(c.state_dir / "agent"),
           "--prtemca", "oob_tcp_if_include", c.oob_net,
           "--mca", "btl", "self,sm,tcp", "--mca", "btl_tcp_if_include", c.mpi_net,
           "--mca", "btl_tcp_links", str(tcp_links)]  # fmt: skip
    for var in ENV:
        if var in os.environ:
            cmd += ["-x", var]
    return [*cmd, *program]


def _option(program: list[str], flag: str) -> str | None:
    for i, arg in enumerate(program):
        if arg == flag and i + 1 < len(program):
            return program[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def outputs(program: list[str], fabric_out: str | None) -> tuple[list[str], Path, Path, Path]:
    """``(program, its output, links.json, flows.json)``; adds ``--out`` when it has none."""
    out = _option(program, "--out")
    if out is None:  # the job's results are where the fabric report goes: name them
        out = time.strftime(
            f"runs/{program[0]}-%Y%m%d-%H%M%S" + (".json" if program[0] == "bench" else "")
        )
        program = [*program, "--out", out]
    where = Path(out)
    (where if program[0] == "train" else where.parent).parent.mkdir(parents=True, exist_ok=True)
    if fabric_out:
        links, flow = Path(fabric_out) / "links.json", Path(fabric_out) / "flows.json"
    elif program[0] == "train":
        links, flow = where / "links.json", where / "flows.json"
    else:
        stem = where.with_suffix("") if where.suffix == ".json" else where
        links, flow = Path(f"{stem}.links.json"), Path(f"{stem}.flows.json")
    return program, where, links, flow


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def run(name: str, ranks_per_host: int, program: list[str], tcp_links: int = 4,
        fabric_out: str | None = None, say=print) -> int:  # fmt: skip
    """Run ``dist-logreg train|bench ...`` across the cluster; returns mpirun's exit status."""
    preflight()
    c = load(name)
    if ranks_per_host < 1:
        raise UsageError(f"--ranks-per-host: expected an integer >= 1, got {ranks_per_host}")
    if tcp_links < 1:
        raise UsageError(f"--tcp-links: expected an integer >= 1, got {tcp_links}")
    if not program or program[0] not in ("train", "bench"):
        raise UsageError("cluster run: expected `-- train ARGS...` or `-- bench ARGS...`")
    program, result, links_path, flows_path = outputs(program, fabric_out)
    exe = Path(sys.executable).parent / "dist-logreg"
    prog = [str(exe) if exe.exists() else "dist-logreg", *program]
    os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")  # emulated hosts share cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ[CLUSTER_INFO_VAR] = json.dumps(cluster_info(c, ranks_per_host, tcp_links))
    cmd = mpirun_command(c, ranks_per_host, prog, tcp_links)
    say(f"dist-logreg cluster: {' '.join(cmd)}")
    leaf_spine = c.spec.topology == "leaf-spine"
    if leaf_spine:
        flows.reset(c)
    before = counters.snapshot(c)
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, 15)
        proc.wait()
        return 130
    after = counters.snapshot(c)
    links = counters.link_table(c, before, after)
    report = {
        "cluster": c.name, "topology": c.spec.topology, "seconds": after["time"] - before["time"],
        "ranks_per_host": ranks_per_host, "tcp_links": tcp_links,
        "uplinks": counters.uplink_summary(c, links), "tcp": counters.tcp_table(before, after),
        "links": links,
    }  # fmt: skip
    flow_doc = None
    if leaf_spine:
        fl = flows.flow_map(c, *flows.read(c), ranks_per_host)
        report["pairs"] = flows.pairs(fl)
        flow_doc = {
            "cluster": c.name,
            "hash": c.spec.hash,
            "ranks_per_host": ranks_per_host,
            "tcp_links": tcp_links,
            "collisions": flows.collisions(c, fl),
            "flows": fl,
        }
        _write(flows_path, flow_doc)
    _write(links_path, report)
    ceiling = calibrate.ceiling(c, c.hosts)
    block = post_process(c, program[0], result, report, ceiling, rc) if rc == 0 else None
    for line in fabric_lines(c, report, flow_doc, block):
        say(line)
    say(f"  fabric files    {links_path}" + (f", {flows_path}" if flow_doc else ""))
    return rc


def cluster_info(c: Cluster, ranks_per_host: int, tcp_links: int) -> dict:
    """What a run on this cluster records in its ``run.cluster`` block (summary, bench JSON)."""
    return {
        **asdict(c.spec),
        "hosts": len(c.hosts),
        "ranks_per_host": ranks_per_host,
        "tcp_links": tcp_links,
        "burst_bytes": c.burst,
        "queue_bytes": c.queue,
        "calibration": c.calibration,
    }
