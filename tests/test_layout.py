"""The package layout: no import cycles, no MPI in the operations tools, small modules."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "dist_logreg"


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every package module ``name`` imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for t in targets:
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            parts = t.split(".")
            for k in range(1, len(parts) + 1):
                prefix = ".".join(parts[:k])
                if prefix in known and prefix != name:
                    found.add(prefix)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules, or None (depth-first search with colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            # A package's __init__ importing its own submodule is not a cycle back.
            if colour.get(m) == 1 and not n.startswith(m + "."):
                return stack[stack.index(m) :] + [m]
            if m not in colour:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        colour[n] = 2
        return None

    for n in sorted(graph):
        if n not in colour:
            found = visit(n)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "dist_logreg.cli.main" in graph and graph["dist_logreg.cli.main"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph between folders (packages): a module stands for its package, and a
    package's own modules and subpackages are inside it, not arrows out of it."""

    def folder(name: str) -> str:
        path = modules()[name]
        return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        src = folder(name)
        mine = out.setdefault(src, set())
        for d in deps:
            dst = folder(d)
            # an arrow into a folder's own subfolder, or out to the folder holding it, is
            # inside one folder's tree: only arrows between unrelated folders count
            if not (dst.startswith(src + ".") or src.startswith(dst + ".") or dst == src):
                mine.add(dst)
    for deps in list(out.values()):
        for d in deps:
            out.setdefault(d, set())
    return out


def test_the_folder_graph_sees_a_cycle_between_folders():
    graph = {"p.a.x": {"p.b.y"}, "p.b.y": {"p.a.z"}, "p.a.z": set()}
    assert find_cycle(graph) is None  # no cycle between files...
    folders = {"p.a": {"p.b"}, "p.b": {"p.a"}}  # ...but one between folders
    assert find_cycle(folders) == ["p.a", "p.b", "p.a"]


def test_no_import_cycle_between_folders():
    """Not only files: the arrows between folders run one way (cli -> train -> record ...)."""
    graph = folder_graph(import_graph())
    assert graph["dist_logreg.train"] and "dist_logreg.record" in graph["dist_logreg.train"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_comm_knows_nothing_of_training():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("dist_logreg.comm"):
            bad = [d for d in deps if d.startswith(("dist_logreg.train", "dist_logreg.record"))]
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize(
    "module",
    [
        "dist_logreg.ops.supervise",
        "dist_logreg.ops.cluster",
        "dist_logreg.cli",
        "dist_logreg.report.build",  # dist-logreg report runs where no MPI is
        # `dist-logreg model fit|predict` is a plain process: the cost model is pure
        "dist_logreg.collective.costfit",
        "dist_logreg.collective.benchfit",
        "dist_logreg.collective.whatif",
        "dist_logreg.ops.scale",
        # the pure side of communication: every module of collective/
        *sorted(
            f"dist_logreg.collective.{f.stem}"
            for f in (PACKAGE / "collective").glob("*.py")
            if f.stem != "__init__"
        ),
    ],
)
def test_operations_tools_do_not_load_mpi(module):
    code = f"import sys, {module}; print('mpi4py.MPI' in sys.modules, 'mpi4py' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"], f"{module} loads MPI: {r.stdout}"


def test_modules_stay_small():
    big = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    big = {n: k for n, k in big.items() if k > 400}
    assert not big, f"modules over 400 lines (one job per module): {big}"


#: String literals equal to an algorithm name that are not one: the run block's key that
#: names the MPI library (an output contract older than the table).
NOT_ALGORITHMS = {("dist_logreg/record/provenance.py", "mpi")}


def test_algorithm_names_are_spelled_in_the_table_only():
    """Every other module reads the table (iterates it, or its named constants), so an
    algorithm is added, renamed or dropped in one place."""
    from dist_logreg.collective import algorithms

    names = set(algorithms.names())
    assert {"mpi", "ring", "hierarchical"} <= names
    table = PACKAGE / "collective" / "algorithms.py"
    found = []
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if f == table:
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                if (rel, node.value) not in NOT_ALGORITHMS:
                    found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, "algorithm names outside collective/algorithms.py: " + ", ".join(found)


def test_functions_stay_short():
    """No function over 80 lines: a long one is cut into named blocks (as the loop is)."""
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, f"functions over 80 lines: {long}"


def test_package_tables_list_every_module():
    """A package docstring's table of modules (````name````  what) names every module and
    subpackage it holds, and nothing that is gone."""
    import re

    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        listed = set(re.findall(r"^``(\w+)``\s{2,}", doc, re.M))  # table rows
        if not listed:
            continue
        here = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"}
        here |= {p.parent.name for p in init.parent.glob("*/*.py")}  # subpackages
        where = init.parent.relative_to(ROOT)
        assert listed == here, f"{where}: missing {here - listed}, gone {listed - here}"
