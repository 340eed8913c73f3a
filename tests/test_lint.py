"""The code is formatted and linted with ruff (configuration in pyproject.toml)."""

import shutil
import subprocess

import pytest

from tests.helpers import BIN, ROOT


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    ruff = BIN / "ruff" if (BIN / "ruff").exists() else shutil.which("ruff")
    assert ruff, "ruff is a test dependency: pip install -e '.[test]'"
    result = subprocess.run(
        [str(ruff), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
