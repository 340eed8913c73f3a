"""The emulated network: namespaces, links, shaping, runs across hosts, and cleanup.

These need root and iproute2 (CI has both); elsewhere they skip with the reason. Each test
uses its own cluster name and subnet and tears it down, checking nothing is left behind.
"""

import json
import shutil
import subprocess

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops import cluster
from dist_logreg.units import parse_rate
from tests.cluster_tools import cli, leftovers, needs_nft, needs_root, read_json
from tests.helpers import mpi_env, run_mpi, train_cmd

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
        cluster.up(cluster.Spec(name="dlrq", subnet="10.0.0.0/24"))
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
            assert "this kernel has no netem" in r.stderr
            assert "simulate --engine packet" in r.stderr  # where delay lives instead
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
        (["--loss-link", "h9=1"], "--loss-link: expected a link among h0, h1, got 'h9'"),
        # the default MTU is 9000: a frame is 9000 + 14 B of Ethernet header
        (["--rate", "1gbit", "--burst", "1000"], "--burst: expected at least 9014 bytes"),
        (
            ["--rate", "1gbit", "--mtu", "1500", "--burst", "1000"],
            "--burst: expected at least 1514 bytes",
        ),
        (["--hash", "l3"], "--hash: only for --topology leaf-spine"),
        (["--name", "Dlr-x"], "--name: expected 1-8 lower-case letters and digits"),
        (["--topology", "leaf-spine", "--spines", "0"], "--spines: expected 1..64, got 0"),
    ],
)
def test_bad_cluster_arguments_build_nothing(args, message):
    r = cli("up", "--name", "dlrbad", "--subnet", "198.18.11.0/24", *args)
    assert r.returncode == 2 and message in r.stderr
    assert leftovers("dlrbad") == []


@needs_root
def test_every_message_size_is_shaped(tmp_path):
    """A 64 KiB allreduce takes at least the wire's time (a 1.25 MB bucket let it through
    7x faster than a "1 Gbit/s" link allows)."""
    name = "dlrs"
    try:
        r = cli(
            "up", "--hosts", "2", "--rate", "100mbit", "--name", name, "--subnet", "198.18.12.0/24"
        )
        assert r.returncode == 0, r.stderr
        out = tmp_path / "b.json"
        size = ["--min-bytes", "64K", "--max-bytes", "64K"]
        r = cli(
            "run",
            "--name",
            name,
            "--",
            "bench",
            "--allreduce",
            "ring",
            *size,
            "--iters",
            "20",
            "--warmup",
            "3",
            "--out",
            str(out),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        (rec,) = read_json(out)["records"]
        # Ring at 2 ranks: each host sends the whole 64 KiB over its 100 Mbit/s link.
        wire = 65536 * 8 / 100e6
        assert rec["time_s"] >= 0.85 * wire, (rec["time_s"], wire)
        links = read_json(tmp_path / "b.links.json")
        assert {row["id"] for row in links["links"]} == {"h0", "h1"}
        sent = links["links"][0]["directions"]["h0>br"]["bytes"]
        assert sent >= 23 * 65536  # 23 calls of 64 KiB left host 0 (plus headers)
        # The other end: a 4 MiB stream is not faster than the wire either, and the shaper
        # has not collapsed (a generous bound: the machine running CI is shared).
        big = tmp_path / "big.json"
        r = cli(
            "run",
            "--name",
            name,
            "--",
            "bench",
            "--allreduce",
            "ring",
            "--min-bytes",
            "4M",
            "--max-bytes",
            "4M",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--out",
            str(big),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        (rec,) = read_json(big)["records"]
        wire = (4 << 20) * 8 / 100e6
        assert 0.95 * wire <= rec["time_s"] <= 4 * wire, (rec["time_s"], wire)
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_root
def test_down_removes_only_its_own_cluster():
    try:
        for name, subnet in (("dlr1", "198.18.13.0/24"), ("dlr10", "198.18.14.0/24")):
            assert cli("up", "--hosts", "1", "--name", name, "--subnet", subnet).returncode == 0
        assert cli("down", "--name", "dlr1").returncode == 0
        assert leftovers("dlr1") == []
        assert leftovers("dlr10") == ["dlr10-br", "dlr10-h0"]  # the other one is untouched
        assert "dlr10-h0" in cli("status", "--name", "dlr10").stdout
    finally:
        cli("down", "--name", "dlr1")
        cli("down", "--name", "dlr10")
    assert leftovers("dlr10") == []


@needs_root
def test_a_missing_nft_names_the_debian_package(tmp_path):
    """Without ``nft`` on PATH, leaf-spine and --loss stop before building anything."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("ip", "tc", "unshare", "sysctl"):
        (bare / tool).symlink_to(shutil.which(tool))
    env = {**mpi_env(), "PATH": str(bare)}
    for args in (["--topology", "leaf-spine", "--hosts", "2"], ["--loss", "1"]):
        r = cli("up", "--name", "dlrn", "--subnet", "198.18.15.0/24", *args, env=env)
        assert r.returncode == 2, r.stderr
        assert "`apt-get install nftables`" in r.stderr and "`nft` command" in r.stderr
        assert leftovers("dlrn") == []


@needs_nft
def test_loss_turns_into_retransmissions_next_to_the_latency_tail(tmp_path):
    name = "dlrl"
    try:
        r = cli("up", "--hosts", "2", "--loss", "2", "--name", name, "--subnet", "198.18.16.0/24")
        assert r.returncode == 0, r.stderr
        assert "loss 2.0% per link and direction" in r.stdout
        out = tmp_path / "lossy"
        r = cli(
            "run",
            "--name",
            name,
            "--",
            "train",
            "--features",
            "20000",
            "--steps",
            "10",
            "--batch-size",
            "64",
            "--samples",
            "256",
            "--out",
            str(out),
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        fabric = read_json(out / "summary.json")["fabric"]
        assert fabric["tcp_retransmitted"] > 0 and fabric["loss_pct_per_link"] == 2.0
        assert fabric["allreduce_latency_s"]["p99"] > 0
        line = next(x for x in r.stdout.splitlines() if "segments retransmitted" in x)
        assert "allreduce latency p50" in line and "p99" in line  # side by side
        dropped = sum(
            d["loss_drops"]
            for row in read_json(out / "links.json")["links"]
            for d in row["directions"].values()
        )
        assert dropped > 0
    finally:
        cli("down", "--name", name)
    assert leftovers(name) == []


@needs_root
def test_jumbo_frames_are_the_default_and_1500_is_one_option_away():
    """``cluster up`` sets its MTU on every host's interface: 9000 unless told otherwise."""
    for name, subnet, args, want in (
        ("dlrmtu", "198.18.26.0/24", [], 9000),
        ("dlrmtv", "198.18.27.0/24", ["--mtu", "1500"], 1500),
    ):
        try:
            assert (
                cli("up", "--hosts", "2", "--name", name, "--subnet", subnet, *args).returncode == 0
            )
            for host in (f"{name}-h0", f"{name}-h1"):
                r = subprocess.run(
                    ["ip", "-n", host, "-j", "link", "show", "eth0"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                assert json.loads(r.stdout)[0]["mtu"] == want
            status = cli("status", "--name", name)
            assert f"mtu {want}" in status.stdout
        finally:
            cli("down", "--name", name)
        assert leftovers(name) == []
