"""The fourth attack on issue 29, its MEDIUM defects: bench JSON records given twice or
contradicting themselves (report, model fit), ``bench --p2p`` options, ``model fit`` of a
``--p2p`` file or of a wrong allreduce, a command-line error printed once under mpirun."""

import copy
import json

import pytest

from tests.helpers import BIN, run_mpi
from tests.test_model_cli import dl
from tests.test_sim_packet import needs_ns3
from tests.test_trust_report import one_line


def _record(nbytes: int, t: float) -> dict:
    """A record as bench writes it at 2 ranks on one host (float64, 5 iterations)."""
    return {
        "collective": "allreduce",
        "algorithm": "ring",
        "bytes": nbytes,
        "count": nbytes // 8,
        "dtype": "float64",
        "time_s": t,
        "time_s_p50": t,
        "time_s_p99": t,
        "time_s_min": t,
        "time_s_max": t,
        "iters": 5,
        "repeats": 1,
        "algbw": nbytes / t / 1e9,
        "busbw": nbytes / t / 1e9,
        "busbw_factor": 1.0,
        "wrong": 0,
        "world_size": 2,
        "hosts": ["vm"],
        "host_of_rank": [0, 0],
        "reduce_s": 1e-6,
    }


def _bench(tmp_path, records) -> str:
    run = {"tag": "b", "world_size": 2, "hosts": [{"name": "vm", "ranks": [0, 1]}]}
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"run": run, "records": records}))
    return str(f)


def _sizes():
    return [_record(8 << (3 * i), 2e-5 * (i + 1)) for i in range(4)]


def test_a_consistent_bench_file_is_reported_and_fitted(tmp_path):
    f = _bench(tmp_path, _sizes())
    assert dl("report", f, "--out", str(tmp_path / "r")).returncode == 0
    r = dl("model", "fit", f, "--out", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("times", [1.0, 100.0])
def test_a_record_given_twice_is_refused_by_report_and_fit(tmp_path, times):
    # N-M2, N-M15: a copy of record 0 (its times x100, or exact) appended; the first won
    recs = _sizes()
    dup = copy.deepcopy(recs[0])
    for k in ("time_s", "time_s_p50", "time_s_p99", "time_s_min", "time_s_max"):
        dup[k] *= times
    dup["algbw"] /= times
    dup["busbw"] /= times
    f = _bench(tmp_path, [*recs, dup])
    line = one_line(dl("report", f, "--out", str(tmp_path / "r")))
    assert "record 4: ring at 8 B given twice (records 0 and 4)" in line, line
    line = one_line(dl("model", "fit", f, "--out", str(tmp_path / "m.json")))
    assert "record 4: ring at 8 B given twice (records 0 and 4)" in line, line


@pytest.mark.parametrize(
    "key, value",
    [
        ("world_size", 64),  # the run block says 2
        ("host_of_rank", [0]),  # one host for two ranks
        ("host_of_rank", [0, 3]),  # a host the record does not list
        ("count", 999),  # 999 float64 are not 8 B
        ("iters", 0),  # times of no call
        ("reduce_s", 1.0),  # a 1 s local sum inside a 20 us allreduce of the same buffer
    ],
)
def test_a_record_that_contradicts_itself_is_refused(tmp_path, key, value):
    # N-M3: each was drawn as if whole, exit 0
    recs = _sizes()
    recs[0][key] = value
    line = one_line(dl("report", _bench(tmp_path, recs), "--out", str(tmp_path / "r")))
    assert f"record 0: {key}: expected" in line and "contradicts itself" in line, line
    assert not (tmp_path / "r").exists()


def test_model_fit_refuses_a_wrong_allreduce(tmp_path):
    # N-M15: wrong 5 was fitted as a measurement
    recs = _sizes()
    recs[0]["wrong"] = 5
    line = one_line(dl("model", "fit", _bench(tmp_path, recs), "--out", str(tmp_path / "m")))
    assert "record 0: wrong: 5 elements differ from the exact result" in line, line


def test_a_refused_fit_leaves_no_out_folder(tmp_path):
    # the folders of --out were made by the output check, then the fit refused
    recs = _sizes()
    recs[0]["wrong"] = 5
    out = tmp_path / "new" / "deeper" / "m.json"
    one_line(dl("model", "fit", _bench(tmp_path, recs), "--out", str(out)))
    assert not (tmp_path / "new").exists()


def test_model_fit_names_a_p2p_file(tmp_path):
    # N-M6: "record 0: missing algorithm, world_size" for bench's own --p2p output
    rec = {"p2p": "latency", "pair": [0, 1], "bytes": 8, "time_s": 1e-6, "iters": 5}
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"run": {"tag": "p"}, "records": [rec]}))
    line = one_line(dl("model", "fit", str(f), "--out", str(tmp_path / "m.json")))
    assert "a bench --p2p file" in line and "model fit reads collective records" in line, line


BENCH = [str(BIN / "dist-logreg"), "bench", "--iters", "3", "--warmup", "1"]


@pytest.mark.parametrize(
    "args, want",
    [
        (["--p2p", "latency", "--max-bytes", "1K", "--pairs", "\uff10:1"], "--pairs: expected"),
        (["--p2p", "", "--max-bytes", "1K"], "--p2p: expected a comma list"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bench_options_refused_once(args, want):
    # N-M4: a full-width 0 was rank 0; N-M5: --p2p "" ran the allreduce sweep; and an
    # argparse error was printed by every rank
    r = run_mpi(2, BENCH + args, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dist-logreg: error:")]
    assert len(lines) == 1 and want in lines[0], r.stderr


def test_a_genuine_bench_with_sizes_that_round_together_is_reported(tmp_path):
    # --min-bytes 1 at float64: 1, 2, 4 and 8 B are all one element, measured once now
    out = tmp_path / "b.json"
    args = ["--min-bytes", "1", "--max-bytes", "64", "--out", str(out)]
    r = run_mpi(2, BENCH + args, timeout=120)
    assert r.returncode == 0, r.stderr
    recs = json.loads(out.read_text())["records"]
    for name in {rec["algorithm"] for rec in recs}:
        sizes = [rec["bytes"] for rec in recs if rec["algorithm"] == name]
        assert sizes == [8, 16, 32, 64], (name, sizes)
    assert dl("report", str(out), "--out", str(tmp_path / "r")).returncode == 0
    fit = dl("model", "fit", str(out), "--out", str(tmp_path / "m.json"))
    assert "given twice" not in fit.stderr  # (tiny sizes may not grow: the fit may refuse)


@pytest.fixture
def fitted(tmp_path):
    f = _bench(tmp_path, _sizes())
    assert dl("model", "fit", f, "--out", str(tmp_path / "m.json")).returncode == 0
    return str(tmp_path / "m.json")


@pytest.mark.parametrize(
    "args, want",
    [
        (["--features", "10", "--bytes", "1K"], "--bytes: not read with --features"),
        (["--bytes", "1M", "--hosts-per-leaf", "2"], "--hosts-per-leaf: only read with --topology"),
        (["--bytes", "1M", "--oversubscription", "2:1"], "--oversubscription: only read with"),
        (["--bytes", "1K", "--scaling", "weak"], "--scaling: only read with --run"),
        (["--bytes", "1K", "--dtype", "float32"], "--dtype: only read with --features"),
        (["--run", "r", "--bytes", "1K"], "--bytes: not read with --run"),
    ],
)
def test_model_predict_refuses_options_it_would_not_read(fitted, args, want):
    # N-M16: each was dropped silently, one prediction printed
    line = one_line(dl("model", "predict", "--model", fitted, "--ranks", "4", *args))
    assert want in line, line


def test_model_predict_of_a_bench_json_says_fit_it_first(tmp_path):
    # N-M16: a raw dict repr of the bench file's run block
    f = _bench(tmp_path, _sizes())
    line = one_line(dl("model", "predict", "--model", f, "--ranks", "4", "--bytes", "1K"))
    assert "a bench JSON" in line and "model fit" in line and "{" not in line, line


SIM = ["simulate", "--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2", "--ranks", "4"]


@pytest.fixture
def trainrun(tmp_path):
    """A train --out folder as simulate --run reads it (written by a 2-rank run)."""
    out = tmp_path / "trainrun"
    args = ["--samples", "200", "--features", "8", "--steps", "5", "--batch-size", "20"]
    r = run_mpi(2, [str(BIN / "dist-logreg"), "train", *args, "--out", str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    return str(out)


@pytest.mark.parametrize(
    "extra, want",
    [
        (["--bytes", "1M"], "--bytes: not read with --run"),
        (["--workload", "params=1e6"], "--workload and --run: give one"),
    ],
)
def test_simulate_run_refuses_what_it_would_drop(trainrun, extra, want):
    # N-M9: --bytes was ignored; --workload replaced the run's measured compute
    line = one_line(dl(*SIM, "--algorithm", "ring", "--run", trainrun, *extra))
    assert want in line, line
    assert dl(*SIM, "--algorithm", "ring", "--run", trainrun).returncode == 0


def _grid(tmp_path, text):
    g = tmp_path / "grid.toml"
    g.write_text('fabric = "flat:hosts=4"\nranks = [2, 4]\nbytes = ["1K", "1M"]\n' + text)
    return str(g)


@pytest.mark.parametrize(
    "extra, want",
    [
        (["--ranks", "3"], "--ranks: also set in"),
        (["--fabric", "flat:hosts=8"], "--fabric: also set in"),
        (["--bytes", "64K"], "--bytes: also set in"),
    ],
)
def test_sweep_refuses_an_option_given_in_both_places(tmp_path, extra, want):
    # N-M10: the command line's value was dropped silently
    grid = _grid(tmp_path, 'algorithm = "ring"\n')
    line = one_line(dl("simulate", "--sweep", grid, *extra))
    assert want in line and "grid.toml" in line, line
    assert dl("simulate", "--sweep", grid, "--placement", "spread").returncode == 0


def test_sweep_with_run_refuses_a_bytes_axis(tmp_path, trainrun):
    # N-M10: 8 points printed in identical pairs, every one the run's 88 B
    line = one_line(dl("simulate", "--sweep", _grid(tmp_path, ""), "--run", trainrun))
    assert "bytes: not read with --run" in line, line


def test_sweep_checks_every_point_before_the_first_runs(tmp_path):
    # N-M17: point 1's conflict was found after point 0 ran; and --out was left holding
    # a simulate.json.partial (the folder made before the points were checked)
    grid = _grid(tmp_path, 'algorithm = "ring"\nscenario = ["none", "neighbour:ranks=2"]\n')
    r = dl("simulate", "--sweep", grid, "--out", str(tmp_path / "o"))
    line = one_line(r)
    assert "point 1 " in line and "add --exact" in line, line
    assert "8 points" not in r.stdout + r.stderr  # refused before the sweep's announcement
    assert not (tmp_path / "o").exists()


def test_a_refused_run_leaves_no_out_folder(tmp_path):
    # the --out folder was made by the output check, then the run refused
    args = ["--bytes", "1K", "--algorithm", "ring", "--scenario", "neighbour:ranks=2"]
    one_line(dl(*SIM, *args, "--out", str(tmp_path / "o" / "deep")))
    assert not (tmp_path / "o").exists()
    r = dl(*SIM, "--bytes", "1K", "--algorithm", "ring", "--out", str(tmp_path / "o" / "deep"))
    assert r.returncode == 0 and (tmp_path / "o" / "deep" / "simulate.json").is_file()


def test_exact_memory_counts_a_neighbours_messages(monkeypatch):
    # a ring allreduce at p ranks: 2(p-1) steps of p messages, 24 at 4 ranks; a limit of 30
    # messages holds the job alone, not with a neighbour's 24 more in the same graph
    from dist_logreg.sim import exact

    monkeypatch.setattr(exact, "memory_limit", lambda: 30 * exact.BYTES_PER_MESSAGE)
    base = ["simulate", "--fabric", "flat:hosts=8", "--ranks", "4", "--bytes", "1K"]
    base += ["--algorithm", "ring", "--exact"]
    assert dl(*base).returncode == 0
    line = one_line(dl(*base, "--scenario", "neighbour:ranks=4"))
    assert "48 messages" in line and "neighbour" in line, line


@pytest.mark.parametrize("pct, refused", [(1e-300, True), (4e-5, True), (1e-4, False), (0, False)])
def test_cluster_loss_below_what_nft_drops_is_refused(pct, refused):
    # `cluster set --loss 1e-300` was recorded as loss while nft's rule (in parts per
    # million) dropped nothing; 1 ppm is 1e-4 %. Only the validator: no cluster is made.
    from dist_logreg.errors import UsageError
    from dist_logreg.ops.cluster import validate

    def check():
        values = {"rates": {}, "loss_pct": None, "loss_links": {"h0": pct}, "mtu": 1500}
        return validate.check_link_values(**values, link_ids=["h0"], burst=None, queue=None)

    if not refused:
        assert check() == []
        return
    with pytest.raises(UsageError, match=r"--loss-link h0: expected 0 \(no loss\) or at least"):
        check()


@needs_ns3
def test_report_links_the_packet_plots_and_counts(tmp_path):
    # N-M18: packet-queues.png and packet-messages.png were drawn, linked nowhere, and no
    # packet count was in the tables
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1K", "--algorithm", "ring"]
    r = dl("simulate", *args, "--engine", "packet", "--out", str(tmp_path / "pk"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert dl("report", str(tmp_path / "pk"), "--out", str(tmp_path / "r")).returncode == 0
    md = (tmp_path / "r" / "report.md").read_text()
    html = (tmp_path / "r" / "report.html").read_text()
    images = json.loads((tmp_path / "r" / "report.json").read_text())["images"]
    for name in ("packet-queues.png", "packet-messages.png"):
        assert name in md and name in images and (tmp_path / "r" / name).is_file()
    assert html.count("data:image/png") == len(images)
    assert "counts per row" in md and "ring 1 KiB" in md


@needs_ns3  # without ns-3 the run is refused first, naming the packet extra
def test_a_long_packet_run_is_announced_before_ns3_loads(monkeypatch):
    # N-M20: a packet run of minutes printed nothing until it ended (at 1024 hosts, nothing
    # within 120 s); the estimate is said before the run (here: with the threshold at 0 and
    # the run itself replaced, so that ns-3 never loads)
    from dist_logreg.cli import simulate_run

    def stop(*args, **kwargs):
        raise simulate_run.UsageError("stopped where ns-3 would load")

    monkeypatch.setattr(simulate_run, "PACKET_ANNOUNCE_S", 0.0)
    monkeypatch.setattr(simulate_run, "sweep", stop)
    args = ["--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "1K", "--algorithm", "ring"]
    r = dl("simulate", *args, "--engine", "packet")
    lines = r.stderr.strip().splitlines()
    assert "--engine packet: about" in lines[0] and "before ns-3 loads" in lines[0], r.stderr
    assert "stopped where ns-3 would load" in lines[-1]


PACKET = ["simulate", "--fabric", "flat:hosts=4", "--ranks", "4", "--bytes", "64K"]
PACKET += ["--algorithm", "ring", "--engine", "packet"]


@pytest.mark.parametrize(
    "extra, want",
    [
        # N-M7: 1 B of shared buffer ran 24 s of ns-3, then blamed loss
        (["--buffer", "1"], "--buffer: expected 0 (off: each port its --queue) or at least 6000"),
        (["--buffer", "12K", "--buffer-alpha", "0.25"], "at least 15000 bytes"),
        # N-M8: an option that tunes one switched off
        (["--buffer-alpha", "5"], "--buffer-alpha: only read with --buffer"),
        (["--transport", "roce", "--pfc-xoff", "1K"], "--pfc-xoff: only read with --pfc on"),
        (["--pfc-headroom", "9K"], "--pfc-headroom: only read with --pfc on"),
        (["--pfc", "on", "--pfc-xoff", "0"], "--pfc-xoff: expected more than --pfc-xon's default"),
    ],
)
def test_packet_options_without_effect_or_below_a_packet_are_refused(extra, want):
    # refused before ns-3 loads (one line, in well under a second of the parse)
    line = one_line(dl(*PACKET, *extra))
    assert want in line, line


def test_packet_options_that_tune_what_is_on_are_read():
    from dist_logreg.sim import packet_options

    o = packet_options.parse_options({"buffer": "12M", "buffer_alpha": "0.125"})
    assert (o.buffer, o.buffer_alpha) == (12 << 20, 0.125)
    o = packet_options.parse_options({"pfc": "on", "pfc_xoff": "128K"})
    assert (o.pfc_xoff, o.pfc_xon) == (128 << 10, 32 << 10)
