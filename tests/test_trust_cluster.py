"""The emulated clusters against bad input and races (issue 29, sections 4 and 8): one check
of the link values against what tc and nft accept, a corrupt ``state.json``, overlapping
subnets, ``set`` all or nothing and serialised, refused under a running job, ``--mtu``.

The live tests use cluster names starting ``h4`` on subnets from 198.19.200.0/24 up, and
take their clusters down whatever happens.
"""

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.ops.cluster import STATE_ROOT, jobs, validate
from dist_logreg.ops.cluster.state import Cluster, Spec
from tests.cluster_tools import cli, leftovers, needs_root, read_json
from tests.helpers import BIN, mpi_env


def values(**kw):
    args = dict(
        rates={"--rate": "300mbit"},
        loss_pct=None,
        loss_links={},
        link_ids=["h0", "h1"],
        burst=None,
        queue=None,
        mtu=1500,
    )
    return validate.check_link_values(**{**args, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        # 1 ms of 100 Tbit/s is 12.5 GB: over tbf's 32-bit limit (it used to fail in tc
        # after one host was already shaped at the new rate)
        (dict(rates={"--rate": "100000gbit"}), "--rate 100000gbit: its default queue"),
        (dict(loss_pct=100.0), "--loss: expected a percentage below 100"),
        (dict(loss_links={"h1": 100.0}), "--loss-link h1: expected a percentage below 100"),
        (dict(queue=99999999999999), "--queue: expected at most 4294967295 bytes"),
        (dict(burst=2**32), "--burst: expected at most 4294967295 bytes"),
        (dict(burst=8000, mtu=9000), "--burst: expected at least 9014 bytes"),
    ],
)
def test_link_values_tc_or_nft_would_refuse_are_refused_first(kw, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        values(**kw)


def test_the_shapers_to_try_follow_the_mtu_and_the_limits():
    shapers = values(rates={"--rate": "34000gbit"}, queue=None)  # 4.25 GB: just fits
    assert all(q <= validate.TC_U32 and b <= validate.TC_U32 for _, _, b, q in shapers)
    (_, _, burst, _), *_ = values(mtu=9000)
    assert burst == 5 * 9014  # five full-size jumbo frames: a bucket must hold one frame
    with pytest.raises(UsageError, match="--mtu: expected bytes from 576 to 65535"):
        validate.check_mtu(65536)


@pytest.mark.parametrize(
    "state, message",
    [
        ({"hosts": []}, "spec: expected an object (the cluster up flags), got None"),
        ([1, 2], "(top level): expected a JSON object, got [1, 2]"),
        ({"spec": {**vars(Spec(name="h4bad")), "rate": "fastmbit"}}, "spec.rate: expected a tc"),
        ({"spec": {**vars(Spec(name="h4bad")), "hosts": "two"}}, "spec.hosts: expected a int"),
        ({"spec": vars(Spec(name="h4bad")), "links": [1]}, "links: expected a list of {id"),
        (
            {
                "spec": vars(Spec(name="h4bad")),
                "calibration": {
                    "classes": {"host": {"one_way_Gbps": float("nan"), "bidir_Gbps": 0.2}}
                },
            },
            "calibration.classes.host.one_way_Gbps: expected a number of Gbit/s > 0, got nan",
        ),
    ],
)
def test_a_corrupt_state_file_is_one_line_naming_file_key_and_value(tmp_path, state, message):
    folder = tmp_path / "h4bad"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(state))
    env = {**mpi_env(), "DIST_LOGREG_CLUSTER_STATE": str(tmp_path)}
    r = cli("status", "--name", "h4bad", env=env, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.splitlines()
    assert str(folder / "state.json") in line and message in line


def test_overlapping_subnets_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "STATE_ROOT", tmp_path)
    (tmp_path / "h4one").mkdir()
    state = {"spec": {"subnet": "198.19.200.0/24"}}
    (tmp_path / "h4one" / "state.json").write_text(json.dumps(state))
    (tmp_path / "h4junk").mkdir()
    (tmp_path / "h4junk" / "state.json").write_text("[1, 2]")  # damaged: not in the way
    assert validate.overlapping("h4two", "198.19.200.128/25") == ("h4one", "198.19.200.0/24")
    assert validate.overlapping("h4two", "198.19.0.0/16") == ("h4one", "198.19.200.0/24")
    assert validate.overlapping("h4two", "198.19.201.0/24") is None
    assert validate.overlapping("h4one", "198.19.200.0/24") is None  # itself


def test_a_cluster_run_job_is_marked_while_it_runs(tmp_path, monkeypatch):
    from dist_logreg.ops.cluster import change, state

    monkeypatch.setattr(state, "STATE_ROOT", tmp_path)
    c = Cluster(Spec(name="h4job"))
    c.state_dir.mkdir()
    assert change.running_job(c) is None
    with jobs._job_marker(c):
        job = change.running_job(c)
        assert job is not None and job["pid"] == os.getpid()
    assert change.running_job(c) is None and not (c.state_dir / "job.json").exists()


# --- live -----------------------------------------------------------------------------------


def _qdisc(dev: str, ns: str | None = None) -> str:
    pre = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run(
        [*pre, "tc", "qdisc", "show", "dev", dev], capture_output=True, text=True
    ).stdout


def _mtu(dev: str, ns: str | None = None) -> int:
    pre = ["-n", ns] if ns else []
    out = subprocess.run(
        ["ip", *pre, "-j", "link", "show", "dev", dev], capture_output=True, text=True
    ).stdout
    return json.loads(out)[0]["mtu"]


@needs_root
@pytest.mark.timeout(600)
def test_mtu_overlap_and_set_all_or_nothing_on_a_live_cluster():
    name, subnet = "h4mtu", "198.19.200.0/24"
    r = cli(
        "up",
        "--name",
        name,
        "--hosts",
        "2",
        "--rate",
        "200mbit",
        "--mtu",
        "9000",
        "--subnet",
        subnet,
    )
    try:
        assert r.returncode == 0, r.stderr
        # --mtu on every veth end and the bridge, recorded and shown
        assert _mtu("eth0", f"{name}-h0") == _mtu(f"{name}-h1") == _mtu(f"{name}-br") == 9000
        assert read_json(STATE_ROOT / name / "state.json")["spec"]["mtu"] == 9000
        assert "mtu 9000" in cli("status", "--name", name).stdout
        # `cluster status | head`: a reader gone early ends it quietly
        rd, wr = os.pipe()
        os.close(rd)
        status = [str(BIN / "dist-logreg"), "cluster", "status", "--name", name]
        p = subprocess.run(
            status, stdout=wr, stderr=subprocess.PIPE, text=True, timeout=60, env=mpi_env()
        )
        os.close(wr)
        assert p.returncode == 141 and p.stderr == "", p.stderr
        # another cluster on an overlapping subnet would break this one's routes
        r = cli("up", "--name", "h4ovl", "--hosts", "2", "--subnet", "198.19.200.128/25")
        assert r.returncode == 2 and "overlaps cluster 'h4mtu'" in r.stderr, r.stderr
        assert leftovers("h4ovl") == []
        # refused before anything is touched: tc still has the old rate everywhere
        for bad in (["--rate", "100000gbit"], ["--loss", "100"], ["--queue", "99999999999999"]):
            r = cli("set", "--name", name, *bad)
            assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
            assert "rate 200Mbit" in _qdisc(f"{name}-h0") and "rate 200Mbit" in _qdisc(
                "eth0", f"{name}-h0"
            )
        assert "rate 200mbit" in cli("status", "--name", name).stdout
        # a link changed by hand is repaired, and set says so
        subprocess.run(["tc", "qdisc", "del", "dev", f"{name}-h1", "root"], check=True)
        r = cli("set", "--name", name, "--rate", "200mbit")
        assert r.returncode == 0 and "re-applied the shaping" in r.stdout, r.stdout + r.stderr
        assert "nothing (already so)" not in r.stdout and "rate 200Mbit" in _qdisc(f"{name}-h1")
        # concurrent sets: each one applied, in some order, none lost
        n_before = len(read_json(STATE_ROOT / name / "state.json")["changes"])
        sets = (["--rate", "100mbit"], ["--burst", "20K"], ["--queue", "200K"])
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda a: cli("set", "--name", name, *a), sets))
        assert all(x.returncode == 0 for x in results), [x.stderr for x in results]
        st = read_json(STATE_ROOT / name / "state.json")
        assert (st["spec"]["rate"], st["burst"], st["queue"]) == ("100mbit", 20480, 204800)
        assert len(st["changes"]) == n_before + 3
        port = _qdisc(f"{name}-h1")
        # tc shows the limit as latency: (204800 - 20480) B at 12.5 MB/s = 14.7 ms
        assert "rate 100Mbit" in port and "burst 20Kb" in port and "lat 14.7ms" in port, port
        # a running job: refused without --force
        job = STATE_ROOT / name / "job.json"
        job.write_text(json.dumps({"pid": os.getpid(), "utc": "now"}))
        r = cli("set", "--name", name, "--rate", "150mbit")
        assert r.returncode == 2 and "a job runs on cluster 'h4mtu'" in r.stderr, r.stderr
        r = cli("set", "--name", name, "--rate", "150mbit", "--force")
        assert r.returncode == 0 and "during job" in r.stdout, r.stderr
        job.unlink()
    finally:
        cli("down", "--name", name)
        cli("down", "--name", "h4ovl")
    assert leftovers(name) == []
