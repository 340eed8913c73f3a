"""What the rail family refuses: a size its presets cannot build is never suggested (the
packet engine runs the family: tests/test_packet_rails.py)."""

import re

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.sim.fabric import parse_fabric
from dist_logreg.sim.placement import place


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
