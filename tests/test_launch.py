"""launch/: the mpirun wrapper for real nodes (run here on localhost) and the Slurm script."""

import json
import subprocess

import pytest

from tests.helpers import ROOT, mpi_env

pytestmark = [pytest.mark.e2e]

WRAPPER = ROOT / "launch" / "mpirun-nodes.sh"


def wrapper(*args, timeout=60):
    return subprocess.run(
        [str(WRAPPER), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=mpi_env(),
        timeout=timeout,
        start_new_session=True,
    )


def test_dry_run_has_interface_binding_and_ranks_per_node(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# two nodes\nnode01 slots=4\n\nnode02 slots=4\n")
    r = wrapper(
        "--hostfile",
        str(hosts),
        "--per-node",
        "3",
        "--iface",
        "eth1",
        "--dry-run",
        "--",
        "train",
        "--steps",
        "5",
    )
    assert r.returncode == 0, r.stderr
    cmd = r.stdout.split()
    assert cmd[cmd.index("-n") + 1] == "6"  # 2 nodes x 3
    assert "ppr:3:node" in cmd and cmd[cmd.index("--bind-to") + 1] == "core"
    assert cmd[cmd.index("btl_tcp_if_include") + 1] == "eth1"
    assert cmd[cmd.index("oob_tcp_if_include") + 1] == "eth1"
    assert cmd[-3:] == ["train", "--steps", "5"]


def test_runs_on_localhost(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost slots=3\n")
    r = wrapper(
        "--hostfile",
        str(hosts),
        "--per-node",
        "3",
        "--bind",
        "none",
        "--",
        "train",
        "--steps",
        "4",
        "--out",
        str(tmp_path / "out"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["world_size"] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "expected --hostfile"),
        (["--hostfile", "/nonexistent", "--", "train"], "cannot read hostfile"),
        (["--bogus"], "unknown option --bogus"),
    ],
)
def test_wrapper_rejects_bad_arguments(args, message):
    r = wrapper(*args)
    assert r.returncode == 2 and message in r.stderr


def test_slurm_script():
    text = (ROOT / "launch" / "slurm.sbatch").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "launch" / "slurm.sbatch")]).returncode == 0
    for directive in ("--nodes=", "--ntasks-per-node=", "--time="):
        assert f"#SBATCH {directive}" in text
    assert "srun --mpi=pmix dist-logreg train" in text
