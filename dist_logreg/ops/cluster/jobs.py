"""``cluster run``: ``mpirun`` across the emulated hosts, and what the fabric saw of the job.

Before the job every counter is read and the flow counters are emptied; after it, the
counters are read again and ``links.json`` (every link and direction), ``flows.json`` (the
flow map, leaf-spine only) and a ``fabric`` block in the run's ``summary.json`` (train) or
``busbw_pct_of_ceiling`` in each record (bench) are written. Where: train's ``--out`` DIR;
for bench, whose ``--out`` is a file, ``FILE.links.json`` and ``FILE.flows.json`` next to
it; ``--fabric-out DIR`` puts both files in DIR instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import (
    attribution,
    calibrate,
    counters,
    fabricfiles,
    flows,
    slurm,
    tcpinfo,
)
from dist_logreg.ops.cluster.postprocess import fabric_lines, post_process
from dist_logreg.ops.cluster.state import Cluster, load, preflight
from dist_logreg.protocol import CLUSTER_INFO_VAR

ENV = (
    "PATH",
    "OMPI_MCA_mpi_yield_when_idle",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "DIST_LOGREG_ATTEMPT",
    "DIST_LOGREG_STATUS",
    "OMPI_ALLOW_RUN_AS_ROOT",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM",
    CLUSTER_INFO_VAR,
)


def mpirun_command(
    c: Cluster, ranks_per_host: int, program: list[str], tcp_links: int
) -> list[str]:
    """The mpirun line that runs ``program`` with ``ranks_per_host`` ranks on every host."""
    mpirun = Path(sys.executable).parent / "mpirun"
    exe = str(mpirun) if mpirun.exists() else (shutil.which("mpirun") or "mpirun")
    ranks = len(c.hosts) * ranks_per_host
    cmd = [
        exe,
        "--hostfile",
        str(c.state_dir / "hostfile"),
        "-n",
        str(ranks),
        "--map-by",
        f"ppr:{ranks_per_host}:node",
        "--bind-to",
        "none",
        "--prtemca",
        "plm_ssh_agent",
        str(c.state_dir / "agent"),
        "--prtemca",
        "oob_tcp_if_include",
        c.oob_net,
        "--mca",
        "btl",
        "self,sm,tcp",
        "--mca",
        "btl_tcp_if_include",
        c.mpi_net,
        "--mca",
        "btl_tcp_links",
        str(tcp_links),
    ]
    for var in ENV:
        if var in os.environ:
            cmd += ["-x", var]
    return [*cmd, *program]


def root_env(euid: int | None = None) -> dict[str, str]:
    """Open MPI's two run-as-root variables when this runs as root (``cluster`` needs root
    for its namespaces, and Open MPI refuses root without both); none otherwise."""
    if (os.geteuid() if euid is None else euid) != 0:
        return {}
    names = ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM")
    return {n: os.environ.get(n) or "1" for n in names}


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


def _set_option(program: list[str], flag: str, value: str) -> list[str]:
    out = list(program)
    for i, arg in enumerate(out):
        if arg == flag and i + 1 < len(out):
            out[i + 1] = value
            return out
        if arg.startswith(flag + "="):
            out[i] = f"{flag}={value}"
            return out
    return [*out, flag, value]


def parts(program: list[str], result: Path) -> list[tuple[str, list[str], Path]]:
    """``[(label, program, its output)]``: a bench of several algorithms runs as one job per
    algorithm, so each gets its own flow map (``--fit`` needs them in one job: kept whole)."""
    algs = _option(program, "--allreduce") if program[0] == "bench" else None
    names = [a.strip() for a in (algs or "").split(",") if a.strip()]
    if len(names) < 2 or _option(program, "--fit") is not None or "--fit" in program:
        return [("job", program, result)]
    stem = result.with_suffix("") if result.suffix == ".json" else result
    return [
        (
            a,
            _set_option(_set_option(program, "--allreduce", a), "--out", f"{stem}.part-{a}.json"),
            Path(f"{stem}.part-{a}.json"),
        )
        for a in names
    ]


def _merge_bench(result: Path, pieces: list[Path]) -> None:
    """One bench JSON from the parts' (the first part's run block, every record)."""
    docs = [json.loads(p.read_text()) for p in pieces if p.exists()]
    if not docs:
        return
    merged = {"run": docs[0].get("run"), "records": [r for d in docs for r in d["records"]]}
    if merged["run"] is not None:
        merged["run"]["cluster_parts"] = [p.name for p in pieces]
    result.write_text(json.dumps(merged, indent=1, allow_nan=False) + "\n")
    for p in pieces:
        p.unlink(missing_ok=True)


def _job(c: Cluster, cmd: list[str], label: str, ranks_per_host: int) -> tuple[int, dict]:
    """Run one mpirun; returns its exit status and this part's flow map."""
    leaf_spine = c.spec.topology == "leaf-spine"
    if leaf_spine:
        flows.reset(c)
    sampler = tcpinfo.Sampler(c).start()
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: end the whole job, then say so
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    finally:
        tcp = sampler.stop()
    if leaf_spine:
        fl = flows.flow_map(c, *flows.read(c), ranks_per_host)
        attribution.annotate(c, fl, tcp)
    else:
        fl = attribution.connections(c, tcp)
        for f in fl:
            f["elephant"] = False
    fmap = {"label": label, "flows": fl}
    if leaf_spine:
        fmap["collisions"] = attribution.collisions(c, fl)
        fmap["imbalance"] = attribution.imbalance(c, fl)
    return rc, fmap


def failed_lines(rc: int, label: str) -> list[str]:
    """What ``cluster run`` prints instead of a fabric summary when the job failed."""
    sig = rc - 128 if rc > 128 else -rc if rc < 0 else 0
    why = f"exit status {rc}"
    if sig:
        why += f": a process was killed by signal {sig}"
        if sig == 9:
            why += " (SIGKILL, what the kernel's out-of-memory killer sends; see `dmesg`)"
    part = "" if label == "job" else f" (part {label})"
    return [
        f"dist-logreg cluster: the job failed{part}, {why}; no fabric summary: what the "
        "fabric counted is in the fabric files, marked job_exit"
    ]


def run(
    name: str,
    ranks_per_host: int,
    program: list[str],
    tcp_links: int = 4,
    fabric_out: str | None = None,
    say=print,
) -> int:
    """Run ``dist-logreg train|bench ...`` across the cluster; returns mpirun's exit status."""
    preflight()
    c = load(name)
    if ranks_per_host < 1:
        raise UsageError(f"--ranks-per-host: expected an integer >= 1, got {ranks_per_host}")
    if tcp_links < 1:
        raise UsageError(f"--tcp-links: expected an integer >= 1, got {tcp_links}")
    if program[:1] and program[0] in slurm.CLIENTS:
        return slurm.submit(c, program, say=say)
    if not program or program[0] not in ("train", "bench"):
        raise UsageError(
            "cluster run: expected `-- train ARGS...`, `-- bench ARGS...` or "
            "`-- sbatch|srun|sinfo|squeue ARGS...` (a cluster up "
            "--slurm)"
        )
    program, result, links_path, flows_path = outputs(program, fabric_out)
    exe = Path(sys.executable).parent / "dist-logreg"
    os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")  # emulated hosts share cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.update(root_env())
    os.environ[CLUSTER_INFO_VAR] = json.dumps(cluster_info(c, ranks_per_host, tcp_links))
    before, maps, rc, label = counters.snapshot(c), [], 0, "job"
    jobs = parts(program, result)
    with _job_marker(c):  # `cluster set` refuses to change the fabric under it
        for label, prog, _ in jobs:
            cmd = mpirun_command(
                c, ranks_per_host, [str(exe) if exe.exists() else "dist-logreg", *prog], tcp_links
            )
            say(f"dist-logreg cluster: {' '.join(cmd)}")
            rc, fmap = _job(c, cmd, label, ranks_per_host)
            maps.append(fmap)
            if rc != 0:
                break
    after = counters.snapshot(c)
    counters.save_baseline(c, after)
    if len(jobs) > 1:
        _merge_bench(result, [p for _, _, p in jobs])
    links = counters.link_table(c, before, after)
    report = {
        "cluster": c.name,
        "topology": c.spec.topology,
        "seconds": after["time"] - before["time"],
        "job_exit": rc,
        "ranks_per_host": ranks_per_host,
        "tcp_links": tcp_links,
        "uplinks": counters.uplink_summary(c, links),
        "tcp": counters.tcp_table(before, after),
        "links": links,
    }
    if c.spec.topology == "leaf-spine":
        report["pairs"] = flows.pairs([f for m in maps for f in m["flows"]])
    else:
        report["connections"] = maps
    files = _write_fabric_files(c, report, maps, links_path, flows_path)
    if rc != 0:
        for line in [*failed_lines(rc, label), files]:
            say(line)
        return rc
    ceiling = calibrate.ceiling(c, c.hosts)
    block = post_process(c, program[0], result, report, ceiling, rc)
    for line in fabric_lines(c, report, maps, block):
        say(line)
    say(files)
    return rc


def _write_fabric_files(c: Cluster, report: dict, maps: list, links_path, flows_path) -> str:
    """``links.json`` (and ``flows.json`` on a leaf-spine); the line that names them."""
    flow_doc = None
    if c.spec.topology == "leaf-spine":
        keep = ("ranks_per_host", "tcp_links", "job_exit")
        flow_doc = {"cluster": c.name, "hash": c.spec.hash, **{k: report[k] for k in keep}}
        flow_doc["maps"] = maps
        fabricfiles.write_flows(flows_path, flow_doc, maps)
    fabricfiles.write_links(links_path, report)
    return f"  fabric files    {links_path}" + (f", {flows_path}" if flow_doc else "")


@contextlib.contextmanager
def _job_marker(c: Cluster):
    """``job.json`` in the state directory while the job runs (this process's pid)."""
    path = c.state_dir / "job.json"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.write_text(json.dumps({"pid": os.getpid(), "utc": when}))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


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
        "changes": c.changes,
    }
