"""Every number the simulator takes is physical, or refused before the work (issue 29, 2):
spec values bounded, integers that are integers, one spelling per key; and its results
never beat the job's lower bound (the invariant every engine's result is checked against)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.spec import BOUNDS, parse_spec
from tests.test_model_cli import dl

LS = "leaf-spine:leaves=2,spines=2,hosts-per-leaf=2"


def refused(spec, *words):
    r = dl("simulate", "--fabric", spec, "--ranks", "4", "--algorithm", "ring", "--bytes", "1K")
    assert r.returncode == 2, (r.stdout[-300:], r.stderr[-600:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("flat:hosts=4,alpha=1e308", ["alpha", "at most", "1e+308"]),
        ("flat:hosts=4,gamma=1e300", ["gamma", "at most", "1e+300"]),
        ("flat:hosts=4,rate=0.000000001", ["rate", "at least"]),
        ("flat:hosts=4,reduce-rate=0.000000001", ["reduce-rate", "at least"]),
        ("flat:hosts=4,link-latency=1e300", ["link-latency", "at most"]),
        (LS + ",oversubscription=1e308", ["oversubscription", "at most"]),
        (LS + ",oversubscription=1e-308", ["oversubscription", "at least"]),
        (LS + ",uplink-rate=1e30G", ["uplink-rate", "at most"]),
        ("flat:hosts=4,hash-seed=99999999999999999999999999999", ["hash-seed", "at most"]),
        ("flat:hosts=4,hash-seed=100000000000000000", ["hash-seed", "at most"]),
        ("flat:hosts=²", ["hosts", "whole number", "'²'"]),
        ("flat:hosts=4,mtu=１５００", ["mtu", "'１５００'"]),
        ("flat:hosts=4,name=x", ["unknown key 'name'"]),
        ("flat:hosts=4,link_latency=1us,link-latency=2us", ["link-latency", "twice"]),
    ],
)
def test_a_spec_value_out_of_bounds_is_refused_with_the_bound(spec, words):
    refused(spec, *words)


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"topology": "flat", "hosts": 4, "RATE": "1G", "rate": "2G"}, ["rate", "twice"]),
        (
            {"topology": "flat", "hosts": 4, "link_latency": "1us", "link-latency": "2us"},
            ["link-latency", "twice"],
        ),
        ({"topology": "flat", "hosts": 4, "name": "x"}, ["unknown key 'name'"]),
    ],
)
def test_a_key_spelled_two_ways_in_a_file_is_refused(tmp_path, doc, words):
    f = tmp_path / "fab.json"
    f.write_text(json.dumps(doc))
    refused(str(f), *words)


def test_every_bounded_key_is_a_key_of_the_table():
    from dist_logreg.sim.spec import key_info

    for key, (low, high) in BOUNDS.items():
        assert key_info(key) is not None, key
        assert 0 <= low < high < float("inf")


def test_bounds_hold_for_overrides_too():
    # a cluster's calibrated rate of NaN, a cost model's absurd alpha: refused, not simulated
    with pytest.raises(UsageError, match="rate"):
        parse_spec("flat:hosts=4", rate=(float("nan"), "cluster x"))
    with pytest.raises(UsageError, match="alpha.*at most"):
        parse_spec("flat:hosts=4", alpha=(1e300, "cost model m.json"))


def test_values_at_the_bounds_simulate_finite_times():
    low_rate = BOUNDS["rate"][0]
    spec = f"{LS},alpha=10s,gamma={BOUNDS['gamma'][1]},rate={low_rate * 8}b/s,"
    spec += f"oversubscription={BOUNDS['oversubscription'][1]}"
    fab = parse_fabric(spec)
    assert np.all(np.isfinite(fab.link_rate)) and fab.link_rate.min() > 0
    r = dl("simulate", "--fabric", spec, "--ranks", "4", "--bytes", "1M", "--json")
    assert r.returncode == 0, r.stderr
    assert all(np.isfinite(x["time_s"]) for x in json.loads(r.stdout)["results"])


def test_an_undersubscribed_leaf_writes_no_infinity():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dist_logreg",
            "simulate",
            "--fabric",
            LS + ",oversubscription=1e-3",
            "--ranks",
            "4",
            "--bytes",
            "1K",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout
