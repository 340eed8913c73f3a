"""The package layout: no import cycles, no MPI in the operations tools, small modules."""

import ast
import re
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


def _targets(node: ast.AST, package: str) -> list[str]:
    """The modules one node imports: ``import``, ``from ... import``, and
    ``importlib.import_module("a.b")`` with a string literal (an import all the same)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        return [module] + [f"{module}.{a.name}" for a in node.names]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def _within(targets: list[str], name: str, known: dict[str, Path]) -> set[str]:
    """The package modules among ``targets`` (importing a.b.c runs a/__init__, a/b/__init__)."""
    found = set()
    for t in targets:
        parts = t.split(".")
        for k in range(1, len(parts) + 1):
            prefix = ".".join(parts[:k])
            if prefix in known and prefix != name:
                found.add(prefix)
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every package module ``name`` imports, at the top, inside functions, or through
    ``importlib.import_module`` with a literal name."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets += _targets(node, package)
    return _within(targets, name, known)


#: ``"dist_logreg.comm.base:MPIAllreduce"``: a table naming a class it loads only when asked.
LAZY = re.compile(r"(dist_logreg(?:\.\w+)+):(\w+)")


def lazy_references(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Package modules that ``name`` names in ``"module:Class"`` string literals."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = LAZY.fullmatch(node.value)
            if m:
                assert m.group(1) in known, f"{name}: {node.value!r} names no module"
                found.append(m.group(1))
    return _within(found, name, known)


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


#: The arrows of docs/design.md's diagram ("Layers and their arrows"): which top-level folder
#: imports which (ops/cluster is in ops). A new arrow, or one gone, is a design change: the
#: diagram and this table change together.
ARROWS = {
    "cli": {"train", "bench", "comm", "collective", "record", "report", "ops", "sim"},
    "train": {"record", "bench", "comm", "collective"},
    "bench": {"record", "comm", "collective"},
    "comm": {"collective"},
    "record": {"collective"},
    "report": {"record", "ops", "collective"},
    "ops": {"train", "collective"},
    "sim": {"collective"},
    "collective": set(),
}
#: The diagram's dashed arrow: the algorithm table names each runner as ``"module:Class"``
#: and loads it only when a run asks for it (collective/ itself never loads comm/).
LAZY_ARROWS = {"collective": {"comm"}}
#: Modules at the top of the package: the shared ones every folder may import (they import
#: no folder), and the two entry points with the folders they use.
SHARED = {"errors", "units", "files", "protocol", "schema"}
ENTRIES = {"estimator": {"train"}, "__main__": {"cli"}}


def top_level(name: str) -> str:
    """``dist_logreg.ops.cluster.up`` -> ``ops``; a module at the top keeps its own name."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def top_arrows(lazy: bool = False) -> dict[str, set[str]]:
    known = modules()
    find = lazy_references if lazy else imports_of
    out: dict[str, set[str]] = {}
    for name, path in known.items():
        src = top_level(name)
        if src:
            deps = {top_level(d) for d in find(name, path, known)}
            out.setdefault(src, set()).update(deps - {src, ""})
    return out


def test_the_import_finder_sees_importlib_and_lazy_references(tmp_path):
    code = (
        "import importlib\n"
        "def f():\n"
        "    return importlib.import_module('dist_logreg.sim.spec')\n"
        "RUNNER = 'dist_logreg.comm.base:MPIAllreduce'\n"
    )
    f = tmp_path / "m.py"
    f.write_text(code)
    known = modules()
    assert imports_of("dist_logreg.x.m", f, known) >= {"dist_logreg.sim.spec"}
    assert lazy_references("dist_logreg.x.m", f, known) >= {"dist_logreg.comm.base"}


def test_folder_arrows_are_the_designs():
    """Every arrow between top-level folders is one the design draws, and every arrow it
    draws is in the code."""
    arrows = top_arrows()
    folders = {k: v - SHARED - set(ENTRIES) for k, v in arrows.items() if k not in SHARED}
    for entry in ENTRIES:
        folders.pop(entry, None)
    assert folders == ARROWS, {
        k: {
            "not drawn": sorted(folders.get(k, set()) - v),
            "drawn, not in the code": sorted(v - folders.get(k, set())),
        }
        for k, v in ARROWS.items()
        if folders.get(k) != v
    }
    for shared in SHARED:
        assert arrows.get(shared, set()) <= SHARED, f"{shared} imports {arrows[shared]}"
    for entry, uses in ENTRIES.items():
        assert arrows.get(entry, set()) - SHARED == uses, f"{entry} imports {arrows[entry]}"
    lazy = {k: v for k, v in top_arrows(lazy=True).items() if v - {k}}
    assert lazy == LAZY_ARROWS


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
        # the pure side of communication, and the fabric simulator: every module of each
        *sorted(
            f"dist_logreg.{f.parent.name}.{f.stem}"
            for folder in ("collective", "sim")
            for f in (PACKAGE / folder).glob("*.py")
            if f.stem != "__init__"
        ),
    ],
)
def test_operations_tools_do_not_load_mpi(module):
    code = f"import sys, {module}; print('mpi4py.MPI' in sys.modules, 'mpi4py' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if r.returncode and "ns3 package is not installed" in r.stderr:
        # the packet engine refuses to import without ns-3 (it imports ns-3 itself lazily)
        pytest.skip(f"{module} needs the packet extra (ns-3)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"], f"{module} loads MPI: {r.stdout}"


def test_modules_stay_small():
    big = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    big = {n: k for n, k in big.items() if k > 400}
    assert not big, f"modules over 400 lines (one job per module): {big}"


#: String literals equal to an algorithm name that are not one: the run block's key that
#: names the MPI library (an output contract older than the table).
# the run block's "mpi" key (the library's version), written by provenance, read by report
NOT_ALGORITHMS = {
    ("dist_logreg/record/provenance.py", "mpi"),
    ("dist_logreg/report/benchfile.py", "mpi"),
    ("dist_logreg/report/trainfile.py", "mpi"),
}


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
        here = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"}
        here |= {p.parent.name for p in init.parent.glob("*/*.py")}  # subpackages
        where = init.parent.relative_to(ROOT)
        if not listed and len(here) < 2:
            continue  # a package of one module (or of data files) needs no table
        assert listed == here, f"{where}: missing {here - listed}, gone {listed - here}"
