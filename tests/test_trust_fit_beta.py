"""``model fit`` never accepts beta = 0 ("= inf" bandwidth): the rule that refuses a fit that
cannot identify beta holds at its boundary (sizes spanning exactly a factor of 8) and for
every collective, alltoall/mpi included (issue 29, 2)."""

import pytest

from dist_logreg.collective.costfit import SPAN
from tests.test_model_cli import dl
from tests.test_trust_model import one_line, records, write


def flat_times(recs):
    """Times that shrink as sizes grow (noise on a latency-bound measurement): no per-byte
    cost to see, so the non-negative fit puts beta at 0."""
    for r in recs:
        r["time_s"] = 50e-6 * (1 + 4096 / r["bytes"]) * (1 + 0.01 * (r["world_size"] - 2))
    return recs


@pytest.mark.parametrize(
    "names",
    [
        ("ring",),
        ("mpi",),
        ("alltoall/mpi",),
        ("allgather/mpi",),
        ("reduce-scatter/mpi",),
        ("broadcast/mpi",),
    ],
)
def test_times_without_a_per_byte_cost_at_a_span_of_exactly_8_are_refused(tmp_path, names):
    bench = write(tmp_path, flat_times(records([4096, 4096 * 2, 4096 * SPAN], names=names)))
    r = dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"), "--link-rate", "1G")
    line = one_line(r)
    assert "cannot identify beta" in line and names[0] in line and "0" in line
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("names", [("ring",), ("alltoall/mpi",)])
def test_a_span_of_exactly_8_with_a_per_byte_cost_is_fitted(tmp_path, names):
    bench = write(tmp_path, records([4096, 4096 * 2, 4096 * SPAN], names=names))
    r = dl("model", "fit", str(bench), "--out", str(tmp_path / "m.json"), "--link-rate", "1G")
    assert r.returncode == 0, r.stderr
    assert "= inf" not in r.stdout
