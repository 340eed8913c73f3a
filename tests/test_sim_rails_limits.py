"""What the rail family refuses: a size its presets cannot build is never suggested, and the
packet engine, which has no scale-up switch, NIC ports or PXN paths, says so in one line."""

import importlib.util
import re

import pytest

from dist_logreg.collective import algorithms as table
from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.job import Job
from dist_logreg.sim.placement import place

HAVE_NS3 = all(importlib.util.find_spec(m) is not None for m in ("ns", "cppyy"))


@pytest.mark.parametrize("units, extra", [(4, ""), (8, ""), (2, ",units-per-pod=2")])
@pytest.mark.parametrize("ranks", [2100, 2304, 4100, 9000, 16385])
def test_the_size_hint_names_a_fabric_that_builds_and_holds_the_ranks(units, extra, ranks):
    """superpod-h100 beyond 8 units takes whole pods of 4 (or the units-per-pod given):
    units=9 would be refused, so the hint rounds up to a count that builds."""
    with pytest.raises(UsageError) as caught:
        place(ranks, parse_fabric(f"superpod-h100:units={units}{extra}"))
    need = int(re.search(r"need units=(\d+)", str(caught.value)).group(1))
    fab = parse_fabric(f"superpod-h100:units={need}{extra}")
    assert fab.endpoints >= ranks and place(ranks, fab).size == ranks
    try:  # the hint is the smallest count that builds and holds the ranks
        assert parse_fabric(f"superpod-h100:units={need - 1}{extra}").endpoints < ranks
    except UsageError as exc:
        assert "units" in str(exc)


@pytest.mark.skipif(not HAVE_NS3, reason="ns-3 not installed: pip install -e '.[packet]'")
@pytest.mark.parametrize("preset", ["rail", "tor"])
def test_the_packet_engine_refuses_the_rail_family_in_one_line(preset):
    from dist_logreg.sim.packet import PacketEngine

    fab = parse_fabric(f"{preset}:hosts-per-unit=2,rails=2,gpus-per-host=2,spines=1")
    job = Job(fab, place(4, fab), table.RING.name, 1 << 20)
    with pytest.raises(UsageError, match="--engine packet: the rail family") as caught:
        PacketEngine().prepare(job)
    assert "\n" not in str(caught.value) and "--engine flow" in str(caught.value)
