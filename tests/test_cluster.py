"""The emulated network: namespaces, links, shaping, runs across hosts, and cleanup.

These need root and iproute2 (CI has both); elsewhere they skip with the reason. Each test
uses its own cluster name and subnet and tears it down, checking nothing is left behind.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops import cluster
from dist_logreg.units import parse_rate
from tests.conftest import BIN, mpi_env, run_mpi, train_cmd

_skip_unless_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None,
    reason="emulated hosts need root and iproute2 (ip, tc)",
)


def needs_root(test):
    """Marked ``root`` (select with -m root) and skipped with the reason when not root."""
    return pytest.mark.root(_skip_unless_root(test))


COMMON = [
    "--samples",
    "2000",
    "--features",
    "9",
    "--batch-size",
    "100",
    "--steps",
    "15",
    "--seed",
    "6",
]


def leftovers(name):
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [w for w in (spaces + links).split() if w.startswith(f"{name}-")]


def cli(*args, timeout=120):
    r = subprocess.run(
        [str(BIN / "dist-logreg"), "cluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mpi_env(),
        start_new_session=True,
    )
    return r


@pytest.fixture
def two_hosts():
    name = "dlrt"
    r = cli("up", "--hosts", "2", "--name", name, "--subnet", "198.18.6.0/24")
    assert r.returncode == 0, r.stderr
    yield name
    cli("down", "--name", name)
    assert leftovers(name) == []


def test_rates_and_subnets_are_checked():
    assert parse_rate("100mbit", "--rate") == "100mbit"
    assert cluster.rate_bits("1gbit") == 1e9 and cluster.rate_bits("2.5mbit") == 2.5e6
    for bad in ("fast", "100", "0mbit", "-1gbit"):
        with pytest.raises(UsageError, match="expected a rate such as 100mbit"):
            parse_rate(bad, "--rate")


@needs_root
def test_subnet_outside_the_benchmark_range_is_refused():
    with pytest.raises(UsageError, match="expected a subnet of 198.18.0.0/15"):
        cluster.up("dlrq", 2, "10.0.0.0/24", "flat", None, None, None, None)
    assert leftovers("dlrq") == []


@needs_root
def test_train_across_two_hosts_matches_one_host(two_hosts, tmp_path):
    local = run_mpi(4, train_cmd(*COMMON, "--out", str(tmp_path / "local")), timeout=60)
    assert local.returncode == 0, local.stderr
    counters = [f"/sys/class/net/{two_hosts}-h{h}/statistics/tx_bytes" for h in (0, 1)]
    before = sum(int(open(c).read()) for c in counters)
    r = cli(
        "run",
        "--name",
        two_hosts,
        "--ranks-per-host",
        "2",
        "--",
        "train",
        *COMMON,
        "--allreduce",
        "hierarchical",
        "--out",
        str(tmp_path / "emulated"),
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    after = sum(int(open(c).read()) for c in counters)
    a = np.load(tmp_path / "local" / "model.npz")
    b = np.load(tmp_path / "emulated" / "model.npz")
    np.testing.assert_allclose(b["coef"], a["coef"], rtol=1e-10)
    traffic = json.loads((tmp_path / "emulated" / "traffic.json").read_text())
    assert traffic["node_of_rank"] == [0, 0, 1, 1]  # two hosts, as MPI sees them
    # MPI traffic crossed the emulated links (root-side veth counters), not loopback.
    assert after - before >= traffic["inter_node_bytes"] > 0


@needs_root
def test_status_and_two_tier_shaping(tmp_path):
    name = "dlru"
    try:
        r = cli(
            "up",
            "--hosts",
            "4",
            "--topology",
            "two-tier",
            "--rate",
            "200mbit",
            "--name",
            name,
            "--subnet",
            "198.18.7.0/24",
        )
        assert r.returncode == 0, r.stderr
        out = cli("status", "--name", name).stdout
        assert "4 hosts, two-tier" in out and "uplinks 100mbit" in out
        assert out.count("leaf 0") == 2 and out.count("leaf 1") == 2
        assert f"{name}-l0u root refcnt" in out and "rate 100Mbit" in out  # the slow uplinks
        assert f"{name}-h3 root refcnt" in out and "rate 200Mbit" in out
        assert cli("up", "--name", name, "--subnet", "198.18.7.0/24").returncode == 2
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_root
def test_delay_needs_netem_and_a_failed_up_leaves_nothing():
    name = "dlrv"
    r = cli("up", "--hosts", "2", "--delay", "5", "--name", name, "--subnet", "198.18.8.0/24")
    try:
        if r.returncode == 0:  # this kernel has netem
            assert "netem" in cli("status", "--name", name).stdout
        else:
            assert "need the kernel's netem qdisc" in r.stderr
            assert "removing what was created" in r.stdout
            assert leftovers(name) == []
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_root
def test_down_cleans_up_after_a_crash():
    name = "dlrw"
    assert cli("up", "--hosts", "3", "--name", name, "--subnet", "198.18.9.0/24").returncode == 0
    shutil.rmtree(cluster.STATE_ROOT / name)  # the state is gone, as after a crash
    assert leftovers(name)
    r = cli("down", "--name", name)
    assert r.returncode == 0 and leftovers(name) == []
    assert cli("down", "--name", name).returncode == 0  # twice is fine


@needs_root
def test_run_without_a_cluster_says_so():
    r = cli("run", "--name", "dlrnone", "--", "train")
    assert r.returncode == 2 and "is not up" in r.stderr


@needs_root
@pytest.mark.parametrize(
    "args, message",
    [
        (["--loss", "200"], "--loss: expected a percentage in [0, 100], got 200.0"),
        (["--delay", "-1"], "--delay: expected milliseconds >= 0"),
        (["--hosts", "0"], "--hosts: expected 1.."),
        (["--topology", "two-tier", "--hosts", "3", "--leaves", "5"], "--leaves: expected 2..3"),
        (["--rate", "fast"], "--rate: expected a rate such as 100mbit"),
    ],
)
def test_bad_cluster_arguments_build_nothing(args, message):
    r = cli("up", "--name", "dlrbad", "--subnet", "198.18.11.0/24", *args)
    assert r.returncode == 2 and message in r.stderr
    assert leftovers("dlrbad") == []
