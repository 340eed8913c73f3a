"""One function for each job that was written several times: reading a JSON file with a
clear error, raising an error on every rank together; and the cost model's config key under
its new name (``cost_model``), with the old one still read."""

from __future__ import annotations

import json

import pytest

from dist_logreg.errors import RunError, UsageError, raise_together
from dist_logreg.files import read_json
from dist_logreg.train.options import add_arguments, flag_values, load_toml


def test_read_json_names_what_and_why(tmp_path):
    good = tmp_path / "a.json"
    good.write_text('{"x": 1}')
    assert read_json(good, "model file") == {"x": 1}
    with pytest.raises(UsageError, match=r"^model file .*nope.json: not found$"):
        read_json(tmp_path / "nope.json", "model file")
    bad = tmp_path / "b.json"
    bad.write_text("{")
    with pytest.raises(UsageError, match=r"^bench file .*b.json: not a readable JSON file"):
        read_json(bad, "bench file")
    with pytest.raises(UsageError, match="is a directory"):
        read_json(tmp_path, "--run")


class Ranks:
    """``size`` ranks' views of one allgather, seen from ``rank`` (the others' errors given)."""

    def __init__(self, rank: int, errors: list):
        self.rank, self.errors = rank, errors

    def Get_size(self) -> int:
        return len(self.errors)

    def allgather(self, mine):
        out = []
        for r, e in enumerate(self.errors):
            out.append(
                mine
                if r == self.rank
                else (None if e is None else (type(e).__name__, str(e)), None)
            )
        return out


def test_raise_together_for_the_command_line():
    errors = [None, UsageError("bad file"), None]
    with pytest.raises(UsageError, match="^rank 1: bad file$"):
        raise_together(Ranks(0, errors), None)
    assert raise_together(Ranks(0, [None, None]), None, extra=7) == [7, None]


def test_raise_together_for_the_estimator():
    """The rank that saw the error re-raises its own; the others a ValueError naming it."""
    mine = TypeError("y must be 1-d")
    errors = [None, mine]
    with pytest.raises(TypeError) as info:
        raise_together(Ranks(1, errors), mine, others=ValueError)
    assert info.value is mine
    with pytest.raises(ValueError, match="^rank 1 of 2: TypeError: y must be 1-d$"):
        raise_together(Ranks(0, errors), None, others=ValueError)
    with pytest.raises(RunError):
        raise_together(Ranks(0, errors), None)  # without others: the command line's kinds


def test_the_cost_model_key_keeps_its_old_name_readable(tmp_path):
    import argparse

    old = tmp_path / "old.toml"
    old.write_text('model = "m.json"\n')
    assert load_toml(old) == {"cost_model": "m.json"}
    parser = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)
    add_arguments(parser)
    for flag in ("--cost-model", "--model"):
        assert flag_values(parser.parse_args([flag, "m.json"])) == {"cost_model": "m.json"}


def test_predict_reads_an_old_config_json(tmp_path):
    """A run saved before the rename has ``"model"`` in config.json: still the cost model."""
    import numpy as np

    from dist_logreg.train.predict import load_model

    np.savez(tmp_path / "model.npz", coef=np.array([1.0, -2.0]), intercept=np.array(0.5))
    (tmp_path / "config.json").write_text(json.dumps({"model": "auto", "steps": 3}))
    _, _, cfg = load_model(tmp_path)
    assert cfg.cost_model == "auto" and cfg.steps == 3
