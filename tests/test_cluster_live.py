"""A running cluster: `cluster set`, signals during `up`, calibration before loss, failed
jobs, and Slurm on the emulated hosts.

Root and iproute2 are needed (and nft, iperf3, Slurm where said); elsewhere these skip with
the reason. Each test uses its own cluster name and subnet and checks nothing is left.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dist_logreg.ops.cluster import STATE_ROOT
from tests.cluster_tools import cli, leftovers, needs_nft, needs_root, read_json
from tests.helpers import BIN, mpi_env, run_mpi, train_cmd

SMALL = [
    "--samples",
    "512",
    "--features",
    "16",
    "--batch-size",
    "128",
    "--steps",
    "12",
    "--seed",
    "3",
]


@needs_nft
def test_set_changes_rate_and_loss_in_place_and_the_next_run_sees_it(tmp_path):
    name = "dlrset"
    r = cli("up", "--name", name, "--hosts", "2", "--rate", "100mbit", "--subnet", "198.18.20.0/24")
    try:
        assert r.returncode == 0, r.stderr
        before = set(leftovers(name))
        r = cli("set", "--name", name, "--rate", "50mbit", "--loss-link", "h0=5")
        assert r.returncode == 0, r.stderr
        assert "rate 100mbit -> 50mbit" in r.stdout and "loss-link h0 none -> 5.0" in r.stdout
        assert set(leftovers(name)) == before  # nothing rebuilt
        qdiscs = subprocess.run(
            ["tc", "qdisc", "show", "dev", f"{name}-h0"], capture_output=True, text=True
        ).stdout
        assert "rate 50Mbit" in qdiscs
        status = cli("status", "--name", name).stdout
        assert "changed " in status and "counters since the last job" in status
        out = tmp_path / "b.json"
        r = cli(
            "run",
            "--name",
            name,
            "--",
            "bench",
            "--allreduce",
            "ring",
            "--min-bytes",
            "1M",
            "--max-bytes",
            "1M",
            "--iters",
            "3",
            "--warmup",
            "1",
            "--out",
            str(out),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        doc = read_json(out)
        cl = doc["run"]["cluster"]
        assert cl["rate"] == "50mbit" and cl["loss_links"] == {"h0": 5.0}
        assert "rate 100mbit -> 50mbit" in cl["changes"][0]["what"]
        (rec,) = doc["records"]
        assert rec["time_s"] >= 0.95 * (1 << 20) * 8 / 50e6  # the new, slower rate holds
        rows = {row["id"]: row for row in read_json(tmp_path / "b.links.json")["links"]}
        assert sum(d["loss_drops"] for d in rows["h0"]["directions"].values()) > 0
        assert sum(d["loss_drops"] for d in rows["h1"]["directions"].values()) == 0
        r = cli("set", "--name", name, "--loss-link", "h0=0")  # and loss goes away again
        assert (
            r.returncode == 0
            and "loss" not in read_json(STATE_ROOT / name / "state.json")["spec"]["loss_links"]
        )
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


def _children_of_cluster(subnet_prefix: str) -> list[str]:
    """Processes whose command line names an address of the cluster (iperf3, probes)."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if subnet_prefix in cmd and "pytest" not in cmd:
                found.append(f"{p.name}: {cmd}")
    return found


@needs_root
@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (.ci/run installs it)")
@pytest.mark.parametrize("stage", ["building", "calibrating"])
def test_sigterm_at_each_stage_of_up_ends_every_process_and_leaves_nothing(stage):
    name = f"dlrk{stage[0]}"
    subnet = "198.18.21." if stage == "building" else "198.18.22."
    proc = subprocess.Popen(
        [
            str(BIN / "dist-logreg"),
            "cluster",
            "up",
            "--name",
            name,
            "--hosts",
            "2",
            "--rate",
            "100mbit",
            "--subnet",
            subnet + "0/24",
            "--calibrate",
            "--calibrate-seconds",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mpi_env(),
        start_new_session=True,
    )
    try:
        for line in proc.stdout:
            if f"cluster: {stage}" in line:
                break
        time.sleep(1.0 if stage == "calibrating" else 0.05)  # iperf3 running / links half made
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    assert leftovers(name) == []
    assert _children_of_cluster(subnet) == []
    assert not (STATE_ROOT / name).exists()


@needs_nft
@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (.ci/run installs it)")
def test_calibration_measures_the_clean_fabric_before_the_loss():
    name = "dlrcal"
    r = cli(
        "up",
        "--name",
        name,
        "--hosts",
        "2",
        "--rate",
        "100mbit",
        "--subnet",
        "198.18.23.0/24",
        "--loss-link",
        "h0=30",
        "--calibrate",
        "--calibrate-seconds",
        "1",
    )
    try:
        assert r.returncode == 0, r.stderr
        assert "calibrating the clean fabric, before the loss is applied" in r.stdout
        cal = read_json(STATE_ROOT / name / "state.json")["calibration"]
        assert cal["before_loss"] is True
        # 30% loss on h0's link leaves TCP a few percent of the rate; the clean link most of it
        assert cal["classes"]["host"]["one_way_Gbps"] > 0.5 * 0.1
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_root
def test_a_job_whose_rank_died_prints_no_fabric_summary(tmp_path):
    name = "dlrdie"
    r = cli("up", "--name", name, "--hosts", "2", "--subnet", "198.18.24.0/24")
    try:
        assert r.returncode == 0, r.stderr
        r = cli(
            "run",
            "--name",
            name,
            "--",
            "train",
            *SMALL,
            "--inject-fault",
            "kill:rank=1:step=5",
            "--out",
            str(tmp_path / "r"),
        )
        assert r.returncode != 0
        assert "the job failed" in r.stdout and "no fabric summary" in r.stdout
        assert "fabric: cluster" not in r.stdout and "busbw" not in r.stdout
        assert read_json(tmp_path / "r" / "links.json")["job_exit"] == r.returncode
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


_no_slurm = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged", "sbatch")),
    reason="needs Slurm and munge (Debian packages slurm-wlm, munge, libpmix-dev; .ci/run "
    "installs them)",
)


@needs_root
@_no_slurm
def test_sbatch_across_two_emulated_nodes_gives_the_local_model(tmp_path):
    name, pids = "dlrslm", []
    r = cli(
        "up", "--name", name, "--hosts", "2", "--subnet", "198.18.25.0/24", "--slurm", timeout=180
    )
    try:
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "2 nodes idle" in r.stdout
        assert "4 of 4 daemons running" in cli("status", "--name", name).stdout
        pids = [int(x) for x in (STATE_ROOT / name / "slurm" / "pids").read_text().split()]
        script = Path(__file__).resolve().parents[1] / "launch" / "slurm.sbatch"
        # The job runs in tmp_path, where no .venv is: the script takes $VENV, the venv of
        # this interpreter (sbatch passes the environment on), as a user of it would.
        venv_env = {**mpi_env(), "VENV": str(BIN.parent)}
        r = subprocess.run(
            [
                str(BIN / "dist-logreg"),
                "cluster",
                "run",
                "--name",
                name,
                "--",
                "sbatch",
                "--wait",
                "--ntasks-per-node=1",
                f"--output={tmp_path}/slurm-%j.out",
                str(script),
                *SMALL,
                "--allreduce",
                "ring",
                "--out",
                str(tmp_path / "s"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=venv_env,
            cwd=tmp_path,
            start_new_session=True,
        )
        logs = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:] + logs[-2000:]
        summary = read_json(tmp_path / "s" / "summary.json")
        hosts = [h["name"] for h in summary["run"]["hosts"]]
        assert summary["world_size"] == 2 and hosts == [f"{name}-h0", f"{name}-h1"]
        local = run_mpi(2, train_cmd(*SMALL, "--allreduce", "ring", "--out", str(tmp_path / "l")))
        assert local.returncode == 0, local.stderr
        a, b = np.load(tmp_path / "l" / "model.npz"), np.load(tmp_path / "s" / "model.npz")
        np.testing.assert_allclose(b["coef"], a["coef"], rtol=1e-10)
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []
    assert not any(_running(p) for p in pids)  # down ended every daemon it started


def _running(pid: int) -> bool:
    """Alive and not a zombie (an ended daemon whose parent has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
