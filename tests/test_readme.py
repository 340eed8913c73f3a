"""Every command in the README runs as written on a 2-core machine.

The README sets up the shell once, before its first command (venv activated, the root and
oversubscription variables exported); every later command must then run as written. This
test checks that statically for every command of the README and of the ``--help`` examples
(``--oversubscribe`` wherever ``mpirun`` starts more than 2 ranks), and runs every
``train``, ``bench`` and ``supervise`` command of the README in that shell. It does not run
the cluster, docker, launch and benchmark commands: they need root, a container engine,
other nodes or minutes of a quiet machine.
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
#: Commands that need what a test cannot assume (root, an engine, nodes) or take minutes.
NOT_RUN = ("cluster", "docker", "launch/", "--hostfile", "sbatch", "pytest", "benchmarks/",
           "pip ", "module ", "run-cluster")  # fmt: skip
CORES = 2  # the machine every README command must run on as written


def shell_lines(text: str) -> list[str]:
    """Commands of the ```sh blocks: continuations joined, comments dropped."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
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


ALL = shell_lines(README) + inline_commands(README)
HELP = [c for e in (TRAIN_EPILOG, BENCH_EPILOG, SUPERVISE_EPILOG) for c in epilog_commands(e)]
RUN = list(dict.fromkeys(
    c for c in ALL
    if c.startswith(("mpirun", "dist-logreg"))
    and re.search(r"dist-logreg (train|bench|supervise)\b", c)
    and not any(s in c for s in NOT_RUN)
))  # fmt: skip


def test_the_readme_has_commands_to_check():
    assert len(ALL) > 15 and len(HELP) > 10
    assert any("supervise" in c for c in RUN) and any("bench" in c for c in RUN)
    assert any("--config run.toml" in c for c in RUN)


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
    return re.search(r"```toml\n# run.toml\n(.*?)```", README, re.S).group(1)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("cmd", RUN)
def test_readme_command_runs_as_written(tmp_path, cmd):
    (tmp_path / "run.toml").write_text(toml_example())  # the README's own config file
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=240,
                       env=readme_shell(), cwd=tmp_path, start_new_session=True)  # fmt: skip
    tail = f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert r.returncode == 0, f"{cmd}\n{tail}"
    if "supervise" in cmd and "--inject-fault" in cmd:  # recovered from the fault it injected
        assert "injected fault" in r.stderr and "completed after 1 failure(s)" in r.stdout, tail
