"""The packet engine's options and transports without ns-3: defaults written once, parsed
once into a typed object, refused where the engine or transport would ignore them, the
transport table, and the C++ files shipped as package data."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tomllib

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim import options, packet_options, text
from dist_logreg.sim.packet_options import PacketOptions, parse_options
from dist_logreg.sim.transports import table
from tests.helpers import ROOT


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    packet_options.add_packet_arguments(p)
    return p


def _option_classes() -> list:
    return [PacketOptions] + [t.options_class() for t in table.all_records()]


def test_every_default_is_what_help_prints():
    """The help's "(default X)" read back by the option's own reader is the field default:
    the default is written once (the field) and shown from it."""
    checked = 0
    for cls in _option_classes():
        for name, flag in options.flags(cls).items():
            if flag.show is None:
                continue
            default = getattr(cls(), name)
            assert flag.read(flag.show(default), flag.flag) == pytest.approx(default), name
            checked += 1
    assert checked >= 8


def test_help_prints_the_defaults_as_before():
    """The phrases of the old hand-written help, now made from the fields."""
    helptext = " ".join(_parser().format_help().split())
    for phrase in [
        "(default cubic)",
        "e.g. 256K (default 1M)",
        "DCTCP style, e.g. 65K (default off)",
        "percent (default 0)",
        "timeout (default 200ms)",
        "over the run (default 500)",
        "wall time (default 1h)",
        "(default tcp)",
    ]:
        assert phrase in helptext


def test_nothing_given_is_every_default_in_one_object():
    args = _parser().parse_args([])
    assert packet_options.options_from_args(args) == {}  # default=None: "not given"
    opts = packet_options.from_args(args, "packet")
    assert opts == PacketOptions() == parse_options({})
    assert (opts.transport, opts.tcp, opts.min_rto, opts.queue) == ("tcp", "cubic", 0.2, 1 << 20)


def test_the_typed_object_is_parsed_once():
    args = _parser().parse_args(["--tcp", "bbr", "--queue", "64K", "--loss", "1"])
    opts = packet_options.from_args(args, "packet")
    assert isinstance(opts, PacketOptions)
    assert parse_options(opts) is opts  # the engine takes it as it is
    flat = packet_options.vars_of(opts)
    assert flat["tcp"] == "bbr" and flat["queue"] == 64 << 10 and flat["loss"] == 0.01
    assert flat["transport"] == "tcp"


@pytest.mark.parametrize(
    "argv", [["--loss", "1"], ["--tcp", "dctcp"], ["--transport", "tcp"], ["--queue-samples", "9"]]
)
def test_a_packet_option_with_the_flow_engine_is_refused_naming_it(argv):
    with pytest.raises(UsageError, match=rf"^{argv[0]}: only --engine packet reads it"):
        packet_options.from_args(_parser().parse_args(argv), "flow")
    assert packet_options.from_args(_parser().parse_args([]), "flow") is None


def test_the_command_refuses_it_with_one_line_and_exit_2():
    cmd = [
        sys.executable,
        "-m",
        "dist_logreg",
        "simulate",
        "--fabric",
        "flat:hosts=2,rate=10G",
        "--ranks",
        "2",
        "--bytes",
        "1M",
        "--loss",
        "1",
        "--tcp",
        "dctcp",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "--loss, --tcp: only --engine packet reads them; the flow engine would" in r.stderr


@dataclasses.dataclass(frozen=True)
class Bare:
    """A transport without options of its own (the table's test double: never run here)."""

    def create(self, gbl, net):
        raise AssertionError("not run without ns-3")


def test_another_transports_option_is_refused_naming_it():
    record = dataclasses.replace(table.TCP, name="bare", options=f"{__name__}:Bare")
    with table.registered(record):
        assert table.names() == ("tcp", "roce", "bare")
        opts = parse_options({"transport": "bare", "loss": "1"})
        assert opts.transport_options == Bare() and opts.loss == 0.01
        with pytest.raises(UsageError, match=r"^--tcp: not an option of --transport bare"):
            parse_options({"transport": "bare", "tcp": "dctcp"})
        with pytest.raises(ValueError, match="new transport name"):
            table.register(record)
    assert table.names() == ("tcp", "roce")
    with pytest.raises(UsageError, match=r"^--transport: expected one of tcp, roce, got 'bare'"):
        parse_options({"transport": "bare"})
    with pytest.raises(ValueError, match="expected tcp's options"):
        PacketOptions(transport="tcp", transport_options=Bare())


def test_the_packet_line_reads_the_transport_from_its_record():
    block = {
        "drops": 1,
        "ecn_marks": 2,
        "lost": 3,
        "retransmissions": 4,
        "timeouts": 5,
        "peak_queue_bytes": 2048,
        "wall_s": 1.25,
        "options": {"transport": "tcp"},
    }
    expected = "packet: 1 drops, 2 ECN marks, 3 lost, 4 retransmissions (5 timeouts), peak "
    assert expected + "queue 2 KiB, 1.2 s wall" in text.packet_line(block)
    del block["options"]  # a simulate.json written before transports were a table: TCP
    assert "4 retransmissions (5 timeouts)" in text.packet_line(block)


def test_the_cxx_files_are_package_data():
    """Every .cc/.h of the package is shipped (pyproject's package data for its package)
    and is compiled by the driver (its own, or a transport record's)."""
    from dist_logreg.sim import ns3driver

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = data["package-data"]
    files = sorted(p for ext in ("*.cc", "*.h") for p in (ROOT / "dist_logreg").rglob(ext))
    assert len(files) >= 3
    for f in files:
        package = ".".join(f.parent.relative_to(ROOT).parts)
        assert any(f.match(g) for g in globs.get(package, [])), f"{f.name} not in {package}"
    assert set(files) == set(ns3driver.sources())
