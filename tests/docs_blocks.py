"""The fenced blocks of the README and the docs pages, and the commands in them.

Shared by ``tests/test_docs.py`` and ``tests/test_readme.py``. The conventions are those of
``docs/writing-docs.md``: a shell block is ```` ```sh ````, ```` ```bash ````, ```` ```shell ````
or ```` ```console ```` (where only ``$ `` lines are commands); a marker
``<!-- needs: root -->`` (or ``slow``, ``cluster``, ``docker``, several separated by commas)
on the line right before the fence makes a block checked, not run.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SHELL = ("sh", "bash", "shell", "console")
NEEDS = ("root", "slow", "cluster", "docker")
MARKER = re.compile(r"<!-- needs: ([a-z, ]+) -->")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
#: Lines of the shell set-up: the installation, exercised by .ci/run, not by the docs test
#: (it runs in the environment those lines make).
SETUP = ("python3 -m venv", ". .venv/bin/activate", "export ", "pip install", ".venv/bin/pip ")
#: Programs whose first word after them is a sub-command of dist-logreg.
FRONTS = ("dist-logreg", "run-cluster")


@dataclass(frozen=True)
class Block:
    page: str  # "README.md" or "docs/train.md"
    line: int  # the fence's line, 1-based
    lang: str
    needs: frozenset[str]
    body: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """The block's commands: continuations joined, comments dropped, one per line."""
        body = self.body.replace("\\\n", " ")
        if self.lang == "console":
            lines = [x[2:] for x in body.splitlines() if x.startswith("$ ")]
        else:
            lines = body.splitlines()
        out = []
        for line in lines:
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if line:
                out.append(" ".join(line.split()))
        return out


def pages() -> dict[str, str]:
    """``{"README.md": text, "docs/index.md": text, ...}``."""
    out = {"README.md": (ROOT / "README.md").read_text()}
    for p in sorted(DOCS.glob("*.md")):
        out[f"docs/{p.name}"] = p.read_text()
    return out


def blocks(page: str, text: str) -> list[Block]:
    out = []
    for m in FENCE.finditer(text):
        needs: set[str] = set()
        for before in reversed(text[: m.start()].rstrip("\n").split("\n")):
            if not re.fullmatch(r"<!--.*-->", before.strip()):
                break  # the comments right above the fence: markers, gen names
            marker = MARKER.fullmatch(before.strip())
            if marker:
                needs |= {x.strip() for x in marker.group(1).split(",")}
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(page, line, m.group(1), frozenset(needs), m.group(2)))
    return out


def shell_blocks() -> list[Block]:
    return [b for page, text in pages().items() for b in blocks(page, text) if b.lang in SHELL]


def is_setup(cmd: str) -> bool:
    return cmd.startswith(SETUP)


@cache
def helps() -> dict[str, str]:
    """Every (sub-)command's ``--help``, from the parsers (the CLI reference's source)."""
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks/cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.commands()


def _words(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


def invocations(cmd: str) -> list[tuple[str, list[str]]]:
    """``[(program, flags), ...]``: each dist-logreg sub-command or repository script a
    command starts, with the ``--flags`` given to it.

    ``program`` is a key of :func:`helps` (``"dist-logreg model fit"``) or a repository
    path (``"benchmarks/bench_step.py"``); an unknown sub-command comes back as
    ``"dist-logreg NAME"``, which is not a key. After ``--``, a sub-command name starts
    that sub-command (``scale ... -- train ...``, ``cluster run ... -- bench ...``).
    """
    known = helps()
    out: list[tuple[str, list[str]]] = []
    current: list | None = None
    words = _words(cmd)
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("&&", "||", "|", ";", ">", "<") or w.startswith((">", "2>")):
            current = None
        elif current is not None and w == "--":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            current = None
            if f"dist-logreg {nxt}" in known:
                words.insert(i + 1, "dist-logreg")  # `-- train ...` is `dist-logreg train ...`
        elif w in FRONTS or (w == "-m" and i + 1 < len(words) and words[i + 1] == "dist_logreg"):
            i += 1 if w == "-m" else 0
            prog, i = _subcommand(words, i + 1, known)
            current = [prog, []]
            out.append(current)
            continue
        elif _is_script(w):
            current = [w.removeprefix("./"), []]
            out.append(current)
        elif current is not None and w.startswith("--"):
            current[1].append(w.split("=", 1)[0])
        i += 1
    return [(p, f) for p, f in out]


def _subcommand(words: list[str], i: int, known: dict) -> tuple[str, int]:
    prog = "dist-logreg"
    while i < len(words) and f"{prog} {words[i]}" in known:
        prog = f"{prog} {words[i]}"
        i += 1
    if prog == "dist-logreg" and i < len(words) and not words[i].startswith("-"):
        return f"dist-logreg {words[i]}", i + 1  # unknown: fails the check
    return prog, i


def _is_script(word: str) -> bool:
    word = word.removeprefix("./")
    return word.startswith(("benchmarks/", "launch/", "docker/", "docs/scripts/")) and (
        word.endswith((".py", ".sh"))
    )


def flag_in(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None
