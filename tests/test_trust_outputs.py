"""No output lost, none written outside ``--out`` (issue 29, section 3).

One writer (``files.check_output`` / ``files.write_output``) for every output file: refused
before the work when the name is a directory, a FIFO, a link or (without ``--force``) an
existing file; written whole through a temporary file and a rename, never through a link.
"""

import json
import os
import subprocess
import sys

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.files import check_output, distinct_outputs, write_output


def cli(*args, timeout=120, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def one_error(result) -> str:
    errors = [x for x in result.stderr.splitlines() if x.startswith("dist-logreg")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


# --- the writer itself ---------------------------------------------------------------------


def test_writer_never_follows_a_link_at_the_final_name(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="symbolic link"):
        check_output(link, "--out")
    write_output(link, "new", "--out", force=True)  # --force replaces the link itself
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


def test_writer_refuses_an_existing_file_even_if_it_appeared_after_the_check(tmp_path):
    path = tmp_path / "b.json"
    check_output(path, "--out")  # fine: new
    path.write_text("another run's")
    with pytest.raises(UsageError, match="the file exists"):
        write_output(path, "ours", "--out")
    assert path.read_text() == "another run's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]  # no temporary left


def test_writer_refuses_directories_fifos_and_unwritable_folders(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="a directory"):
        check_output(tmp_path / "d", "--out", force=True)
    os.mkfifo(tmp_path / "f")
    with pytest.raises(UsageError, match="FIFO"):
        check_output(tmp_path / "f", "--out", force=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write there"):
        check_output(tmp_path / "file" / "x.json", "--out")


def test_two_options_naming_one_file_are_refused(tmp_path):
    with pytest.raises(UsageError, match="--csv .*the same file as --out"):
        distinct_outputs({"--out": tmp_path / "x", "--csv": tmp_path / "." / "x"})
    distinct_outputs({"--out": tmp_path / "x", "--csv": tmp_path / "y", "--other": None})


# --- bench --------------------------------------------------------------------------------


def test_bench_out_and_csv_naming_one_file_are_refused_before_the_sweep(tmp_path):
    x = tmp_path / "x"
    r = cli("bench", "--max-bytes", "64", "--out", str(x), "--csv", str(x))
    assert "the same file as --out" in one_error(r)
    assert "algbw" not in r.stdout and not x.exists()


def test_bench_csv_never_replaces_an_existing_file_without_force(tmp_path):
    csv = tmp_path / "b.csv"
    csv.write_text("earlier results\n")
    r = cli("bench", "--max-bytes", "64", "--csv", str(csv))
    assert "--csv" in one_error(r) and "the file exists" in r.stderr
    assert csv.read_text() == "earlier results\n" and "algbw" not in r.stdout
    r = cli("bench", "--max-bytes", "64", "--csv", str(csv), "--force")
    assert r.returncode == 0, r.stderr
    assert csv.read_text().startswith("collective,")


def test_bench_fit_never_replaces_an_earlier_model_without_force(tmp_path):
    model = tmp_path / "model.json"
    model.write_text("{}")
    r = cli("bench", "--max-bytes", "64", "--fit", str(model))
    assert "--fit" in one_error(r) and "the file exists" in r.stderr
    assert model.read_text() == "{}" and "algbw" not in r.stdout
    r = cli("bench", "--max-bytes", "64", "--fit", str(model), "--csv", str(model))
    assert "the same file as" in one_error(r)


def test_bench_fifo_as_out_is_refused_before_the_sweep(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    r = cli("bench", "--max-bytes", "64", "--out", str(fifo), timeout=60)  # it used to hang
    assert "FIFO" in one_error(r) and "algbw" not in r.stdout


# --- model fit ----------------------------------------------------------------------------


def _bench_file(path, scale=1.0):
    records = [
        {
            "algorithm": "ring",
            "bytes": b,
            "time_s": scale * (1e-5 + b * 1e-9),
            "world_size": 2,
            "reduce_s": b / 8 * 1e-10,
        }
        for b in (1024, 8192, 65536, 524288)
    ]
    path.write_text(json.dumps({"records": records}))
    return path


@pytest.mark.parametrize("where", ["folder", "read-only", "fifo"])
def test_model_fit_out_is_checked_before_the_fit(tmp_path, where):
    bench = _bench_file(tmp_path / "b.json")
    out = tmp_path / "out"
    if where == "folder":
        out.mkdir()
    elif where == "fifo":
        os.mkfifo(out)
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "model.json"
        if os.access(ro, os.W_OK):  # root writes anywhere: take a file in the way instead
            (tmp_path / "plain").write_text("")
            out = tmp_path / "plain" / "model.json"
    r = cli("model", "fit", str(bench), "--out", str(out))
    assert f"--out {out}" in one_error(r)
    assert "alpha" not in r.stdout  # refused before the fit was printed


def test_model_fit_never_replaces_an_earlier_model_without_force(tmp_path):
    bench = _bench_file(tmp_path / "b.json")
    out = tmp_path / "model.json"
    out.write_text("{}")
    assert "the file exists" in one_error(cli("model", "fit", str(bench), "--out", str(out)))
    assert out.read_text() == "{}"
    r = cli("model", "fit", str(bench), "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert "ring" in json.loads(out.read_text())["algorithms"]


def test_model_fit_refuses_one_bench_file_given_twice(tmp_path):
    bench = _bench_file(tmp_path / "b.json")
    (tmp_path / "same.json").symlink_to(bench)
    for second in (bench, tmp_path / "same.json", tmp_path / "." / "b.json"):
        r = cli("model", "fit", str(bench), str(second), "--out", str(tmp_path / "m.json"))
        assert "given twice" in one_error(r) and str(second) in r.stderr
    # two different files of the same sweep are fine
    other = _bench_file(tmp_path / "c.json", scale=1.01)
    r = cli("model", "fit", str(bench), str(other), "--out", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr


# --- simulate -----------------------------------------------------------------------------

SIM = ("simulate", "--fabric", "flat:hosts=4,rate=10G", "--ranks", "4", "--bytes", "64K")


def test_simulate_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    out = tmp_path / "sim"
    out.mkdir()
    (out / "simulate.json").symlink_to(victim)
    r = cli(*SIM, "--out", str(out))
    assert "symbolic link" in one_error(r)
    assert victim.read_text() == "not yours"
    r = cli(*SIM, "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "not yours"
    assert json.loads((out / "simulate.json").read_text())["results"]


def test_simulate_never_replaces_an_earlier_result_without_force(tmp_path):
    r = cli(*SIM, "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    before = (tmp_path / "simulate.json").read_text()
    r = cli(*SIM, "--ranks", "2", "--out", str(tmp_path))
    assert "the file exists" in one_error(r) and "--force" in r.stderr
    assert (tmp_path / "simulate.json").read_text() == before


# --- train into another run's --out --------------------------------------------------------

TRAIN = ["--samples", "200", "--features", "4", "--batch-size", "20", "--steps", "6"]


def _train(n, *args, timeout=90):
    from tests.helpers import run_mpi, train_cmd

    return run_mpi(n, train_cmd(*TRAIN, *args), timeout=timeout)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [1, 2])
def test_train_refuses_an_out_holding_another_runs_results(tmp_path, n):
    out = tmp_path / "run"
    assert _train(n, "--out", str(out)).returncode == 0
    before = (out / "summary.json").read_text()
    r = _train(n, "--out", str(out), "--seed", "7")
    errors = [x for x in r.stderr.splitlines() if "error" in x]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert f"--out {out}: holds another run's results" in errors[0] and "--force" in errors[0]
    assert (out / "summary.json").read_text() == before
    # --force starts afresh: no line of the earlier run is left in the new one's files
    (out / "partial").mkdir(exist_ok=True)
    (out / "partial" / "steps-attempt1-from0-rank0.jsonl").write_text("")
    r = _train(n, "--out", str(out), "--seed", "7", "--force")
    assert r.returncode == 0, r.stderr
    steps = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines()]
    assert len(steps) == 6 * n and not list((out / "partial").glob("steps-*"))


@pytest.mark.timeout(400)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_resume_without_a_checkpoint_never_replaces_a_run(tmp_path, n):
    """Fifth attack, E-H3: ``--resume`` into a finished run's --out that has no checkpoint
    started from step 0 and replaced that run (another --lr and --seed, or the same)."""
    out = tmp_path / "run"
    assert _train(n, "--out", str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for extra in ([], ["--lr", "0.1", "--seed", "7"]):
        r = _train(n, "--out", str(out), "--resume", *extra)
        errors = [x for x in r.stderr.splitlines() if "error" in x]
        assert r.returncode == 2 and len(errors) == 1, r.stderr
        assert "no usable checkpoint" in errors[0] and f"--out {out} holds" in errors[0]
        assert "--force" in errors[0]
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # --force: the new run replaces the old one, whole
    r = _train(n, "--out", str(out), "--resume", "--seed", "7", "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    steps = (out / "steps.jsonl").read_text().splitlines()
    assert len(steps) == 6 * n


@pytest.mark.timeout(300)
def test_report_never_merges_a_dead_run_into_a_fresh_one(tmp_path):
    out = tmp_path / "run"
    assert _train(2, "--out", str(out)).returncode == 0
    # as an earlier version left it: the fresh run was attempt 2 (partial/ held attempt 1),
    # next to what a dead, independent run flushed (10,900 steps in the attack; 3 here)
    steps = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines()]
    (out / "steps.jsonl").write_text("".join(json.dumps({**x, "attempt": 2}) + "\n" for x in steps))
    rows = [{**steps[0], "step": s, "attempt": 1} for s in (6, 7, 8)]
    (out / "partial").mkdir(exist_ok=True)
    (out / "partial" / "steps-attempt1-from0-rank0.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in rows)
    )
    r = cli("report", str(out), "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "attempts" not in md and "resumed" not in md
