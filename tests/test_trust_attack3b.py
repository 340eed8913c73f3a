"""The third attack on issue 29's surfaces: bench, model, cluster and the packet engine.

Each case was a traceback, an abort or an unphysical number with exit 0 (D24-D40 of the
attack's findings, those outside ``report``); each is now one line naming the option, key
and value, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from dist_logreg.errors import UsageError
from tests.helpers import run_mpi

NS3 = all(importlib.util.find_spec(m) is not None for m in ("ns", "cppyy"))


def _sweep_args(**given):
    base = dict(allreduce="mpi", min_bytes=8, max_bytes=64, factor=2, iters=50, warmup=1)
    base.update(given)
    return argparse.Namespace(**base, tag=None, ranks_per_node=None)


def test_bench_counts_every_rank_of_this_machine(monkeypatch):
    """D25: the memory check compared one rank's buffers with the machine's memory; eight
    ranks of one machine each hold a send, a receive and a reference buffer at once."""
    from dist_logreg.bench import sweep

    monkeypatch.setattr(sweep, "available_memory", lambda: 16 << 30)
    args = _sweep_args(max_bytes=1 << 30)  # 3 GiB a rank, 24 GiB for eight
    with pytest.raises(UsageError, match=r"--max-bytes 1073741824: .* x 8 rank\(s\)"):
        sweep.check_args(args, 8)
    sweep.check_args(args, 4)  # 12 GiB of 16: fits


@pytest.mark.skipif(not shutil.which("prlimit"), reason="needs prlimit")
@pytest.mark.parametrize("n", [2, 3])
def test_p2p_under_an_address_space_cap_is_one_line(tmp_path, n):
    """D25: `prlimit --as=4G mpirun -n 2 ... bench --p2p bw` with the default 64 x 64 MiB
    window: MemoryError tracebacks on every rank after 55 s; refused now before allocating."""
    cmd = ["prlimit", "--as=4294967296", sys.executable, "-m", "dist_logreg", "bench"]
    r = run_mpi(n, [*cmd, "--p2p", "bw", "--iters", "2", "--warmup", "1"], 120, tmp_path)
    assert r.returncode == 2, r.stderr[-800:]
    assert "Traceback" not in r.stderr
    assert "--window 64 x --max-bytes 67108864" in r.stderr
    assert "address-space limit" in r.stderr
    assert os.listdir(tmp_path) == []


def test_p2p_window_is_bounded_by_what_mpi_can_post(monkeypatch):
    """D26: `--window 10000000 --max-bytes 8` passed the buffer estimate (80 MB) and
    ended in MPI_ERR_INTERN; a window of at most 4096 messages now."""
    from dist_logreg.bench import pairs, sweep

    monkeypatch.setattr(sweep, "available_memory", lambda: 64 << 30)
    args = argparse.Namespace(p2p="bw", pairs="0:1", window=100_000, max_bytes=8)
    with pytest.raises(UsageError, match="--window: expected at most 4096 .* got 100000"):
        pairs.check_args(args, 2)
    pairs.check_args(argparse.Namespace(**{**vars(args), "window": 4096}), 2)


def test_p2p_window_counts_each_posted_message(monkeypatch):
    """D26: 10^7 one-byte messages are 10^7 numpy arrays and MPI requests, not 80 MB."""
    from dist_logreg.bench import pairs, sweep

    monkeypatch.setattr(sweep, "available_memory", lambda: 16 << 30)
    args = argparse.Namespace(p2p="bw", pairs="0:1", window=10_000_000, max_bytes=8)
    with pytest.raises(UsageError, match="--window 10000000 x --max-bytes 8: .*GiB"):
        pairs.check_args(args, 2, 2)


@pytest.mark.parametrize("iters, repeats", [(99_999_999_999, 1), (10_000_000, 2)])
def test_bench_iters_are_bounded(iters, repeats):
    """D27: `--iters 99999999999` allocated a 745 GiB array of timings (MemoryError)."""
    from dist_logreg.bench import sweep

    args = _sweep_args(iters=iters, repeats=repeats)
    with pytest.raises(UsageError, match=f"--iters {iters} x --repeats {repeats}: expected at"):
        sweep.check_args(args)
    sweep.check_args(_sweep_args(iters=10_000_000))


class _FakePairComm:
    """Rank 0 of two, whose peer allocated its buffers."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def Barrier(self):
        pass

    def bcast(self, obj, root=0):
        return obj

    def sendrecv(self, obj, dest, sendtag=0, recvbuf=None, source=0, recvtag=0):
        return 1


def test_p2p_out_of_memory_is_one_line_on_every_rank(monkeypatch):
    """D25: where an allocation still fails (memory taken by another program), both ranks
    of the pair learn it and every rank raises the same one-line error."""
    from dist_logreg.bench import pairs

    def no_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(pairs, "_calls", no_memory)
    args = argparse.Namespace(
        p2p="bw", pairs="0:1", window=64, min_bytes=8, max_bytes=8, factor=2, warmup=1, iters=2
    )
    with pytest.raises(UsageError, match="out of memory while allocating the buffers of bw 0:1"):
        pairs.run(_FakePairComm(), args, lambda text: None)


# --- model predict (D38, D39) -------------------------------------------------------------


def _fit(tmp_path_factory, places):
    from tests.test_model_cli import dl
    from tests.test_trust_model import SIZES, records, write

    d = tmp_path_factory.mktemp("m")
    bench = write(d, records(SIZES, names=("ring",), places=places))
    out = d / "model.json"
    r = dl("model", "fit", str(bench), "--out", str(out), "--segments", "1")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def hosts_model(tmp_path_factory):
    """Fitted across hosts: 2 and 4 ranks, one per host, and 4 ranks two per host."""
    return _fit(tmp_path_factory, ((2, 1), (4, 1), (4, 2)))


@pytest.fixture(scope="module")
def one_host_model(tmp_path_factory):
    """Fitted on one host only: no inter-host links measured."""
    return _fit(tmp_path_factory, ((2, 2), (4, 4)))


def _predict(model, *args):
    from tests.test_model_cli import dl

    return dl("model", "predict", "--model", str(model), "--algorithm", "ring", *args)


@pytest.mark.parametrize(
    "args, want",
    [
        # D38: 0 bytes divided by zero in the trust check (a traceback, exit 1)
        (["--ranks", "4", "--bytes", "0"], "--bytes: expected 1 to 1099511627776 bytes"),
        (["--ranks", "4", "--bytes", "99999999999T"], "--bytes: expected 1 to 1099511627776"),
        # D38: inf time and nan% with exit 0
        (["--ranks", "4", "--bytes", "1K", "--alpha", "1e308s"], "--alpha: expected at most 100 s"),
        (
            ["--ranks", "4", "--bytes", "1K", "--topology", "two-tier", "--hosts-per-leaf", "2"]
            + ["--oversubscription", "1e308:1"],
            "--oversubscription: expected at most 1000 (0.001 to 1000), got '1e308:1'",
        ),
        (
            ["--ranks", "4", "--bytes", "1K", "--topology", "two-tier", "--hosts-per-leaf", "2"]
            + ["--oversubscription", "inf"],
            "--oversubscription: expected X:1 with X > 0",
        ),
        (["--ranks", "4", "--bytes", "1K", "--gamma", "1e300s"], "--gamma: expected at most 1 s/B"),
        (["--ranks", "4", "--bytes", "1K", "--reduce-rate", "1e-300B/s"], "--reduce-rate: expect"),
        (["--ranks", "4", "--bytes", "1K", "--link-rate", "1bit"], "--link-rate: expected at le"),
        # D39: silently ignored, now bounded
        (["--ranks", "4", "--bytes", "1K", "--link-latency", "1e308s"], "--link-latency: expec"),
        (["--ranks", "4", "--features", "999999999999999"], "--features: expected 1 to"),
    ],
)
def test_model_predict_bounds_every_input(hosts_model, args, want):
    r = _predict(hosts_model, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert want in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "inf" not in r.stdout and "nan" not in r.stdout


@pytest.mark.parametrize("flag", ["--ranks", "--ranks-per-host", "--hosts-per-leaf"])
def test_model_predict_takes_ascii_digits_only(hosts_model, flag):
    """D39: `--ranks ４` (a full-width digit) predicted 4 ranks with exit 0."""
    given = {"--ranks": "4", "--ranks-per-host": "1", "--hosts-per-leaf": "2", flag: "\uff14"}
    args = [x for kv in given.items() for x in kv] + ["--bytes", "1K", "--topology", "two-tier"]
    with pytest.raises(SystemExit) as e:  # argparse's error: usage and one line, exit 2
        _predict(hosts_model, *args)
    assert e.value.code == 2


@pytest.mark.parametrize("flag", ["--ranks", "--ranks-per-host", "--hosts-per-leaf"])
def test_model_predict_ascii_digits_message(flag, capsys):
    from dist_logreg.cli.main import main

    with pytest.raises(SystemExit):
        main(["model", "predict", "--model", "m.json", flag, "\uff14"])
    assert f"argument {flag}: expected a whole number (ASCII digits)" in capsys.readouterr().err


def test_link_latency_with_no_inter_host_fit_is_refused(one_host_model, hosts_model):
    """D39: `--link-latency` on a model fitted on one host changed nothing, silently (the
    intra-host parameters stand in for the inter-host links, and it is added to those only);
    across hosts it is added per message, as before."""
    args = ["--ranks", "4", "--bytes", "1K", "--json"]
    r = _predict(one_host_model, *args, "--link-latency", "1ms")
    assert r.returncode == 2 and "the model has no inter-host links fitted" in r.stderr
    import json

    base = json.loads(_predict(hosts_model, *args).stdout)["predictions"][0]["time_s"]
    more = _predict(hosts_model, *args, "--link-latency", "1ms")
    assert json.loads(more.stdout)["predictions"][0]["time_s"] > base + 1e-3  # 2(p-1) messages


# --- the packet engine on links too slow to connect (D32) ---------------------------------


def _simulate(*args, timeout=300):

    cmd = [sys.executable, "-m", "dist_logreg", "simulate", "--ranks", "2", "--bytes", "1K"]
    return subprocess.run(
        [*cmd, "--algorithm", "ring", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.skipif(not NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
def test_packet_run_on_8_bit_links_is_refused_before_ns3():
    """D32: at 8 bit/s a SYN takes minutes; ns-3 gave up after 6 tries (189 simulated s)
    with NS_FATAL_ERROR, an abort and every thread's backtrace, exit 133."""
    r = _simulate("--fabric", "flat:hosts=2,rate=8bit", "--engine", "packet")
    assert r.returncode == 2, r.stderr[-800:]
    (line,) = r.stderr.strip().splitlines()
    assert "--engine packet: link class host-up runs at 8 bit/s" in line
    assert "floor of 1 Mbit/s" in line and "--engine flow" in line


def test_the_floor_names_the_slowest_class_and_spares_the_flow_engine():
    from dist_logreg.sim.fabric import resolve
    from dist_logreg.sim.packet_floor import check_link_rates

    fab, _ = resolve("leaf-spine:leaves=2,spines=2,hosts-per-leaf=2,uplink-rate=500kbit")
    with pytest.raises(UsageError, match="link class leaf-up runs at 500 kbit/s"):
        check_link_rates(fab, "tcp")
    check_link_rates(resolve("flat:hosts=2,rate=1mbit")[0], "tcp")  # the floor itself runs
    r = _simulate("--fabric", "flat:hosts=2,rate=8bit")  # the flow engine: no handshake
    assert r.returncode == 0, r.stderr[-800:]


# --- cluster set under SIGINT (D31) -------------------------------------------------------


@pytest.fixture
def fake_cluster(monkeypatch):
    """``cluster set`` on a fake: ``kernel`` is what the links carry, ``saved`` what
    ``state.json`` says; applying a change sends this process SIGINT half-way."""
    import contextlib
    import signal

    from dist_logreg.ops.cluster import change
    from dist_logreg.ops.cluster.state import Cluster, Spec

    world = {"kernel": "8bit", "saved": "8bit", "fail": False}

    class Fake(Cluster):
        def save(self):
            world["saved"] = self.spec.rate

    def enact(c, ch):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the shapers are replaced
        if world["fail"] and ch is not None:
            raise OSError("tc failed")
        world["kernel"] = c.spec.rate
        return ["shaping"]

    for name in ("preflight", "check_name", "tc_dry_run"):
        monkeypatch.setattr(change, name, lambda *a, **k: None)
    monkeypatch.setattr(change, "_set_lock", lambda name: contextlib.nullcontext())
    monkeypatch.setattr(change, "load", lambda name: Fake(Spec(name="fixa", rate="8bit")))
    monkeypatch.setattr(change, "_check", lambda *a: [])
    monkeypatch.setattr(change, "running_job", lambda c: None)
    monkeypatch.setattr(change, "_enact", enact)
    monkeypatch.setattr(change.counters, "save_baseline", lambda *a: None)
    monkeypatch.setattr(change.counters, "snapshot", lambda c: None)
    return change, world


def test_sigint_during_cluster_set_finishes_and_records_the_change(fake_cluster):
    """D31: SIGINT after the shapers were replaced left tc at the new rate and state.json
    (which `cluster status` and every run's provenance read) at the old, with exit 130."""
    change, world = fake_cluster
    with pytest.raises(KeyboardInterrupt) as e:
        change.apply("fixa", change.Change(rate="100mbit"), say=lambda text: None)
    assert world["kernel"] == world["saved"] == "100mbit"
    assert "the change was finished and recorded first: rate 8bit -> 100mbit" in e.value.note


def test_sigint_and_a_failure_during_cluster_set_restore_every_link(fake_cluster):
    change, world = fake_cluster
    world["fail"] = True
    with pytest.raises(KeyboardInterrupt) as e:
        change.apply("fixa", change.Change(rate="100mbit"), say=lambda text: None)
    assert world["kernel"] == world["saved"] == "8bit"
    assert "every link was restored as it was, nothing changed" in e.value.note


@pytest.mark.parametrize("action", [["set", "--name", "fixa"], ["up", "--name", "fixa"]])
@pytest.mark.parametrize("rate", ["1bit", "7bit", "0.5bit"])
def test_cluster_rate_below_what_tc_keeps_is_one_line(action, rate, capsys):
    """D33: `cluster set --rate 1bit` printed tc's raw usage text (tbf rounds it to 0)."""
    from dist_logreg.cli.main import main

    assert main(["cluster", *action, "--rate", rate]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"dist-logreg: error: --rate: expected at least 8bit (tc's tbf counts whole bytes per "
        f"second and rounds {rate} to 0), got '{rate}'"
    )


# --- model fit interrupted after its file is whole (D40) ----------------------------------


def test_sigint_after_model_fit_wrote_its_file_is_exit_0(tmp_path, monkeypatch, capsys):
    """D40: SIGINT once model.json was renamed into place gave exit 130 ("interrupted"):
    a script reran and was refused (the file exists)."""
    import signal

    from dist_logreg import files
    from dist_logreg.cli.main import main
    from tests.test_trust_model import SIZES, records, write

    bench = write(tmp_path, records(SIZES, names=("ring",)))
    real = files.write_output

    def write_then_interrupt(*a, **k):
        real(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C just after the rename

    monkeypatch.setattr(files, "write_output", write_then_interrupt)
    out = tmp_path / "m.json"
    code = main(["model", "fit", str(bench), "--out", str(out), "--segments", "1"])
    err = capsys.readouterr().err
    assert out.is_file() and code == 0, err
    assert f"interrupted (SIGINT) after {out} was written whole; it stands, exit 0" in err


# --- a sweep under mpirun, its ranks sent SIGTERM (D24) -----------------------------------

GRID = """\
fabric = ["leaf-spine:leaves=8,spines=4,hosts-per-leaf=32"]
ranks = [64, 128, 256]
algorithm = ["ring", "rabenseifner"]
bytes = ["1M", "64M"]
seeds = 400
"""


@pytest.mark.parametrize("n", [2, 3])
def test_sweep_ranks_stop_on_sigterm_with_one_line(tmp_path, n):
    """D24: Open MPI's mpirun passes a Ctrl-C on to the ranks as SIGTERM (after SIGCONT),
    which ended them with no line. Each rank now stops as the serial sweep stops on Ctrl-C:
    rank 0's line, the finished points kept, exit 143 (128 + SIGTERM). mpirun's own status
    after a Ctrl-C stays 1 (it stops forwarding the ranks' output and exits 1 itself)."""
    from tests.helpers import signal_sweep

    status, err = signal_sweep(tmp_path, n, GRID, lambda ranks: ranks)  # every rank
    assert status == 143, err[-800:]
    assert "dist-logreg simulate: interrupted (SIGTERM); finished points kept in o" in err
    assert "Traceback" not in err


# --- simulate --flows: host names in ASCII digits (D35) -----------------------------------


@pytest.mark.parametrize(
    "key, name", [("src", "h\uff10"), ("dst", "h\u0662"), ("spine", "s\uff11")]
)
def test_flows_host_names_take_ascii_digits_only(key, name):
    """D35: `h０` (a full-width zero) was read as h0 and the flow pinned, exit 0."""
    from dist_logreg.sim.fabric import resolve
    from dist_logreg.sim.from_cluster import pinned

    fab, _ = resolve("leaf-spine:leaves=2,spines=2,hosts-per-leaf=2")
    flow = {"src": "h0", "dst": "h2", "spine": "s1", "bytes": 1000, key: name}
    doc = {"schema": "dist-logreg/flows/1", "maps": [{"flows": [flow]}]}
    with pytest.raises(UsageError, match=rf"flows\[0\]\.{key}: expected a .*got '{name}'"):
        pinned(doc, fab=fab)
    assert pinned({**doc, "maps": [{"flows": [{**flow, key: name[0] + "1"}]}]}, fab=fab)


# --- model fit of sub-nanosecond times (D29) ----------------------------------------------


def test_model_fit_refuses_times_below_a_nanosecond(tmp_path):
    """D29: records of 1e-300 s x bytes gave numpy's overflow warning, then "the measured
    times do not grow with the message size" (they grow exactly linearly)."""
    import warnings

    from tests.test_model_cli import dl
    from tests.test_trust_model import SIZES, records, write

    recs = records(SIZES, names=("ring",))
    for r in recs:
        r["time_s"] = 1e-300 * r["bytes"]
    bench = write(tmp_path, recs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw numpy warning fails the test
        r = dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "record 0: time_s: expected at least 1 ns for one call, got 1.024e-297" in r.stderr
    assert not (tmp_path / "m.json").exists()


# --- an output named by a link to a device (D37) ------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_an_output_link_to_a_device_is_refused_without_offering_force(tmp_path, force):
    """D37: `bench --out /dev/stdout` was refused with "--force replaces the link itself":
    as root that renames a file over the system's /dev/stdout."""
    from dist_logreg.files import check_output

    (tmp_path / "out.json").symlink_to("/dev/null")
    with pytest.raises(UsageError) as e:
        check_output(tmp_path / "out.json", "--out", force)
    assert "got a symbolic link to a device (/dev/null)" in str(e.value)
    assert "--force" not in str(e.value)
    with pytest.raises(UsageError, match="a symbolic link in /dev") as e:
        check_output("/dev/stdout", "--out", force)
    assert "--force" not in str(e.value)
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere")  # dangling: as before
    if force:
        check_output(tmp_path / "gone.json", "--out", force)


# --- simulate --bytes 0 (D34) -------------------------------------------------------------


def test_simulate_refuses_zero_bytes(tmp_path, capsys):
    """D34: `simulate --bytes 0 --out z0` wrote a simulate.json its own `report` refused
    (`results[0].bytes: expected a whole number of bytes from 1`)."""
    from dist_logreg.cli.main import main

    args = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--algorithm", "ring"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--bytes", "1K,0", "--out", str(tmp_path / "z0")])
    assert e.value.code == 2
    assert "argument --bytes: expected at least 1 byte per rank, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "z0").exists()


@pytest.mark.parametrize(
    "text, words",
    [
        ("1M,64K", "expected increasing sizes, each once"),  # D30: unsorted, accepted
        ("64K,64K", "expected increasing sizes, each once"),  # a duplicate boundary
        ("99999999T", "expected message sizes from 1 B to 2^50 B"),  # a segment never measured
        ("0", "expected message sizes from 1 B to 2^50 B"),
    ],
)
def test_model_fit_breakpoints_are_increasing_and_bounded(tmp_path, text, words):
    from tests.test_model_cli import dl
    from tests.test_trust_model import SIZES, records, write

    bench = write(tmp_path, records(SIZES, names=("ring",)))
    r = dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"), "--breakpoints", text)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"--breakpoints: {words}" in r.stderr
    assert not (tmp_path / "m.json").exists()
