"""Files as the package opens and writes them: never blocking, always strict JSON."""

import json
import math
import os

import numpy as np
import pytest

from dist_logreg.errors import UsageError
from dist_logreg.files import check_writable, regular_file, strict_json, write_json


def test_strict_json_maps_non_finite_numbers_to_null(tmp_path):
    obj = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": np.float64("nan")}, "e": 2}
    text = strict_json(obj)
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": {"d": None}, "e": 2}
    assert "NaN" not in text and "Infinity" not in text
    write_json(tmp_path / "x.json", obj)
    assert json.loads((tmp_path / "x.json").read_text())["a"] is None
    with pytest.raises(TypeError):  # anything not JSON is an error, not silently written
        strict_json({"x": object()})


def test_regular_file_refuses_what_could_block(tmp_path):
    (tmp_path / "f").write_text("x")
    assert regular_file(tmp_path / "f", "data file") == tmp_path / "f"
    os.mkfifo(tmp_path / "p")
    with pytest.raises(UsageError, match=r"data file .*p: expected a regular file, got a FIFO"):
        regular_file(tmp_path / "p", "data file")
    with pytest.raises(UsageError, match="got a device"):
        regular_file("/dev/zero", "config file")
    with pytest.raises(UsageError, match="is a directory"):
        regular_file(tmp_path, "data file")
    with pytest.raises(UsageError, match="not found"):
        regular_file(tmp_path / "nope", "data file")


def test_check_writable(tmp_path):
    check_writable(tmp_path / "sub" / "b.json", "--out")  # makes the folder
    assert (tmp_path / "sub").is_dir() and not list((tmp_path / "sub").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"--out .*file/b.json: cannot write there"):
        check_writable(tmp_path / "file" / "b.json", "--out")
    with pytest.raises(UsageError, match="is a directory"):
        check_writable(tmp_path, "--out")
