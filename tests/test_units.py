"""One grammar for sizes, rates and times (dist_logreg/units.py, docs/cli.md "Units"): values
by definition of the prefixes, parse/format round trips, every rate option reading the same
text alike, and errors that name the option."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dist_logreg import units
from dist_logreg.errors import UsageError
from dist_logreg.sim import from_cluster as sim_cluster
from dist_logreg.sim import spec
from dist_logreg.sim import text as sim_text

# (text, bits/s): the values follow from the prefixes' definitions (k=1e3, Ki=1024, B=8 bit)
RATES = [
    ("25G", 25e9),
    ("25Gbit/s", 25e9),
    ("25gbit", 25e9),
    ("25Gbps", 25e9),
    ("25 Gb/s", 25e9),
    ("100M", 100e6),
    ("100mbit", 100e6),
    ("2.5kbit", 2500.0),
    ("1e9", 1e9),
    ("50GB/s", 400e9),
    ("50GBps", 400e9),
    ("800MB/s", 6.4e9),
    ("1GiB/s", 8 * 2**30),
    ("1Gibit/s", 2**30),
]


@pytest.mark.parametrize("text, bits", RATES)
def test_every_rate_reader_reads_the_same_text_alike(text, bits):
    """The readers behind --link-rate (model, report), --reduce-rate, the fabric spec's
    rate keys, stored cluster rates and cluster --rate (tc) agree on one value."""
    readers = {
        "model --link-rate": units.parse_link_rate(text),
        "report --link-rate": units.parse_bit_rate(text, "--link-rate"),
        "--reduce-rate": units.parse_byte_rate(text, "--reduce-rate") * 8,
        "fabric spec rate": spec.bytes_per_s(text, "rate") * 8,
        "stored rate": units.rate_bits(text),
    }
    for reader, value in readers.items():
        assert value == pytest.approx(bits, rel=1e-12), reader
    if text != "1e9":  # tc reads a bare number as bytes/s: cluster --rate wants a unit
        tc = units.parse_rate(text, "--rate")
        assert units.rate_bits(tc) == pytest.approx(bits, rel=1e-12)


TIMES = [
    ("500ns", 500e-9),
    ("2us", 2e-6),
    ("2µs", 2e-6),
    ("1.5ms", 1.5e-3),
    ("3s", 3.0),
    ("2min", 120.0),
    ("1h", 3600.0),
    ("1e-6", 1e-6),
    ("0", 0.0),
]


@pytest.mark.parametrize("text, seconds", TIMES)
def test_times(text, seconds):
    assert units.parse_seconds(text, "--alpha") == pytest.approx(seconds, rel=1e-12)
    assert spec.seconds(text, "alpha") == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    "text, n", [("8", 8), ("4K", 4096), ("4KiB", 4096), ("64M", 64 << 20), ("1G", 1 << 30)]
)
def test_sizes_are_binary(text, n):
    assert units.parse_bytes(text, "--bytes") == n


@pytest.mark.parametrize("bits", [1.0, 999.0, 2.5e6, 1e8, 25e9, 400e9, 1.6e12])
def test_rate_round_trip(bits):
    assert units.parse_bit_rate(units.format_bit_rate(bits), "x") == bits
    assert units.rate_bits(units.tc_rate(bits)) == pytest.approx(bits, rel=1e-12)
    b = bits / 8
    assert units.parse_byte_rate(units.format_byte_rate(b, ".17g"), "x") == pytest.approx(b)


@pytest.mark.parametrize("t", [3e-9, 4.5e-7, 2e-6, 1.25e-3, 0.5, 7.0])
def test_time_round_trip(t):
    assert units.parse_seconds(units.format_seconds(t, ".17g"), "x") == pytest.approx(t)


@pytest.mark.parametrize("n", [1, 1000, 1024, 64 << 20, 3 << 30])
def test_size_round_trip(n):
    assert units.parse_bytes(units.format_bytes(n, "g")) == n


def test_a_small_value_gets_a_small_unit():
    assert units.format_byte_rate(3.0) == "3.00 B/s"  # not 0.00 GB/s
    assert units.format_bit_rate(5.0) == "5 bit/s"
    assert units.format_seconds(2e-9) == "2.00 ns"
    assert units.format_seconds(0.0123) == "12.30 ms"
    assert units.format_bytes(1536) == "1.50 KiB"
    assert sim_text.bandwidth(500.0) == "500.00 B/s"
    assert sim_text.seconds(4e-8) == "40.00 ns"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: units.parse_bit_rate("fast", "--link-rate"), "--link-rate: expected a rate"),
        (lambda: units.parse_byte_rate("-1G", "--reduce-rate"), "--reduce-rate: expected"),
        (lambda: units.parse_rate("100", "--rate"), "--rate: expected a rate"),
        (lambda: units.parse_seconds("fast", "--alpha"), "--alpha: expected a time"),
        (lambda: units.parse_bytes("lots", "--bytes"), "--bytes: expected a byte count"),
        (lambda: spec.seconds("fast", "--min-rto"), r"^--min-rto: expected a time"),
        (lambda: spec.seconds("fast", "link-latency"), "fabric spec: link-latency: expected"),
        (lambda: spec.bytes_per_s("0G", "rate"), "fabric spec: rate: expected a rate"),
    ],
)
def test_errors_name_the_option(call, message):
    with pytest.raises(UsageError, match=message):
        call()


@pytest.mark.parametrize("bad", ["", "G", "-1G", "0", "nan", "inf", "1e999G", "1parsec", "5 GBs"])
def test_rates_refused(bad):
    with pytest.raises(UsageError, match="got"):
        units.parse_bit_rate(bad, "--link-rate")


def test_cluster_rates_become_spec_rates():
    assert spec.bytes_per_s(sim_cluster._gbit("100mbit"), "rate") == 100e6 / 8
    assert spec.bytes_per_s(sim_cluster._gbit("25G"), "rate") == 25e9 / 8


def test_report_takes_the_rates_model_predict_takes(tmp_path):
    """``report --link-rate 25G`` was refused while ``model predict`` took it."""
    run = [sys.executable, "-m", "dist_logreg", "report", str(tmp_path / "nope")]
    good = subprocess.run(run + ["--link-rate", "25G"], capture_output=True, text=True)
    assert good.returncode == 2 and "--link-rate" not in good.stderr, good.stderr
    bad = subprocess.run(run + ["--link-rate", "25 parsec"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--link-rate: expected a rate" in bad.stderr, bad.stderr


@pytest.mark.parametrize("text, seconds", [("30", 30.0), ("90s", 90.0), ("2min", 120.0)])
def test_timeouts_take_the_time_grammar(text, seconds):
    assert units.parse_timeout(text, "--timeout") == seconds


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "fast"])
def test_timeouts_refused(text):
    with pytest.raises(UsageError, match=r"--grace: expected a number of seconds from 0\.001 to"):
        units.parse_timeout(text, "--grace")


def test_supervise_reads_its_times_with_the_grammar():
    """``--attempt-timeout 2min`` is read (the command then runs); a bad one names the flag."""
    base = [sys.executable, "-m", "dist_logreg", "supervise", "--restarts", "0"]
    tail = ["--", "true", "train", "--out", "x"]
    ok = subprocess.run(
        base + ["--attempt-timeout", "2min", "--grace", "500ms", *tail],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "expected" not in ok.stderr, ok.stderr
    bad = subprocess.run(
        base + ["--attempt-timeout", "2 fortnights", *tail], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--attempt-timeout: expected" in bad.stderr, bad.stderr
