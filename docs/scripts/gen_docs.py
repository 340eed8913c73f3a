"""Regenerate what the docs show that the code produces: printed outputs and pictures.

    python docs/scripts/gen_docs.py                  # every output block and every image
    python docs/scripts/gen_docs.py --only held-out,predict
    python docs/scripts/gen_docs.py --list           # the recipes and the pages they fill

Run it from the repository root in the shell the docs set up (venv active, the Open MPI
exports). Each recipe runs the commands its page shows, in a scratch directory that looks
like the repository root (``docs/``, ``benchmarks/`` ... linked in), and writes

- the fenced block right after ``<!-- gen: NAME -->`` on its page (the block's language and
  any ``$ command`` lines of a ``console`` block are kept; what follows them is replaced),
- or the Markdown between ``<!-- gen: NAME -->`` and ``<!-- /gen: NAME -->``,
- or, for an image recipe, ``docs/images/NAME.png``.

The numbers are this machine's, as the pages say. The fabric plots (bytes per link,
flow-to-spine) are drawn from the constructed run of ``tests/fake_runs.py`` unless a cluster
run is available; their captions say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
#: What a scratch directory links in, so commands written for the repository root run there.
LINKED = ("benchmarks", "docs", "launch", "docker", "tests", "mkdocs.yml", "pyproject.toml")


def shell_env() -> dict[str, str]:
    """The docs' shell: the running interpreter's bin first on PATH, the Open MPI exports."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "100"
    return env


def sandbox(d: Path) -> Path:
    """Make ``d`` look like the repository root: its folders linked in, outputs stay in ``d``."""
    for name in LINKED:
        if (ROOT / name).exists() and not (d / name).exists():
            (d / name).symlink_to(ROOT / name)
    return d


class Shell:
    """Runs commands in one scratch directory, remembering each command's output."""

    def __init__(self, cwd: Path):
        self.cwd, self.env, self.seen = cwd, shell_env(), {}

    def __call__(self, cmd: str, timeout: float = 900) -> str:
        if cmd not in self.seen:
            r = subprocess.run(
                ["bash", "-c", cmd],
                cwd=self.cwd,
                env=self.env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                start_new_session=True,
            )
            if r.returncode != 0:
                raise RuntimeError(f"{cmd}: exit status {r.returncode}\n{r.stdout[-3000:]}")
            self.seen[cmd] = r.stdout
        return self.seen[cmd]


@dataclass(frozen=True)
class Recipe:
    name: str
    page: str  # "README.md", "docs/index.md"; for an image: the page that shows it
    group: str  # recipes of one group share a scratch directory, in order
    make: Callable[[Shell], str | Path]  # block text, or the PNG file to copy
    image: bool = False  # docs/images/NAME.png, not a block on the page


RECIPES: list[Recipe] = []


def recipe(name: str, page: str, group: str, image: bool = False):
    def add(fn):
        RECIPES.append(Recipe(name, page, group, fn, image))
        return fn

    return add


def pick(text: str, keep: Callable[[str], bool]) -> str:
    return "\n".join(x for x in text.splitlines() if keep(x))


def section(text: str, start: str, stop: str | None = None) -> list[str]:
    """The lines from the first starting with ``start`` up to (without) one with ``stop``."""
    lines = text.splitlines()
    i = next(k for k, x in enumerate(lines) if x.startswith(start))
    j = next((k for k in range(i + 1, len(lines)) if stop and lines[k].startswith(stop)), None)
    return lines[i:j]


def console(cmd: str, output: str) -> str:
    return f"$ {cmd}\n{output.rstrip()}"


# --- Getting started and the README ---------------------------------------------------
TRAIN = "mpirun -n 4 --oversubscribe dist-logreg train"
SUMMARY = (
    "done:",
    "  final loss",
    "  allreduce [",
    "    latency",
    "    bandwidth",
    "    per call",
    "  time per rank",
    "    total",
    "    data",
    "    comm ",
    "  comm fraction",
    "  outputs",
)


@recipe("train-default", "docs/index.md", "start")
def _train_default(sh: Shell) -> str:
    return sh(TRAIN).rstrip()


@recipe("train-default-summary", "README.md", "start")
def _train_summary(sh: Shell) -> str:
    return pick(sh(TRAIN), lambda x: x.startswith(SUMMARY))


# --- Study your allreduce -----------------------------------------------------------------
@recipe("traffic-ring", "docs/allreduce.md", "allreduce")
def _traffic(sh: Shell) -> str:
    sh(
        "mpirun -n 3 --oversubscribe dist-logreg train --allreduce ring --features 9 --steps 10 "
        "--out runs/t"
    )
    t = json.loads((sh.cwd / "runs/t/traffic.json").read_text())
    rows = {k: json.dumps(t[k]) for k in ("bytes", "messages")}
    head = json.dumps({"algorithm": t["algorithm"], "observed": t["observed"]})[:-1]
    return f'{head},\n "bytes": {rows["bytes"]},\n "messages": {rows["messages"]}}}'


# --- Data and predict -----------------------------------------------------------------------
HELD_OUT = (
    "mpirun -n 2 dist-logreg train --data train.svm --val-data val.svm --eval-every 25 "
    "--batch-size 256 --steps 100 --out runs/a"
)


@recipe("held-out", "docs/data.md", "data")
def _held_out(sh: Shell) -> str:
    sh("python docs/scripts/make_data.py")
    out = sh(HELD_OUT).splitlines()
    head = out[:3]
    mid = [x for x in out if x.startswith("  step  50/")]
    done = section("\n".join(out), "done:")[:3]
    shown = HELD_OUT.replace(" --batch-size", " \\\n      --batch-size")
    return "\n".join([f"$ {shown}", *head, "  ...", *mid, "  ...", *done, "  ..."])


@recipe("predict", "docs/predict.md", "predict")
def _predict(sh: Shell) -> str:
    sh("python docs/scripts/make_data.py")
    sh("mpirun -n 2 dist-logreg train --data train.svm --val-data val.svm --steps 100 --out runs/a")
    cmd = "dist-logreg predict --model runs/a --data test.svm --out preds.csv"
    return "\n".join([console(cmd, sh(cmd)), console("head -3 preds.csv", sh("head -3 preds.csv"))])


# --- The cost model -------------------------------------------------------------------------
SWEEP = "--allreduce mpi,ring,recursive-doubling,rabenseifner --min-bytes 16K --max-bytes 4M"
SWEEP += " --factor 4"


@recipe("model-fit", "docs/cost-model.md", "cost")
def _model_fit(sh: Shell) -> str:
    sh(f"mpirun -n 2 dist-logreg bench {SWEEP} --out b2.json")
    sh(f"mpirun -n 3 --oversubscribe dist-logreg bench {SWEEP} --out b3.json --fit model.json")
    return sh("dist-logreg model fit b2.json b3.json --out model.json").rstrip()


@recipe("model-predict", "docs/cost-model.md", "cost")
def _model_predict(sh: Shell) -> str:
    out = sh(
        "dist-logreg model predict --model model.json --ranks 512 --link-rate 400G "
        "--bytes 64K,1M,16M,256M"
    )
    tables = out.split("\n\n")
    keep = [tables[0], *[t for t in tables if t.startswith(("ring\n", "rabenseifner\n"))]]
    tail = [x for x in tables[-1].splitlines() if x.startswith(("fastest", "crossovers", "note"))]
    return "\n\n".join(keep) + "\n...\n" + "\n".join(tail[:4])


@recipe("model-auto", "docs/cost-model.md", "cost")
def _model_auto(sh: Shell) -> str:
    out = sh(
        "mpirun -n 3 --oversubscribe dist-logreg train --steps 50 --model auto "
        "--inject-fault stall:rank=2:step=5:seconds=0.3 --out runs/auto"
    )
    return "\n".join(section(out, "  model ", "  outputs"))


# --- Fault tolerance -----------------------------------------------------------------------
SUPERVISE = (
    "dist-logreg supervise --restarts 2 --min-ranks 2 -- mpirun -n 3 --oversubscribe "
    "dist-logreg train --steps 200 --checkpoint-every 50 --out runs/sup "
    "--inject-fault kill:rank=2:step=120"
)


@recipe("supervise", "docs/fault-tolerance.md", "faults")
def _supervise(sh: Shell) -> str:
    shown = ("dist-logreg: injected", "dist-logreg supervise:", "resuming from")
    lines = [x for x in sh(SUPERVISE).splitlines() if x.startswith(shown)]
    return "\n".join([*lines[:-1], "...", lines[-1]])


# --- Reports and their pictures --------------------------------------------------------------
REPORT = (
    "mpirun -n 3 --oversubscribe dist-logreg train --allreduce ring --tag ring --out runs/ring "
    "--steps 100 --inject-fault stall:rank=2:step=60:seconds=0.05",
    "mpirun -n 3 --oversubscribe dist-logreg train --allreduce rabenseifner --tag rab "
    "--out runs/rab --steps 100",
    "mpirun -n 2 dist-logreg bench --allreduce mpi,ring --max-bytes 4M --tag shm --out bench.json",
    "dist-logreg report runs/ring --out one",
    "dist-logreg report runs/ring runs/rab --out cmp",
    "dist-logreg report bench.json --link-rate 1gbit --out bench-report",
)


def _report(sh: Shell) -> Path:
    for cmd in REPORT:
        sh(cmd)
    return sh.cwd


@recipe("report-stragglers", "docs/report.md", "report")
def _stragglers(sh: Shell) -> str:
    md = (_report(sh) / "one/report.md").read_text()
    return "\n".join(section(md, "| rank | host", "\n")[: 2 + 3])


def _image(name: str, page: str, group: str, path: str, make=_report):
    recipe(name, page, group, image=True)(lambda sh: make(sh) / path)


_image("report-lateness", "docs/report.md", "report", "one/lateness.png")
_image("report-step-time", "docs/report.md", "report", "one/step-time.png")
_image("report-latency-cdf", "docs/report.md", "report", "one/latency-cdf.png")
_image("report-traffic", "docs/report.md", "report", "one/traffic.png")
_image("report-bench-busbw", "docs/report.md", "report", "bench-report/bench-busbw.png")


def _fake_fabric(sh: Shell) -> Path:
    """The constructed run of the report tests (no cluster run here), reported."""
    if not (sh.cwd / "fake-report").exists():
        sys.path.insert(0, str(ROOT))
        from tests.fake_runs import write_train_run

        write_train_run(sh.cwd / "fake", p=4, tag="constructed", fabric=True)
        sh("dist-logreg report fake --out fake-report")
    return sh.cwd / "fake-report"


_image("report-links", "docs/report.md", "fabric", "links.png", _fake_fabric)
_image("report-flows", "docs/report.md", "fabric", "flows.png", _fake_fabric)


# --- Writing into the pages -------------------------------------------------------------------
def fill(text: str, name: str, body: str) -> str:
    """``text`` with the block after ``<!-- gen: name -->`` holding ``body``."""
    marker = f"<!-- gen: {name} -->"
    if marker not in text:
        raise ValueError(f"expected {marker} in the page, found none")
    end = f"<!-- /gen: {name} -->"
    if end in text:
        pattern = re.compile(re.escape(marker) + r"\n.*?" + re.escape(end), re.S)
        return pattern.sub(lambda m: f"{marker}\n{body.rstrip()}\n{end}", text, count=1)
    fence = r"\n((?:<!--[^\n]*-->\n)*)```([\w-]*)\n(.*?)^```"
    pattern = re.compile(re.escape(marker) + fence, re.S | re.M)
    m = pattern.search(text)
    if not m:
        raise ValueError(f"expected a fenced block after {marker}")
    block = f"{marker}\n{m.group(1)}```{m.group(2)}\n{body.rstrip()}\n```"
    return text[: m.start()] + block + text[m.end() :]


def run(names: set[str] | None) -> list[str]:
    done, shells = [], {}
    with tempfile.TemporaryDirectory(prefix="dist-logreg-docs-") as tmp:
        for r in RECIPES:
            if names and r.name not in names:
                continue
            if r.group not in shells:
                (Path(tmp) / r.group).mkdir()
                shells[r.group] = Shell(sandbox(Path(tmp) / r.group))
            result = r.make(shells[r.group])
            if isinstance(result, Path):
                IMAGES.mkdir(exist_ok=True)
                shutil.copyfile(result, IMAGES / f"{r.name}.png")
                done.append(f"docs/images/{r.name}.png")
            else:
                page = ROOT / r.page
                page.write_text(fill(page.read_text(), r.name, result))
                done.append(f"{r.page}: {r.name}")
            print(f"gen_docs: {done[-1]}", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated recipe names (default: all)")
    ap.add_argument("--list", action="store_true", help="list the recipes and exit")
    a = ap.parse_args(argv)
    if a.list:
        for r in RECIPES:
            print(f"{r.name:24} {r.page}")
        return 0
    names = set(a.only.split(",")) if a.only else None
    unknown = (names or set()) - {r.name for r in RECIPES}
    if unknown:
        ap.error(f"--only: expected recipe names, got {', '.join(sorted(unknown))}")
    run(names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
