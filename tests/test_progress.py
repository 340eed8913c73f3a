"""Progress: a bar on rank 0 when the output is a terminal, the plain lines otherwise."""

import io

import pytest
from mpi4py import MPI

from dist_logreg.comm.base import MPIAllreduce
from dist_logreg.record.console import Reporter
from dist_logreg.record.progress import bar_for, is_terminal
from dist_logreg.train import data
from dist_logreg.train.config import TrainConfig
from dist_logreg.train.loop import train


class Terminal(io.StringIO):
    """Captures output and says it is a terminal (of unknown size, as under mpirun)."""

    def isatty(self):
        return True


def progress_of(stream, rank=0, steps=1000):
    ds = data.synthetic(400, 3, seed=0, dtype="float64")
    cfg = TrainConfig(batch_size=20, steps=steps)
    reporter = Reporter(rank, stream)
    train(MPI.COMM_SELF, MPIAllreduce(MPI.COMM_SELF), cfg, ds, reporter)
    reporter.close()
    return stream.getvalue()


def test_terminal_gets_a_bar_and_ten_plain_lines():
    shown = progress_of(Terminal())
    assert "100%|" in shown and "1000/1000 [" in shown
    assert "loss 0." in shown and "samples/s]" in shown  # the bar's postfix
    plain = [line for line in shown.replace("\r", "\n").splitlines() if line.startswith("  step")]
    assert [int(line.split()[1].split("/")[0]) for line in plain] == list(range(100, 1001, 100))


def test_a_pipe_gets_the_plain_lines_only():
    shown = progress_of(io.StringIO())
    assert "\r" not in shown and "%|" not in shown
    steps = [int(line.split()[1].split("/")[0]) for line in shown.splitlines()[1:]]
    assert steps == list(range(100, 1001, 100))


def test_other_ranks_show_nothing():
    assert progress_of(Terminal(), rank=1) == ""


@pytest.mark.parametrize(
    "stream, expected", [(Terminal(), True), (io.StringIO(), False), (object(), False)]
)
def test_is_terminal(stream, expected):
    assert is_terminal(stream) is expected
    assert (bar_for(0, stream, 10, "x") is not None) is expected
