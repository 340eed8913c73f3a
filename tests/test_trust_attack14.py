"""Defects of issue 29's fourteenth attack (P-...), each a test that failed before its fix."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import BIN, WORLD_SIZES, interrupt_sweep, mpi_env, run_mpi, train_cmd
from tests.test_model_cli import dl

#: 30 steps of one 152 B allreduce at 2 ranks, 30 us of compute a step (simulate --run reads it)
SUMMARY = {
    "steps": 30,
    "world_size": 2,
    "allreduce": {"calls": 30, "bytes": 30 * 152, "algorithm": "ring"},
    "time_s": {"compute": 30 * 3e-5},
}


def _grid(tmp_path, kind: str) -> str:
    if kind == "run":
        for name in ("t1", "t2"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "summary.json").write_text(json.dumps(SUMMARY))
        return f'run = ["{tmp_path / "t1"}", "{tmp_path / "t2"}"]\nranks = [2, 4]\n'
    if kind == "scenario":  # P-H6: a point of scenario none alone was refused its slowdown
        return 'ranks = [2, 4]\nbytes = "64K"\nscenario = ["none", "background:fraction=0.25"]\n'
    w = "params=1e6,dtype=bf16,buckets=256K,forward=1ms,backward=2ms"
    return f'workload = ["{w}", "{w},sync=sharded"]\nranks = [2, 4]\nexact = true\n'


@pytest.mark.parametrize("kind", ["workload", "run", "scenario"])
def test_an_interrupted_sweep_resumes(tmp_path, monkeypatch, kind):
    """P-H2: ``--resume`` of a ``--workload`` or ``--run`` sweep: ``TypeError: 'NoneType'
    object is not iterable`` (no --bytes to hold the rows to), the points never resumable.
    P-H6: a sweep with ``scenario = ["none", ...]``: its own partial file refused
    ("results[0].slowdown: expected ... (1), got None"): a slowdown only the whole sweep has."""
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    grid.write_text('fabric = "flat:hosts=4"\nalgorithm = "ring"\n' + _grid(tmp_path, kind))
    interrupt_sweep(monkeypatch, ["--sweep", str(grid), "--out", str(out)], 2)
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "simulate.json").read_text())
    assert sorted({row["point"] for row in doc["results"]}) == [0, 1, 2, 3]
    assert dl("report", str(out), "--out", str(tmp_path / "rep")).returncode == 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
@pytest.mark.parametrize(
    "name, target", [("trace.json", "file"), ("trace.json", "dangling"), ("checkpoints", "folder")]
)
def test_train_never_writes_through_a_link_at_trace_or_checkpoints(tmp_path, n, name, target):
    """P-H3: ``--trace`` wrote trace.json through a link in ``--out`` (the file it named
    overwritten, or one created outside ``--out``), and checkpoints went into (and old
    ones were deleted from) the folder a link at ``--out/checkpoints`` named. Refused
    before training, on every rank; what the link names untouched."""
    out, victim = tmp_path / "o", tmp_path / "victim"
    out.mkdir()
    if target == "file":
        victim.write_text("ORIG\n")
    elif target == "folder":
        victim.mkdir()
    (out / name).symlink_to(victim)
    args = ["--samples", "500", "--features", "4", "--batch-size", "32", "--steps", "20"]
    args += ["--trace", "--checkpoint-every", "5", "--out", str(out)]
    r = run_mpi(n, train_cmd(*args), timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    kind = "a folder" if name == "checkpoints" else "a regular file"
    linked = f"--out {out}: {name}: expected {kind} (or none), got a symbolic link"
    held = f"--out {out}: holds another run's results (trace.json)"  # a link to a file: a result
    assert (held if target == "file" else linked) in r.stderr
    if target == "file":
        assert victim.read_text() == "ORIG\n"
    elif target == "folder":
        assert list(victim.iterdir()) == []
    else:
        assert not victim.exists()


def test_trace_json_is_written_whole_by_rename(tmp_path):
    """The trace goes to a temporary file renamed over its name: never through a link."""
    from dist_logreg.record.trace import write_trace

    victim = tmp_path / "victim"
    victim.write_text("ORIG\n")
    (tmp_path / "trace.json").symlink_to(victim)
    write_trace(tmp_path / "trace.json", [], "ring", False)
    assert victim.read_text() == "ORIG\n" and not (tmp_path / "trace.json").is_symlink()


@pytest.mark.parametrize(
    "cmd, words",
    [
        (
            ["train", "--steps", "١٢"],
            "argument --steps: expected a whole number (ASCII digits), got '١٢'",
        ),
        (["train", "--steps", "1_0"], "argument --steps: expected a whole number (ASCII digits)"),
        (["train", "--batch-size", "٦٤"], "argument --batch-size: expected a whole number"),
        (["train", "--lr", "٠.٥"], "argument --lr: expected a number (ASCII decimal"),
        (["train", "--l2", "1_0e-4"], "argument --l2: expected a number (ASCII decimal"),
        (["bench", "--iters", "٥"], "argument --iters: expected a whole number (ASCII digits)"),
        (["supervise", "--restarts", "٣", "--", "true"], "argument --restarts: expected a whole"),
    ],
)
def test_numbers_on_the_command_line_are_ascii(tmp_path, cmd, words):
    """P-M1: ``train --steps ١٢`` trained 12 steps, exit 0 (Python's int() and float() take
    any script's digits and underscores), against docs/bad-input.md's M-M4 row."""
    out = [] if cmd[0] == "supervise" else ["--out", str(tmp_path / "o")]
    r = subprocess.run(
        [str(BIN / "dist-logreg"), *cmd[:3], *out, *cmd[3:]],
        capture_output=True,
        text=True,
        timeout=120,
        env=mpi_env(),
    )
    assert r.returncode == 2 and words in r.stderr, r.stderr[-1000:]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", ["--queue-samples", "--ack-every", "--dcqcn-stages"])
def test_the_packet_engines_counts_are_ascii(flag):
    """P-M1: ``--queue-samples ٥``, ``--ack-every ٥``, ``--dcqcn-stages ٣`` were taken."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim import options as o

    for text in ("٥", "1_0", "5.0"):
        with pytest.raises(UsageError, match=f"{flag}: expected a whole number"):
            o.count(text, flag)
    assert o.count("5", flag) == 5 and o.count(7, flag) == 7


def test_a_buffers_alpha_is_ascii():
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.packet_options import _alpha

    with pytest.raises(UsageError, match="--buffer-alpha: expected a number above 0"):
        _alpha("٠.٥", "--buffer-alpha")
    assert _alpha("0.5", "--buffer-alpha") == 0.5


@pytest.mark.parametrize(
    "value, words", [(-5, "from 1 to"), (0.03, "from 1 to"), (3, "expected world_size 2, got 3")]
)
def test_a_runs_provenance_world_size_is_its_own(tmp_path, value, words):
    """P-H5: ``run.world_size`` -5 (or 0.03, 1e300, 300) was printed in "Where each run came
    from" beside a 2-rank run, exit 0; the genuine one is accepted."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r", p=2, late_rank=1)
    s = json.loads((run / "summary.json").read_text())
    s.setdefault("run", {})["world_size"] = 2
    (run / "summary.json").write_text(json.dumps(s))
    assert dl("report", str(run), "--out", str(tmp_path / "ok")).returncode == 0
    s["run"]["world_size"] = value
    (run / "summary.json").write_text(json.dumps(s))
    r = dl("report", str(run), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "summary.json: run.world_size: expected" in r.stderr
    assert words in r.stderr


@pytest.mark.parametrize(
    "other, key",
    [
        (["--placement", "random", "--placement-seed", "5"], "scenario"),  # no scenario
        (["--scenario", "degrade:factor=10,class=host-up"], "placement.mode"),  # packed
        (
            ["--scenario", "degrade:factor=10,class=host-up", "--placement", "random"],
            "placement.placement_seed",
        ),
    ],
)
def test_resume_refuses_a_point_of_another_setting(tmp_path, monkeypatch, other, key):
    """P-H7: a point of no scenario spliced into a sweep whose every point degrades its host
    links 10x wrote a row 10x faster than its links (48 GB/s on 5 GB/s), exit 0: only the
    axes that vary were compared. The setting every point shares is compared too."""
    fab = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4"
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    grid.write_text(
        f'fabric = "{fab}"\nranks = [4, 8]\nbytes = "64K"\nalgorithm = "ring"\n'
        'scenario = "degrade:factor=10,class=host-up"\nplacement = "random"\n'
        "placement-seed = 5\n"
    )
    interrupt_sweep(monkeypatch, ["--sweep", str(grid), "--out", str(out)], 1)
    args = ["--fabric", fab, "--ranks", "4", "--bytes", "64K", "--algorithm", "ring", *other]
    assert dl("simulate", *args, "--out", str(tmp_path / "x")).returncode == 0
    doc = json.loads((tmp_path / "x" / "simulate.json").read_text())
    for r in doc["results"]:
        r.update(point=0)
    part = out / "simulate.json.partial"
    held = json.loads(part.read_text())
    held["done"]["0"] = doc
    part.write_text(json.dumps(held))
    r = dl("simulate", "--sweep", str(grid), "--out", str(out), "--resume")
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"done.0: {key}: expected grid point 0" in r.stderr
    assert not (out / "simulate.json").exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_model_fit_never_writes_over_a_bench_file_it_fits(tmp_path, force):
    """P-M3: ``model fit b.json --out b.json --force`` replaced the bench file with the
    model, exit 0. Refused with or without --force, the file untouched."""
    from tests.fake_runs import write_bench

    bench = write_bench(tmp_path / "b.json")
    before = bench.read_bytes()
    r = dl("model", "fit", str(bench), "--out", str(bench), *force)
    assert r.returncode == 2 and f"--out {bench}: a bench file it fits ({bench})" in r.stderr
    assert bench.read_bytes() == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_simulate_refuses_a_training_runs_folder(tmp_path, force):
    """P-M2: ``simulate --out RUN`` wrote simulate.json beside a training run's results, and
    ``report RUN`` then showed only the training run, without a word."""
    from tests.fake_runs import write_train_run

    run = write_train_run(tmp_path / "r")
    r = dl("simulate", "--fabric", "flat:hosts=4", "--ranks", "2", "--out", str(run), *force)
    assert r.returncode == 2 and "holds a training run's results (summary.json" in r.stderr
    assert not (run / "simulate.json").exists()


@pytest.mark.parametrize(
    "value, sizes",
    [("1234", [1234]), ("1M+4M", [1 << 20, 4 << 20]), (["64000", 100], [64000, 100])],
)
def test_bucket_sizes_are_read_whole(value, sizes):
    """P-H8: ``bucket-sizes=1234`` was read character by character: buckets of 1, 2, 3 and
    4 B (10 B of gradient), exit 0."""
    from dist_logreg.sim.workload import _read

    w = _read({"forward": "1ms", "backward": "2ms", "bucket-sizes": value}, "w")
    assert w.sizes() == sizes


@pytest.mark.parametrize(
    "value, words",
    [
        ([], "expected a list of byte counts"),
        ("0+100", "expected buckets of at least 1 byte"),
        ([0, 100], "expected buckets of at least 1 byte"),
    ],
)
def test_bad_bucket_sizes_are_one_line(value, words):
    """P-H8, P-L2: a bucket of 0 B was a row of 0 B; an empty list said "None parameters"."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim.workload import _read

    with pytest.raises(UsageError, match=f"--workload w: bucket-sizes: {words}"):
        _read({"forward": "1ms", "backward": "2ms", "bucket-sizes": value}, "w")


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A genuine 2-rank run: 40 steps of one 88 B allreduce."""
    out = tmp_path_factory.mktemp("t") / "t1"
    run = ["--samples", "2000", "--features", "8", "--batch-size", "64", "--steps", "40"]
    r = run_mpi(2, train_cmd(*run, "--out", str(out)), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _jsonl_edit(run, tmp_path, name, line, key, value):
    import shutil

    copy = shutil.copytree(run, tmp_path / "copy")
    rows = (copy / name).read_text().splitlines()
    rec = json.loads(rows[line])
    rec[key] = value
    rows[line] = json.dumps(rec)
    (copy / name).write_text("\n".join(rows) + "\n")
    return dl("report", str(copy), "--out", str(tmp_path / "o"))


@pytest.mark.parametrize(
    "name, key, value, words",
    [
        ("metrics.jsonl", "seconds", 1e5, "seconds: expected at most"),
        ("metrics.jsonl", "seconds", 0.5, "summary.json allreduce.latency_s.max"),
        ("metrics.jsonl", "start_aligned_s", -1e5, "start_aligned_s: expected within the run"),
        ("steps.jsonl", "comm_s", 0.5, "time_s_per_rank.comm.max"),
        ("steps.jsonl", "compute_s", 0.5, "time_s_per_rank.compute.max"),
    ],
)
def test_a_runs_rows_are_held_to_its_summary_phase_by_phase(
    train_run, tmp_path, name, key, value, words
):
    """P-H9: a call of 1e5 s (28 hours) in a run of milliseconds, and a step whose comm phase
    alone was twice its rank's whole comm, were drawn, exit 0. The genuine run reports."""
    assert dl("report", str(train_run), "--out", str(tmp_path / "g")).returncode == 0
    r = _jsonl_edit(train_run, tmp_path, name, 5, key, value)
    assert r.returncode == 2, r.stdout[-500:]
    assert f"{name}: {key}: expected" in r.stderr and words in r.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_a_resumed_bucketed_run_writes_its_trace(tmp_path, n):
    """P-H10: ``train --trace --bucket-bytes N --resume`` indexed the resumed steps' arrays
    by the step number: an IndexError after the last step, the summary never written."""
    out = tmp_path / "tr"
    args = ["--samples", "2000", "--features", "16", "--batch-size", "64"]
    args += ["--checkpoint-every", "10", "--bucket-bytes", "64", "--trace", "--out", str(out)]
    assert run_mpi(n, train_cmd(*args, "--steps", "20"), timeout=120).returncode == 0
    r = run_mpi(n, train_cmd(*args, "--steps", "40", "--resume"), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["resumed_from_step"] == 20
    events = json.loads((out / "trace.json").read_text())["traceEvents"]
    steps = {e["args"]["step"] for e in events if e.get("name") == "compute+buckets"}
    assert steps == set(range(20, 40))


def test_a_scenarios_factor_and_scales_ranks_are_ascii():
    """P-M1 (the rest): ``straggler:factor=٢`` and ``scale --ranks ١,2`` were taken."""
    from dist_logreg.errors import UsageError
    from dist_logreg.ops.scale import parse_ranks
    from dist_logreg.sim.scenario import parse_scenario

    with pytest.raises(UsageError, match="factor: expected a number from 1 to 1e6"):
        parse_scenario("straggler:rank=1,factor=٢")
    assert parse_scenario("straggler:rank=1,factor=2").values["factor"] == 2.0
    with pytest.raises(UsageError, match="--ranks: expected increasing positive integers"):
        parse_ranks("١,2")
    assert parse_ranks("1,2,4") == [1, 2, 4]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(tmp_path, n):
    """P-M4: every checkpoint failed with a warning and the run ended 0 with none."""
    (tmp_path / "cfile").write_text("x\n")
    args = ["--samples", "500", "--features", "4", "--batch-size", "32", "--steps", "10"]
    args += ["--checkpoint-every", "5", "--checkpoint-dir", str(tmp_path / "cfile")]
    r = run_mpi(n, train_cmd(*args, "--out", str(tmp_path / "o")), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"--checkpoint-dir {tmp_path / 'cfile'}: expected a directory" in r.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", WORLD_SIZES)
def test_a_bad_val_data_is_named_as_such(tmp_path, n):
    """P-M5: ``--val-data foo.txt`` was refused as ``--data foo.txt`` (the run had none)."""
    (tmp_path / "foo.txt").write_text("")
    args = ["--samples", "200", "--features", "4", "--batch-size", "32", "--steps", "5"]
    args += ["--val-data", str(tmp_path / "foo.txt"), "--out", str(tmp_path / "o")]
    r = run_mpi(n, train_cmd(*args), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"--val-data {tmp_path / 'foo.txt'}: expected a .npz or .csv file" in r.stderr
    assert "--data" not in r.stderr.replace("--val-data", "")


def test_scale_refuses_up_front_what_train_would_refuse(tmp_path):
    """P-M7: ``scale --ranks 100000`` started mpirun -n 100000 and sat silent (train refuses
    a global batch below the world size only once all its ranks are up)."""
    from dist_logreg.errors import UsageError
    from dist_logreg.ops import scale

    train = ["train", "--samples", "500", "--features", "4", "--batch-size", "32"]
    with pytest.raises(UsageError, match="100000 ranks need a global batch of at least 100000"):
        scale.run(train, [1, 100000], "strong", tmp_path / "o", ["false"])
    assert not (tmp_path / "o").exists()


def test_divergence_advice_names_the_penalty_when_it_is_the_cause():
    """P-L3: ``--l2 1e308`` diverged with "try a smaller --lr than 0.5" only."""
    from types import SimpleNamespace

    from dist_logreg.train.step import advice

    assert advice(SimpleNamespace(lr=0.5, l2=1e308)).endswith("or a smaller --l2 than 1e+308")
    assert advice(SimpleNamespace(lr=0.5, l2=1e-4)) == "try a smaller --lr than 0.5"
