"""Defects of issue 29's sixteenth attack (R-...), each a test that failed before its fix."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.helpers import BIN, run_mpi, train_cmd
from tests.test_model_cli import dl
from tests.test_trust_leftovers import _edited
from tests.test_trust_recheck import _faster


def _summary(calls: int, per_call: int) -> dict:
    """20 steps at 2 ranks reducing 8024 B a step in ``calls`` calls, the median ``per_call``."""
    return {
        "world_size": 2,
        "steps_run": 20,
        "allreduce": {
            "algorithm": "ring",
            "bytes_per_call": per_call,
            "calls_per_step": float(calls),
            "bytes_per_step": 8024,
            "latency_s": {"p50": 1e-4},
        },
        "time_s": {"data": 1e-3, "compute": 2e-3, "update": 1e-4},
    }


def test_a_bucketed_runs_comm_is_priced_on_the_bytes_its_steps_carried(tmp_path):
    """R-H1: a run of 3 buckets a step (3600 + 3600 + 824 B) was priced as 3 x the median
    call (10,800 B, +35 %); with no per-message cost it must equal the one-bucket run's."""
    from dist_logreg.collective import costfile
    from dist_logreg.collective.schedule import Placement
    from dist_logreg.collective.whatif import run_fraction
    from tests.test_simulate_attack import _model

    model = costfile.load(_model(tmp_path, {"ring": 0.0}))
    place = Placement(tuple(range(8)))
    one = run_fraction(model, _summary(1, 8024), place)
    three = run_fraction(model, _summary(3, 3600), place)
    assert three["predicted_comm_s_per_step"] == pytest.approx(one["predicted_comm_s_per_step"])
    assert three["bytes_per_call"] * three["calls_per_step"] == pytest.approx(8024)


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_report_never_writes_over_a_run_it_reports(tmp_path, force):
    """R-M1: ``report X/report.json --out X --force`` replaced the bench JSON it read with its
    own report.json."""
    from tests.fake_runs import write_bench

    (tmp_path / "x").mkdir()
    bench = write_bench(tmp_path / "x" / "report.json")
    before = bench.read_bytes()
    r = dl("report", str(bench), "--out", str(tmp_path / "x"), *force)
    assert r.returncode == 2 and f"a run it reports ({bench})" in r.stderr
    assert bench.read_bytes() == before and json.loads(before)


@pytest.mark.parametrize("hash_", ["spray", "qp:3"])
def test_a_sprayed_fabrics_output_is_reported(tmp_path, hash_):
    """R-H2: with spraying (or queue pairs hashed apart) a flow's parts cross the uplinks, so
    the worst uplink carries 0.5 (or 2/3) of a flow: report refused every such output."""
    fab = f"leaf-spine:leaves=2,spines=2,hosts-per-leaf=4,hash={hash_}"
    args = ["--fabric", fab, "--ranks", "8", "--bytes", "1M", "--algorithm", "ring"]
    assert dl("simulate", *args, "--out", str(tmp_path / "s")).returncode == 0
    row = json.loads((tmp_path / "s" / "simulate.json").read_text())["results"][0]
    assert row["max_flows_per_uplink"] != int(row["max_flows_per_uplink"])  # the case itself
    r = dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "read, text, words",
    [
        ("percent", "0.８", "--x: expected a loss in percent"),
        ("fraction", "0.８", "--x: expected a number in (0, 1]"),
        ("fraction", "1/٢٥٦", "--x: expected a number in (0, 1]"),
    ],
)
def test_the_packet_engines_numbers_are_ascii(read, text, words):
    """R-M2: ``--loss 0.８``, ``--ecn-pmax 0.８``, ``--dcqcn-g 0.８``, ``--loss-link leaf-up=٣``
    were read as the numbers they look like."""
    from dist_logreg.errors import UsageError
    from dist_logreg.sim import options as o

    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        getattr(o, read)(text, "--x")
    assert o.percent("0.8", "--x") == pytest.approx(0.008) and o.fraction("1/256", "--x") == 1 / 256


def test_a_fault_and_a_label_column_are_ascii(tmp_path):
    """R-M2: ``--inject-fault kill:rank=0:step=٣`` and ``--label-column ٣`` were taken."""
    from dist_logreg.errors import UsageError
    from dist_logreg.train.faults import parse_fault
    from dist_logreg.train.readers import _label_index

    with pytest.raises(UsageError, match="--inject-fault: expected integers"):
        parse_fault("kill:rank=0:step=٣")
    assert parse_fault("stall:rank=0:step=1:seconds=3").seconds == 3.0
    with pytest.raises(UsageError, match="--label-column ٣: expected a header name or index"):
        _label_index(tmp_path / "x.csv", ["a", "b", "c", "d"], "٣", False)
    assert _label_index(tmp_path / "x.csv", ["a", "b", "c", "d"], "3", False) == 3


@pytest.mark.parametrize("flag", ["--fabric", "--workload", "--cost-model"])
def test_simulate_never_writes_over_a_file_it_reads(tmp_path, flag):
    """R-M1: ``simulate --fabric D/simulate.json --out D --force`` (or a workload or cost model
    file of that name) replaced the file it read with its results."""
    from tests.test_simulate_attack import _model

    d = tmp_path / "d"
    d.mkdir()
    f = d / "simulate.json"
    if flag == "--cost-model":
        f.write_text(_model(tmp_path, {"ring": 1e-6}).read_text())
    else:
        body = '{"topology": "flat", "hosts": 4}' if flag == "--fabric" else '{"params": "1M"}'
        f.write_text(body)
    before = f.read_bytes()
    args = {"--fabric": [], "--workload": ["--fabric", "flat:hosts=4"]}.get(
        flag, ["--fabric", "flat:hosts=4"]
    )
    r = dl("simulate", *args, flag, str(f), "--ranks", "4", "--out", str(d), "--force")
    assert r.returncode == 2 and f"a file it reads ({f})" in r.stderr, r.stderr
    assert f.read_bytes() == before


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_train_never_writes_over_its_data(tmp_path, n):
    """R-M1: ``train --data D/model.npz --out D --force`` replaced its data with the model."""
    import numpy as np

    from tests.helpers import run_mpi, train_cmd

    d = tmp_path / "d"
    d.mkdir()
    rng = np.random.default_rng(0)
    np.savez(d / "model.npz", X=rng.random((60, 4)), y=(np.arange(60) % 2).astype(float))
    before = (d / "model.npz").read_bytes()
    args = ["--data", str(d / "model.npz"), "--batch-size", "12", "--steps", "3"]
    r = run_mpi(n, train_cmd(*args, "--out", str(d), "--force"), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"a file it reads ({d / 'model.npz'})" in r.stderr
    assert (d / "model.npz").read_bytes() == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_scale_never_runs_train_through_a_link(tmp_path, force):
    """R-H5: ``scale --out D --force`` ran train in ``D/p1``, a link to a folder outside D:
    six files written there, exit 0."""
    from dist_logreg.errors import UsageError
    from dist_logreg.ops import scale

    (tmp_path / "d").mkdir(), (tmp_path / "outside").mkdir()
    (tmp_path / "d" / "p1").symlink_to(tmp_path / "outside")
    train = ["train", "--samples", "500", "--features", "4", "--batch-size", "32"]
    words = "p1: expected a folder (or none), got a symbolic" if force else "scale run (p1)"
    with pytest.raises(UsageError, match=re.escape(words)):
        scale.run(train, [1], "strong", tmp_path / "d", ["false"], force=bool(force))
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.fixture(scope="module")
def cross_leaf(tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "s"
    args = ["--fabric", "leaf-spine:leaves=2,spines=2,hosts-per-leaf=4", "--ranks", "8"]
    assert dl("simulate", *args, "--bytes", "1M", "--out", str(out)).returncode == 0
    return out


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: (d["placement"].update(ranks_per_host=8), _faster(2)(d)), ".links: expected"),
        (lambda d: d["placement"].update(seeds=1000), ".time_s_seeds: expected 1000 seeds, got 1"),
        (  # 2 ranks a host: half the ring's hops inside a host, the floor lower than the time
            lambda d: (d["placement"].update(ranks_per_host=2), _faster(1.25)(d)),
            ".links.host-up.mean_util: expected at most",
        ),
    ],
)
def test_a_rows_placement_is_the_one_it_ran_on(cross_leaf, tmp_path, edit, key):
    """R-H3: ``ranks_per_host`` 1 -> 8 put every rank on one host and dropped every floor: a
    ring twice as fast as its links allow, beside links 45 % busy, was tabled (and at 2
    ranks a host, 1.25 x faster: the host links carried twice what a host sends). R-H4:
    "placement packed, 1000 seed(s)" above rows of one seed each."""
    assert dl("report", str(cross_leaf), "--out", str(tmp_path / "g")).returncode == 0
    r = _edited(cross_leaf, tmp_path, edit)
    assert r.returncode == 2 and f"results[0]{key}" in r.stderr, r.stderr


def test_a_rail_host_of_one_job_is_reported(tmp_path):
    """The R-H3 check leaves a rail host's own scale-up links to it (8 GPUs of one host)."""
    args = ["--fabric", "superpod-h100:units=1", "--ranks", "8", "--bytes", "1M"]
    assert dl("simulate", *args, "--out", str(tmp_path / "s")).returncode == 0
    assert dl("report", str(tmp_path / "s"), "--out", str(tmp_path / "r")).returncode == 0


@pytest.mark.parametrize("value", [-1, 0.5])
def test_a_sweep_rows_point_is_a_grid_index(tmp_path, value):
    """R-M3 (in part): a sweep row's ``point`` of -1 or 0.5 was taken."""
    grid = tmp_path / "g.toml"
    grid.write_text('fabric = "flat:hosts=4"\nranks = [2, 4]\nalgorithm = "ring"\nbytes = "1K"\n')
    assert dl("simulate", "--sweep", str(grid), "--out", str(tmp_path / "s")).returncode == 0
    r = _edited(tmp_path / "s", tmp_path, lambda d: d["results"][0].update(point=value))
    assert r.returncode == 2 and "results[0].point: expected a grid point's index" in r.stderr


def test_predicts_feature_count_says_the_label_column_is_apart(tmp_path):
    """R-L1: a CSV of 5 features and a label for a model of 4 said "got 5" beside a file of
    6 columns; the label column is now named."""
    run = tmp_path / "run"
    args = ["--samples", "100", "--features", "4", "--batch-size", "20", "--steps", "2"]
    assert run_mpi(1, train_cmd(*args, "--out", str(run)), timeout=120).returncode == 0
    rows = np.random.default_rng(0).standard_normal((7, 6))
    rows[:, -1] = rows[:, -1] > 0
    data = tmp_path / "six.csv"
    np.savetxt(data, rows, delimiter=",", header="a,b,c,d,e,label", comments="")
    predict = [str(BIN / "dist-logreg"), "predict", "--model", str(run), "--data", str(data)]
    r = run_mpi(1, [*predict, "--out", str(tmp_path / "p.csv")], timeout=120)
    words = "expected 4 features (the model's), got 5 besides its label column"
    assert r.returncode == 2 and words in r.stderr, r.stderr
