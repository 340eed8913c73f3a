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


def test_no_fmt_skip():
    """The length caps are for readability: code packed past the formatter defeats them."""
    here = ROOT
    marker = "fmt: " + "skip"  # spelled in two parts so this file does not find itself
    found = [
        f"{f.relative_to(here)}:{i}"
        for folder in ("dist_logreg", "tests", "benchmarks", "docs")
        for f in sorted((here / folder).rglob("*.py"))
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if marker in line
    ]
    assert not found, f"'# {marker}' at {found}"
