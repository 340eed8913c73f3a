"""A grid of ``simulate`` runs: its points in a fixed order, its key, its partial file.

``simulate --sweep FILE`` reads a TOML file whose keys are the command's options, a list
meaning "each of these" (the reading is the command line's: ``cli/simulate_sweep``). Here,
pure and MPI-free: :func:`expand` turns the axes into points (the first axes fabric, ranks,
algorithm, bytes, then the others by name: the order of ``results`` whatever ran them),
:func:`grid_key` names the grid (a resume must be of the same grid), and :class:`Partial`
keeps the points finished so far beside the output, written atomically after each one.

A point's numbers depend on the point alone (its seeds are its options', never the rank or
the order that ran it), so a sweep spread over ranks gives the serial sweep's ``results``
byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
from pathlib import Path

from dist_logreg.errors import UsageError
from dist_logreg.files import loads, write_atomically

#: The axes that lead the order of the points (the rest follow by name).
FIRST = ("fabric", "ranks", "algorithm", "bytes", "workload", "scenario")
PARTIAL_FORMAT = "dist-logreg simulate sweep (partial)"
#: The partial file's name beside ``simulate.json`` (rank r of a spread sweep: ``.r`` added).
PARTIAL = "simulate.json.partial"
#: A partial file of at most this many bytes (a finished simulate.json is capped alike).
MAX_PARTIAL_BYTES = 256 << 20


def order(axes: dict) -> list[str]:
    """The axes' names in the points' order."""
    first = [k for k in FIRST if k in axes]
    return first + sorted(k for k in axes if k not in FIRST)


def expand(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, the last axis varying fastest.

    >>> expand({"ranks": [2, 4], "fabric": ["a"]})
    [{'fabric': 'a', 'ranks': 2}, {'fabric': 'a', 'ranks': 4}]
    """
    names = order(axes)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(axes[k] for k in names))
    ]


def grid_key(points: list[dict], options: dict | None = None) -> str:
    """A digest of the points in order, of the command line's ``options`` (their values),
    and of what every file either names holds: two grids with the same key run
    the same runs (a fabric file edited between an interrupt and ``--resume`` spliced points
    of two fabrics into one file: fifteenth attack, Q-H4; another ``--eager-limit`` kept
    the old points beside the new: nineteenth attack, W-H7)."""
    held = {}
    for v in [x for p in points for x in p.values()] + list((options or {}).values()):
        if isinstance(v, str) and 0 < len(v) < 4096 and v not in held:
            try:  # a spec of 255+ characters is no file name (ENAMETOOLONG: V-H4)
                f = Path(v) / "summary.json" if Path(v).is_dir() else Path(v)  # a run's summary
                if f.is_file() and f.stat().st_size <= 64 << 20:
                    held[v] = hashlib.sha256(f.read_bytes()).hexdigest()
            except OSError:
                continue
    text = json.dumps(
        [points, held, options or {}], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def varying(axes: dict) -> list[str]:
    """The axes with more than one value (the ones a row must name)."""
    return [k for k in order(axes) if len(axes[k]) > 1]


class Partial:
    """The finished points of one grid in ``DIR/simulate.json.partial[.r]``.

    ``done``: ``{index: the point's document}``; :meth:`add` records one and rewrites this
    rank's file; :meth:`remove` deletes every partial file of the directory.
    """

    def __init__(self, out: Path, key: str, points: int, rank: int = 0):
        self.out, self.key, self.points = Path(out), key, points
        self.path = self.out / (PARTIAL if rank == 0 else f"{PARTIAL}.{rank}")
        self.done: dict[int, dict] = {}
        self.sources: dict[int, Path] = {}  # the file :meth:`load` read each point from

    def files(self) -> list[Path]:
        return sorted(self.out.glob(PARTIAL + "*")) if self.out.is_dir() else []

    def load(self) -> dict[int, dict]:
        """Every partial file's points (``UsageError`` when one is of another grid)."""
        from dist_logreg.files import regular_file

        found = {}
        for f in self.files():
            tail = f.name[len(PARTIAL) + 1 :]
            if f.name != PARTIAL and not (tail.isascii() and tail.isdigit()):
                continue
            regular_file(f, "--resume")  # a FIFO would block, a directory is not a file
            if f.stat().st_size > MAX_PARTIAL_BYTES:
                raise UsageError(
                    f"--resume: {f}: expected a partial file of at most {MAX_PARTIAL_BYTES:,} B"
                )
            try:
                doc = loads(f.read_text())
                ok = doc.get("format") == PARTIAL_FORMAT
            except (OSError, ValueError, AttributeError, UnicodeDecodeError, RecursionError):
                ok = False
            if not ok:
                raise UsageError(f"--resume: {f}: expected a sweep's partial file, got another")
            done = doc.get("done")
            bad = not isinstance(done, dict) or any(
                not (isinstance(k, str) and k.isascii() and k.isdigit())
                or int(k) >= self.points
                or not isinstance(v, dict)
                for k, v in done.items()
            )
            if bad:
                raise UsageError(
                    f"--resume: {f}: done: expected {{point index below {self.points}: its "
                    "result}, got something else (start over with --force)"
                )
            if doc.get("grid") != self.key:
                raise UsageError(
                    f"--resume: {f}: grid: expected {self.key} (this --sweep file's points), "
                    f"got {doc.get('grid')!r} (another grid, other options, or a file it "
                    "names changed since; start over with --force)"
                )
            found.update({int(i): d for i, d in doc["done"].items()})
            self.sources.update({int(i): f for i in doc["done"]})
        return found

    def save(self, entries: dict[int, dict]) -> None:
        doc = {
            "format": PARTIAL_FORMAT,
            "grid": self.key,
            "points": self.points,
            "done": {str(i): entries[i] for i in sorted(entries)},
        }
        # the package's one atomic writer: results' mode (it was 0600: twelfth attack, L-L7)
        write_atomically(self.path, json.dumps(doc, allow_nan=False))

    def add(self, index: int, point_doc: dict) -> None:
        self.done[index] = point_doc
        self.save(self.done)

    def remove(self) -> None:
        for f in self.files():
            f.unlink(missing_ok=True)


def combine(file: str, axes: dict, docs: list[dict], size: int, t0: float) -> dict:
    """One ``simulate.json`` of the points' documents, in the points' order."""
    head = dict(docs[0])
    fabrics = {}
    for d in docs:
        fabrics.setdefault(d["fabric"]["spec"], d["fabric"])
    head["fabrics"] = list(fabrics.values())
    head["results"] = [r for d in docs for r in d["results"]]
    _cost_models(head, docs)
    steps = [d["step"] for d in docs if "step" in d]
    from dist_logreg.sim.step import efficiency, slowdown

    slowdown(head["results"], "time_s")  # against the same point with scenario none
    if steps:
        head["step"] = {**steps[0], "rows": [r for s in steps for r in s["rows"]]}
        # each point's workload, where they differ (a run axis: the first run's buckets
        # described every run's rows, and report refused the file: twelfth attack, L-H28)
        blocks = []
        for s in steps:
            text = (s["rows"][0].get("scenario") or "none") if s["rows"] else "none"
            block = {**s["workload"], "scenario": text}
            if block not in blocks:
                blocks.append(block)
        if len(blocks) > 1:
            head["step"]["workloads"] = blocks
        efficiency(head["step"]["rows"])  # across the points: against the fewest ranks
        slowdown(head["step"]["rows"], "step_s")
    head["sweep"] = {
        "file": Path(file).name,
        "points": len(docs),
        "axes": {k: [str(x) for x in v] for k, v in axes.items()},
        "mpi_ranks": size,
    }
    head["wall_s"] = time.perf_counter() - t0
    return head


def _cost_models(head: dict, docs: list[dict]) -> None:
    """A cost-model axis: every point's model in ``cost_models`` (each row names its own by
    its ``cost-model`` tag), and the fabrics' alpha and gamma null, "per row": the first
    point's were recorded for every row (twelfth attack, L-M6)."""
    models: dict = {}
    for m in (d["cost_model"] for d in docs if "cost_model" in d):  # every algorithm (Q-M4)
        mine = models.setdefault(
            m["path"], {"path": m["path"], "alpha_s": {}, "gamma_s_per_byte": {}}
        )
        for key in ("alpha_s", "gamma_s_per_byte"):
            mine[key].update(m[key])
    if len(models) < 2:
        return
    head["cost_models"] = list(models.values())
    head["fabrics"] = [json.loads(json.dumps(f)) for f in head["fabrics"]]  # not the point's
    for block in head["fabrics"]:
        for key in ("alpha", "gamma"):
            param = block["params"][key]
            param["value"], param["source"] = None, "cost model of each row (cost_models)"
    head["fabric"] = next(f for f in head["fabrics"] if f["spec"] == head["fabric"]["spec"])


def point_setting(want, engine: str) -> dict:
    """What every row of a grid's point (its ``simulate`` arguments, ``want``) shares, as
    its simulate.json records it (:func:`other_point`'s ``setting``)."""
    from dist_logreg.sim import packet_options
    from dist_logreg.sim.scenario import parse_scenario

    sc = parse_scenario(getattr(want, "scenario", None) or "none")
    opts = packet_options.from_args(want, engine)
    keys = ("placement", "ranks_per_host", "placement_seed", "seeds")
    return {
        "scenario": None if sc.kind == "none" else sc.spec,
        "placement": dict(zip(("mode", *keys[1:]), (getattr(want, k) for k in keys), strict=True)),
        "packet": None if opts is None else json.loads(json.dumps(packet_options.vars_of(opts))),
    }


def other_point(doc: dict, i: int, fabric: str, engine: str, exact: bool, listed, tags, setting):
    """The first key where a finished point's document is not the grid's point ``i`` (its
    ``fabric`` spec, ``engine``, mode, each row's ``listed`` ranks, algorithm and bytes and
    its axes' ``tags``; the ``setting`` every point shares: its scenario's spec, placement
    block and packet options), or None: a point of an 800G fabric was spliced into a sweep
    of 400G by ``--resume`` (thirteenth attack, M-H3), a point of no scenario into a sweep
    of degraded links (fourteenth, P-H7)."""
    if doc["fabric"]["spec"] != fabric:
        return "fabric.spec"
    if (doc.get("scenario") or {}).get("spec") != setting["scenario"]:
        return "scenario"
    for key, value in setting["placement"].items():
        if doc["placement"].get(key) != value:
            return f"placement.{key}"
    for j, r in enumerate(doc["results"]):
        if "packet" in r and r["packet"].get("options") != setting["packet"]:
            return f"results[{j}].packet.options"
    if doc["engine"] != engine:
        return "engine"
    if engine == "flow" and (doc["mode"] == "phase-synchronous") == exact:
        return "mode"  # (the packet engine is event by event whatever --exact says)
    for j, r in enumerate(doc["results"]):
        if r.get("point") != i:
            return f"results[{j}].point"
        for key, want in listed.items():
            if r.get(key) not in want:
                return f"results[{j}].{key}"
        for key, value in tags.items():
            if r.get(key) != value:
                return f"results[{j}].{key}"
    return None


def gather(comm, mine: dict) -> dict:
    """Rank 0: every rank's finished points (``comm`` None: a serial sweep's own)."""
    if comm is None:
        return dict(mine)
    got = comm.gather(mine, root=0)  # one control message per rank, at the end
    out = {}
    for part in got or []:
        out.update(part)
    return out


def alone(doc: dict) -> dict:
    """A finished point as :func:`combine` gives its rows with no other point: its rows of
    scenario none their own twins (slowdown 1), so report's check of a whole file holds
    for it (a sweep with ``scenario = ["none", ...]`` could not resume: fourteenth attack,
    P-H6). A copy; a point too damaged for it is left for the check to name."""
    from dist_logreg.sim.step import slowdown

    mine = json.loads(json.dumps(doc))
    with contextlib.suppress(TypeError, KeyError, AttributeError, ZeroDivisionError):
        slowdown(mine["results"], "time_s")
        if isinstance(mine.get("step"), dict):
            slowdown(mine["step"]["rows"], "step_s")
    return mine
