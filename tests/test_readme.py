"""The README is one screen, then links; its commands are the ones CI and the docs run.

The README sets up the shell once, before its first command (venv activated, the root and
oversubscription variables exported); every command of the README, the docs pages and the
``--help`` examples must then run as written on a 2-core machine: ``--oversubscribe``
wherever ``mpirun`` starts more than 2 ranks. ``.ci/run`` runs the README's test command
verbatim. Running the pages' commands is ``tests/test_docs.py``'s job (the README's are
Getting started's).
"""

import re

import pytest

from dist_logreg.cli.bench import BENCH_EPILOG
from dist_logreg.cli.supervise import SUPERVISE_EPILOG
from dist_logreg.cli.train import TRAIN_EPILOG
from tests.docs_blocks import blocks, pages, shell_blocks
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()
README_LIMIT = 12 * 1024  # bytes: one screen, then links
CORES = 2  # the machine every command must run on as written


def inline_commands(text: str) -> list[str]:
    """Whole commands quoted in the prose, such as `mpirun -n 3 ... train --steps 10`."""
    pattern = r"`((?:mpirun -n \d+|dist-logreg (?:train|bench|supervise) --)[^`]*)`"
    return [" ".join(c.split()) for c in re.findall(pattern, text)]


def epilog_commands(epilog: str) -> list[str]:
    joined = epilog.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", x).strip() for x in joined.splitlines()]
    return [" ".join(x.split()) for x in lines if x.startswith(("mpirun", "dist-logreg"))]


README_BLOCKS = [b for b in blocks("README.md", README) if b.lang == "sh"]
ALL = [c for b in shell_blocks() for c in b.commands()]
ALL += [c for text in pages().values() for c in inline_commands(text)]
HELP = [c for e in (TRAIN_EPILOG, BENCH_EPILOG, SUPERVISE_EPILOG) for c in epilog_commands(e)]


def test_there_are_commands_to_check():
    assert len(ALL) > 40 and len(HELP) > 10


def test_the_readme_is_one_screen_then_links():
    size = len(README.encode())
    assert size <= README_LIMIT, f"README.md is {size} bytes, expected at most {README_LIMIT}"
    assert len(README_BLOCKS) == 2, "expected exactly two commands: install and run, the tests"
    install, tests = (b.commands() for b in README_BLOCKS)
    assert install[-1] == "mpirun -n 4 --oversubscribe dist-logreg train"
    assert tests[-1].endswith("-m pytest")
    for page in re.findall(r"\]\((docs/[^)#]+)\)", README):
        assert (ROOT / page).exists(), f"README.md links to {page}, which does not exist"


def test_ci_runs_the_readmes_test_command_verbatim():
    test_command = README_BLOCKS[-1].commands()[-1]
    ci = [" ".join(x.split()) for x in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci, f".ci/run does not run {test_command!r}"


@pytest.mark.parametrize("cmd", ALL + HELP)
def test_more_ranks_than_cores_carry_oversubscribe(cmd):
    for ranks in re.findall(r"mpirun(?: -x \S+)* -n (\d+)", cmd):
        if int(ranks) > CORES and "--hostfile" not in cmd:
            assert "--oversubscribe" in cmd, f"{cmd!r} starts {ranks} ranks on {CORES} cores"


def test_the_shell_is_set_up_before_the_first_command():
    first = README.index("\nmpirun ")
    for setup in (
        ". .venv/bin/activate",
        "OMPI_ALLOW_RUN_AS_ROOT=1",
        "OMPI_MCA_mpi_yield_when_idle=1",
    ):
        assert 0 <= README.index(setup) < first, f"{setup} comes after the first command"
