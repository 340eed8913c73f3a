"""``simulate --sweep FILE`` (issue 30, 4): a TOML grid into one ``simulate.json``; under
``mpirun -n 1, 2, 3`` the same ``results`` byte for byte as the serial sweep; an
interrupted sweep keeps what finished and resumes; a bad file is one line, exit 2."""

import json
import subprocess
import sys

import pytest

from dist_logreg.cli import simulate_sweep
from dist_logreg.cli.main import main as cli_main_fn
from dist_logreg.collective.algorithms import RABENSEIFNER, RING
from dist_logreg.sim.sweep import PARTIAL, expand
from tests.helpers import BIN, WORLD_SIZES, run_mpi

FLAT = "flat:hosts=16,rate=100G"
LEAF = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=8,oversubscription=2"
GRID = f"""
fabric = ["{FLAT}", "{LEAF}"]
ranks = [4, 16]
algorithm = ["{RING.name}", "{RABENSEIFNER.name}"]
bytes = ["1M", "16M"]
seeds = 2
placement = "random"
"""


def sweep_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "dist_logreg", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    (d / "grid.toml").write_text(GRID)
    r = sweep_cli("--sweep", str(d / "grid.toml"), "--out", str(d / "serial"))
    assert r.returncode == 0, r.stderr
    assert "16 points (2 fabric x 2 ranks x 2 algorithm x 2 bytes)" in r.stderr  # the estimate
    return d, json.loads((d / "serial" / "simulate.json").read_text())


def test_the_grid_runs_every_point_in_order_each_as_simulate_alone(serial):
    d, doc = serial
    rows = doc["results"]
    assert [r["point"] for r in rows] == list(range(16))
    assert [(r["fabric"], r["ranks"], r["algorithm"], r["bytes"]) for r in rows[:3]] == [
        (FLAT, 4, RING.name, 1 << 20),
        (FLAT, 4, RING.name, 16 << 20),
        (FLAT, 4, RABENSEIFNER.name, 1 << 20),
    ]
    assert [f["spec"] for f in doc["fabrics"]] == [FLAT, LEAF]
    # a point of the grid is the same run as the command alone (its seeds are its options')
    r = sweep_cli(
        "--fabric",
        LEAF,
        "--ranks",
        "16",
        "--algorithm",
        RING.name,
        "--bytes",
        "16M",
        "--seeds",
        "2",
        "--placement",
        "random",
        "--json",
    )
    alone = json.loads(r.stdout)["results"][0]
    row = next(
        x
        for x in rows
        if x["fabric"] == LEAF
        and x["ranks"] == 16
        and x["bytes"] == 16 << 20
        and x["algorithm"] == RING.name
    )
    assert {k: row[k] for k in alone} == alone
    assert not list((d / "serial").glob(PARTIAL + "*"))  # done: no partial file left


@pytest.mark.parametrize("n", WORLD_SIZES)
def test_under_mpirun_the_results_are_the_serial_ones_byte_for_byte(serial, n):
    d, doc = serial
    out = d / f"mpi{n}"
    r = run_mpi(
        n,
        [str(BIN / "dist-logreg"), "simulate", "--sweep", str(d / "grid.toml"), "--out", str(out)],
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads((out / "simulate.json").read_text())
    assert json.dumps(got["results"]) == json.dumps(doc["results"])
    assert got["sweep"]["mpi_ranks"] == n
    assert r.stdout.count("wrote ") == 1  # rank 0 alone reports


def test_an_interrupted_sweep_keeps_what_finished_and_resumes(serial, tmp_path, monkeypatch):
    d, doc = serial
    out, ran = tmp_path / "out", []
    real = simulate_sweep.run_point

    def stop_at_five(base, options, axes, index, point):
        if index == 5:
            raise KeyboardInterrupt
        ran.append(index)
        return real(base, options, axes, index, point)

    monkeypatch.setattr(simulate_sweep, "run_point", stop_at_five)
    args = ["simulate", "--sweep", str(d / "grid.toml"), "--out", str(out)]
    assert cli_main_fn(args) == 130
    assert not (out / "simulate.json").exists() and (out / PARTIAL).exists()
    kept = json.loads((out / PARTIAL).read_text())["done"]
    assert sorted(map(int, kept)) == [0, 1, 2, 3, 4]
    # without --resume a partial sweep is not overwritten silently
    assert cli_main_fn(args) == 2
    ran.clear()
    monkeypatch.setattr(simulate_sweep, "run_point", lambda *a: ran.append(a[3]) or real(*a))
    assert cli_main_fn([*args, "--resume"]) == 0
    assert ran == list(range(5, 16))  # only what was left
    got = json.loads((out / "simulate.json").read_text())
    assert json.dumps(got["results"]) == json.dumps(doc["results"])
    assert not list(out.glob(PARTIAL + "*"))


def test_resume_refuses_the_partial_file_of_another_grid(serial, tmp_path, monkeypatch):
    d, _ = serial
    out = tmp_path / "out"
    real = simulate_sweep.run_point

    def stop_at_one(*a):
        if a[3] == 1:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(simulate_sweep, "run_point", stop_at_one)
    assert cli_main_fn(["simulate", "--sweep", str(d / "grid.toml"), "--out", str(out)]) == 130
    other = tmp_path / "other.toml"
    other.write_text(GRID.replace("seeds = 2", "seeds = 3"))
    r = sweep_cli("--sweep", str(other), "--out", str(out), "--resume")
    assert r.returncode == 2 and "grid: expected" in r.stderr and PARTIAL in r.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("ranks = [4", "expected TOML"),
        ('rnaks = [4]\nfabric = "flat:hosts=4"', "rnaks: expected one of the options"),
        ('ranks = [0]\nfabric = "flat:hosts=4"', "ranks: expected a whole number >= 1"),
        (
            'ranks = [true]\nfabric = "flat:hosts=4"',
            "ranks: expected a string or a number, got True",
        ),
        ('ranks = []\nfabric = "flat:hosts=4"', "ranks: expected a value or a list of values"),
        ('ranks = 4\nplacement = "nowhere"\nfabric = "flat:hosts=4"', "placement: expected one of"),
        ('ranks = 4\nexact = "yes"\nfabric = "flat:hosts=4"', "exact: expected true or false"),
        ('ranks = 4\nbytes = ["1Q"]\nfabric = "flat:hosts=4"', "bytes:"),
        ("ranks = 4", "fabric: required"),
        ('ranks = 4\nfabric = "flat:hosts=4"\nout = "x"', "out: expected one of the options"),
        ('ranks = 4\nfabric = "flat:hosts=4"\nalgorithm = "bogus"', "point 0"),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_file_key_and_value(tmp_path, text, words):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    r = sweep_cli("--sweep", str(f), timeout=60)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("dist-logreg: error: --sweep") and str(f) in err and words in err, err


def test_expand_varies_the_last_axis_fastest_in_a_fixed_axis_order():
    pts = expand({"seeds": [1], "bytes": [1, 2], "fabric": ["a", "b"]})
    assert pts == [{"fabric": f, "bytes": b, "seeds": 1} for f in "ab" for b in (1, 2)]


def test_plain_simulate_never_loads_mpi():
    code = (
        "import sys; from dist_logreg.cli.main import main; "
        "main(['simulate', '--sweep', sys.argv[1], '--json']); "
        "print('mpi4py' in sys.modules, file=sys.stderr)"
    )
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(f'fabric = "{FLAT}"\nranks = [4]\nbytes = "1M"\nalgorithm = "{RING.name}"\n')
    r = subprocess.run(
        [sys.executable, "-c", code, f.name], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "False"


def test_a_scenario_axis_gives_each_row_its_slowdown_against_running_alone(tmp_path):
    # no latency, no per-message cost: half of every link's rate is twice the time
    f = tmp_path / "sc.toml"
    f.write_text(
        'fabric = "flat:hosts=4,rate=100G,link-latency=0,alpha=0"\nranks = [2, 4]\n'
        f'algorithm = "{RING.name}"\n'  # no bytes: the workload's buckets are (J-M2)
        'workload = "params=1048576,dtype=fp32,buckets=4M,forward=1ms,backward=1ms,overlap=no"\n'
        'scenario = ["none", "background:fraction=0.5", "straggler:factor=3"]\n'
    )
    r = sweep_cli("--sweep", str(f), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for row in doc["results"]:
        want = 2.0 if row["scenario"].startswith("background") else 1.0
        assert row["slowdown"] == pytest.approx(want, rel=1e-9), row
    steps = {(s["scenario"], s["ranks"]): s for s in doc["step"]["rows"]}
    for p in (2, 4):
        alone, late = steps[("none", p)], steps[("straggler:factor=3", p)]
        # overlap off: the straggler adds twice its 2 ms of compute, the comm unchanged
        assert late["step_s"] == pytest.approx(alone["step_s"] + 0.004, rel=1e-9)
        assert late["slowdown"] == pytest.approx(late["step_s"] / alone["step_s"])


def test_the_report_draws_a_sweep_one_line_per_fabric(serial, tmp_path):
    from dist_logreg.report.simulate import SimRun, _series

    d, doc = serial
    keys = _series(SimRun(d / "serial" / "simulate.json", "s", doc))
    assert {k[2] for k in keys} == {FLAT, LEAF} and len(keys) == 8  # 2 algs x 2 sizes x 2
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "report",
            str(d / "serial"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "1-sim-time.png").exists()
