"""Every command in the README and the docs pages runs as written on a 2-core machine.

The README and Getting started set up the shell once, before their first command (venv
activated, the root and oversubscription variables exported); every later command must then
run as written. This test checks that statically for every command of the README, of every
page under ``docs/`` and of the ``--help`` examples (``--oversubscribe`` wherever ``mpirun``
starts more than 2 ranks), and runs every ``train``, ``bench`` and ``supervise`` command of
the unmarked blocks in that shell. A block after ``<!-- needs: root -->`` (or ``slow``,
``cluster``, ``docker``) is not run: it needs root, other nodes, an engine or minutes.
"""

import os
import re
import subprocess

import pytest

from dist_logreg.cli.bench import BENCH_EPILOG
from dist_logreg.cli.supervise import SUPERVISE_EPILOG
from dist_logreg.cli.train import TRAIN_EPILOG
from tests.conftest import BIN, ROOT

README = (ROOT / "README.md").read_text()
PAGES = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
#: Commands that need what a test cannot assume (root, an engine, nodes) or take minutes.
NOT_RUN = ("cluster", "docker", "launch/", "--hostfile", "sbatch", "pytest", "benchmarks/",
           "pip ", "module ", "run-cluster")  # fmt: skip
CORES = 2  # the machine every README command must run on as written
#: The marker on the line before a fence for a block that is checked, not run.
MARKER = re.compile(r"<!-- needs: ([a-z, ]+) -->\n$")
README_LIMIT = 12 * 1024  # bytes: one screen, then links


def shell_blocks(text: str, marked: bool = False) -> list[str]:
    """The bodies of the ```sh blocks (``marked``: only those with a needs marker, else none)."""
    out = []
    for m in re.finditer(r"```sh\n(.*?)```", text, re.S):
        if bool(MARKER.search(text[: m.start()][-60:])) == marked:
            out.append(m.group(1))
    return out


def shell_lines(text: str, marked: bool = False) -> list[str]:
    """Commands of the ```sh blocks: continuations joined, comments dropped."""
    out = []
    for block in shell_blocks(text, marked):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if line:
                out.append(" ".join(line.split()))
    return out


def inline_commands(text: str) -> list[str]:
    """Whole commands quoted in the prose, such as `mpirun -n 3 ... train --steps 10`."""
    pattern = r"`((?:mpirun -n \d+|dist-logreg (?:train|bench|supervise) --)[^`]*)`"
    return [" ".join(c.split()) for c in re.findall(pattern, text)]


def epilog_commands(epilog: str) -> list[str]:
    joined = epilog.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", x).strip() for x in joined.splitlines()]
    return [" ".join(x.split()) for x in lines if x.startswith(("mpirun", "dist-logreg"))]


TEXTS = [README, *PAGES.values()]
UNMARKED = [c for text in TEXTS for c in shell_lines(text) + inline_commands(text)]
ALL = UNMARKED + [c for text in TEXTS for c in shell_lines(text, marked=True)]
HELP = [c for e in (TRAIN_EPILOG, BENCH_EPILOG, SUPERVISE_EPILOG) for c in epilog_commands(e)]
RUN = list(dict.fromkeys(
    c for c in UNMARKED
    if c.startswith(("mpirun", "dist-logreg"))
    and re.search(r"dist-logreg (train|bench|supervise)\b", c)
    and not any(s in c for s in NOT_RUN)
))  # fmt: skip


def test_the_docs_have_commands_to_check():
    assert len(ALL) > 15 and len(HELP) > 10
    assert any("supervise" in c for c in RUN) and any("bench" in c for c in RUN)
    assert any("--config run.toml" in c for c in RUN)


def test_the_readme_is_one_screen_then_links():
    assert len(README.encode()) <= README_LIMIT, f"README.md is {len(README.encode())} bytes"
    assert len(shell_blocks(README)) == 2, "the README has exactly two set-up-to-result commands"
    for page in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / page).exists() or page == "docs/design.md", page


def test_ci_runs_the_readmes_test_command_verbatim():
    test_command = shell_lines(README)[-1]
    assert "pytest" in test_command
    ci = [" ".join(x.split()) for x in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci, f".ci/run does not run {test_command!r}"


@pytest.mark.parametrize("cmd", ALL + HELP)
def test_more_ranks_than_cores_carry_oversubscribe(cmd):
    for ranks in re.findall(r"mpirun(?: -x \S+)* -n (\d+)", cmd):
        if int(ranks) > CORES and "--hostfile" not in cmd:
            assert "--oversubscribe" in cmd, f"{cmd!r} starts {ranks} ranks on {CORES} cores"


def test_the_shell_is_set_up_before_the_first_command():
    first = min(
        README.index(f"\n{c.split()[0]} ") for c in shell_lines(README) if c.startswith("mpirun")
    )
    for setup in (". .venv/bin/activate", "OMPI_ALLOW_RUN_AS_ROOT=1",
                  "OMPI_MCA_mpi_yield_when_idle=1"):  # fmt: skip
        assert 0 <= README.index(setup) < first, f"{setup} comes after the first command"


def readme_shell() -> dict[str, str]:
    """The environment after the README's set-up lines (venv activated, exports)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    for line in shell_lines(README):
        if line.startswith("export "):
            for pair in line.split()[1:]:
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def toml_example() -> str:
    return re.search(r"```toml\n# run.toml\n(.*?)```", PAGES["train.md"], re.S).group(1)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("cmd", RUN)
def test_readme_command_runs_as_written(tmp_path, cmd):
    (tmp_path / "run.toml").write_text(toml_example())  # the docs' own config file
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=240,
                       env=readme_shell(), cwd=tmp_path, start_new_session=True)  # fmt: skip
    tail = f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert r.returncode == 0, f"{cmd}\n{tail}"
    if "supervise" in cmd and "--inject-fault" in cmd:  # recovered from the fault it injected
        assert "injected fault" in r.stderr and "completed after 1 failure(s)" in r.stdout, tail
