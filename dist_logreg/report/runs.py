"""Read what runs left behind, for ``dist-logreg report``: a training output directory or a
bench JSON. Pure Python and numpy (no MPI): the report runs anywhere the files are.

Missing optional files (``steps.jsonl``, ``metrics.jsonl``, ``traffic.json``,
``links.json``, ``flows.json``) leave their field ``None``: the report says what it could
not draw and why. Files that are there but malformed are a ``UsageError`` naming the file,
the line and what was expected.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dist_logreg import schema
from dist_logreg.errors import UsageError
from dist_logreg.files import loads, read_json
from dist_logreg.ops.cluster import fabricfiles
from dist_logreg.report import benchfile, simulate
from dist_logreg.report.analysis import arrivals_within
from dist_logreg.report.trainfile import (
    CONFIG,
    LOOSE,
    check_summary,
    check_traffic,
    held,
    traffic_schema,
    within_summary,
)

#: Columns of ``steps.jsonl`` and ``metrics.jsonl`` kept as arrays (absent ones: NaN).
STEP_COLUMNS = (
    "step",
    "rank",
    "data_s",
    "compute_s",
    "comm_s",
    "update_s",
    "batch_loss",
    "attempt",
)
CALL_COLUMNS = ("step", "rank", "bytes", "seconds", "start_s", "start_aligned_s", "predicted_s")


@dataclass
class TrainRun:
    """One training output directory."""

    path: Path
    tag: str
    summary: dict
    config: dict
    steps: dict[str, np.ndarray] | None  # STEP_COLUMNS, one entry per step per rank
    calls: dict[str, np.ndarray] | None  # CALL_COLUMNS, one entry per allreduce per rank
    traffic: dict | None
    links: list[dict] | None  # links.json, one row per link and direction (fabricfiles)
    flows: list[dict] | None  # flows.json, one flow map per part of the job (fabricfiles)
    kind: str = field(default="train", init=False)
    #: Which attempt ran which steps: ``[{"attempt", "first", "last", "completed"}]``.
    attempts: list[dict] = field(default_factory=list, init=False)

    @property
    def run(self) -> dict:
        return self.summary.get("run") or {}


@dataclass
class BenchRun:
    """One bench JSON (the object form, or the list of records written before the run block)."""

    path: Path
    tag: str
    doc: dict  # {"run": ..., "records": [...]}, the old list form wrapped
    kind: str = field(default="bench", init=False)

    @property
    def run(self) -> dict:
        return self.doc.get("run") or {}

    @property
    def records(self) -> list[dict]:
        return self.doc["records"]


def load(path: str | Path, job_bound=None) -> TrainRun | BenchRun:
    """A training output directory (or its ``summary.json``), or a bench JSON file;
    ``job_bound(doc)``: a ``simulate.json``'s check against the simulator's own bound
    (``cli/`` passes ``sim.recheck.check``; ``report/`` never imports ``sim/``)."""
    path = Path(path)
    if path.is_file() and path.name == "summary.json":
        path = path.parent
    if (
        path.is_dir()
        and os.path.lexists(path / "simulate.json")  # a link or FIFO there: its own message
        and not (path / "summary.json").is_file()
    ):
        path = path / "simulate.json"
        if path.is_symlink() and not path.exists():
            raise UsageError(
                f"RUN {path}: a symbolic link to {os.readlink(path)!r}, which does not exist"
            )
    if path.is_dir():
        summary = path / "summary.json"
        if summary.is_symlink() and not summary.exists():  # named, not "without either" (Q-M8)
            raise UsageError(
                f"RUN {summary}: a symbolic link to {os.readlink(summary)!r}, which does not exist"
            )
        if os.path.lexists(summary) and not summary.is_file():
            read_json(summary, "run file")  # a FIFO, a device, a folder: its own line
        if not summary.is_file():
            raise UsageError(
                f"RUN {path}: expected a training output directory (with summary.json), a "
                "simulate output directory (with simulate.json) or a bench JSON file, got a "
                "directory without either"
            )
        return _load_train(path)
    if not path.exists():
        raise UsageError(f"RUN {path}: not found")
    return _load_bench(path, job_bound)


def bench_records(doc, where: str) -> dict:
    """A bench JSON as ``{"run": ..., "records": [...]}``; the old plain list is accepted."""
    benchfile.p2p_refusal(doc, where)
    if isinstance(doc, list):
        doc = {"run": None, "records": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise UsageError(
            f"{where}: expected a bench JSON (an object with a list 'records', or a list of "
            f"records), got {type(doc).__name__}"
        )
    if not doc["records"]:
        raise UsageError(f"{where}: expected at least one record, got none")
    needed = ("algorithm", "bytes", "time_s", "busbw")
    for i, rec in enumerate(doc["records"]):
        missing = [k for k in needed if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise UsageError(f"{where}: record {i}: expected keys {', '.join(missing)}")
        if why := _check_record(rec):
            raise UsageError(f"{where}: record {i}: {why}")
    benchfile.check(doc, where)
    return doc


def _check_record(rec: dict) -> str | None:
    """What is wrong with one bench record's numbers, or None."""
    n, t = rec["bytes"], rec["time_s"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"bytes: expected a whole number of bytes >= 1, got {n!r}"
    if not _is_number(t) or not math.isfinite(t) or t <= 0:
        return f"time_s: expected a finite number of seconds > 0, got {t!r}"
    if t > MAX_SECONDS:
        return f"time_s: expected at most {MAX_SECONDS:g} s, got {t!r}"
    for key in ("busbw", "algbw", "predicted_s"):
        v = rec.get(key)
        if v is not None and (not _is_number(v) or not 0 <= v < math.inf):
            return f"{key}: expected a finite number >= 0, got {v!r}"
    if not isinstance(rec["algorithm"], str):
        return f"algorithm: expected a name, got {rec['algorithm']!r}"
    return None


def _load_bench(path: Path, job_bound=None) -> BenchRun:
    raw = read_json(path, "run file")  # a key given twice is refused there (files.once)
    if simulate.is_simulate(raw):
        return simulate.load(path, raw, job_bound)
    doc = bench_records(raw, f"bench JSON {path}")
    tag = (doc.get("run") or {}).get("tag") or path.stem
    return BenchRun(path, tag, doc)


def _there(path: Path) -> bool:
    """A run's optional file is there: any kind of entry, so that a FIFO, a folder or a
    link at its name is refused by its reader (a FIFO config.json was skipped silently:
    twelfth attack, L-L6), not read as absent."""
    return os.path.lexists(path)


def _load_train(path: Path) -> TrainRun:
    summary = read_json(path / "summary.json", "run file")
    if not isinstance(summary, dict) or "world_size" not in summary:
        raise UsageError(f"{path / 'summary.json'}: expected a run summary with world_size")
    p = summary["world_size"]
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise UsageError(
            f"{path / 'summary.json'}: world_size: expected an integer >= 1, got {p!r}"
        )
    check_summary(summary, p, path / "summary.json")
    # a run resumed at another world size keeps the earlier rows: their ranks are theirs
    # (a 2-rank run resumed at 1 rank was refused for its rank 1: found beside M-H2)
    earlier = (
        summary.get("resumed_from_step") if isinstance(summary.get("resumed_from_step"), int) else 0
    )
    config = read_json(path / "config.json", "run file") if _there(path / "config.json") else {}
    schema.check(config, CONFIG, str(path / "config.json"))
    traffic = None
    if _there(path / "traffic.json"):
        traffic = read_json(path / "traffic.json", "run file")
        schema.check(traffic, traffic_schema(p), str(path / "traffic.json"))
        check_traffic(traffic, summary, path / "traffic.json")
    tag = (summary.get("run") or {}).get("tag") or config.get("tag") or path.name
    links = flows = None
    if _there(path / "links.json"):
        links = fabricfiles.read_links(path / "links.json")
    if _there(path / "flows.json"):
        flows = fabricfiles.read_flows(path / "flows.json")
    run = TrainRun(
        path,
        tag,
        summary,
        config,
        _read_jsonl(path / "steps.jsonl", STEP_COLUMNS, p, earlier),
        _read_jsonl(path / "metrics.jsonl", CALL_COLUMNS, p, earlier),
        traffic,
        links,
        flows,
    )
    twice = within_summary(path, run, summary, earlier)
    arrivals_within(path / "metrics.jsonl", run.calls, summary, earlier, twice)
    for name, table in (("steps.jsonl", run.steps), ("metrics.jsonl", run.calls)):
        earlier_ranks(path / name, table, earlier)
    if config.get("resume") is not False or run.steps is None:
        run.steps, run.attempts = with_dead_attempts(path, run.steps, p, summary)
    # else: a run started afresh (no --resume) continues no earlier attempt: what a dead
    # run left in partial/ is another run's, never merged into this one's steps
    return run


def earlier_ranks(where: Path, table, earlier: int) -> None:
    """The rows before a resume name an earlier attempt's ranks, whose world size is not
    recorded: each step's ranks must be 0 to k - 1, as every attempt's are (a row of rank
    9,999,999 in a 2-rank run was drawn as a straggler: nineteenth attack, X-H6)."""
    if table is None or not earlier:
        return
    mine = table["step"] < earlier
    steps, ranks = table["step"][mine].astype(np.int64), table["rank"][mine].astype(np.int64)
    if not steps.size:
        return
    pairs = np.unique(steps * (1 << 32) + ranks)
    each, first, count = np.unique(pairs >> 32, return_index=True, return_counts=True)
    top = np.maximum.reduceat(pairs & 0xFFFFFFFF, first)
    if (bad := np.flatnonzero(top + 1 != count)).size:
        s = int(each[bad[0]])
        got = (pairs[(pairs >> 32) == s] & 0xFFFFFFFF).tolist()
        shown = ", ".join(map(str, got[:5])) + (", ..." if len(got) > 5 else "")
        raise UsageError(
            f"{where}: rank: expected step {s}'s ranks (before the resume at step {earlier}) "
            f"to be 0 to {int(count[bad[0]]) - 1}, as an attempt's are, got {shown}"
        )


def with_dead_attempts(path: Path, steps, world_size: int, summary: dict | None = None):
    """``steps.jsonl``'s columns with the rows that attempts which died saved in
    ``partial/steps-attempt<a>-*.jsonl`` (steps no later attempt ran), and which attempt ran
    which steps."""
    parts = sorted((path / "partial").glob("steps-attempt*-rank*.jsonl"))
    # a dead attempt ran at its own world size (supervise --min-ranks resumes on fewer
    # ranks): its rows name its ranks, as a resumed run's earlier rows do (fourteenth
    # attack, P-H1)
    dead = [_read_jsonl(f, STEP_COLUMNS, world_size, earlier=1 << 62) for f in parts]
    for f, d in zip(parts, dead, strict=True):  # held to the run (a 10-day step, step
        if d is None or not d["step"].size:  # 10^15, rank 9,999,999 were drawn: U-H1)
            continue
        rank = re.search(r"-rank([0-9]+)\.jsonl$", f.name)
        if rank and (d["rank"] != int(rank.group(1))).any():
            raise UsageError(f"{f}: rank: expected {rank.group(1)} (its file's), got another")
        held(f, d, summary or {}, *LOOSE)  # 100 x the last attempt's bounds, + 60 s
    dead = [d for d in dead if d is not None and d["step"].size]
    done = set() if steps is None else set(steps["step"].tolist())
    keep = [{c: v[~np.isin(d["step"], list(done))] for c, v in d.items()} for d in dead]
    tables = ([steps] if steps is not None else []) + [k for k in keep if k["step"].size]
    if not tables:
        return steps, []
    merged = {c: np.concatenate([t[c] for t in tables]) for c in STEP_COLUMNS}
    order = np.lexsort((merged["rank"], merged["step"]))
    merged = {c: v[order] for c, v in merged.items()}
    completed = set() if steps is None else set(steps["attempt"][~np.isnan(steps["attempt"])])
    ran: dict = {}  # every attempt's steps, a dead one's too where a later one ran them all
    for t in ([steps] if steps is not None else []) + dead:  # (seventeenth attack, S-M2)
        for a in set(t["attempt"][~np.isnan(t["attempt"])].tolist()):
            mine = t["step"][t["attempt"] == a]
            lo, hi = ran.get(a, (mine.min(), mine.max()))
            ran[a] = min(lo, mine.min()), max(hi, mine.max())
    shown = set(merged["attempt"][~np.isnan(merged["attempt"])].tolist())
    attempts = [
        {"attempt": int(a), "first": int(lo), "last": int(hi), "completed": a in completed}
        | ({} if a in shown else {"superseded": True})
        for a, (lo, hi) in sorted(ran.items())
    ]
    return merged, attempts


#: Columns that are durations (seconds >= 0) or byte counts; beyond MAX_SECONDS a duration
#: is not a measurement (eleven days for one step or call).
DURATIONS = ("data_s", "compute_s", "comm_s", "update_s", "seconds", "predicted_s", "bytes")
TIMESTAMPS = ("start_s", "start_aligned_s")
MAX_SECONDS = 1e6


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_value(c: str, v, world_size: int) -> str | None:
    """What is wrong with one value of a ``steps.jsonl`` / ``metrics.jsonl`` line, or None."""
    if c == "step":
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"step: expected a whole number >= 0, got {v!r}"
    elif c == "rank":
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < world_size:
            return (
                f"rank: expected a rank from 0 to {world_size - 1} ({world_size} ranks), got {v!r}"
            )
    elif c in DURATIONS or c in TIMESTAMPS:
        if not _is_number(v) or not math.isfinite(v) or (c in DURATIONS and v < 0):
            want = "a finite number >= 0" if c in DURATIONS else "a finite number"
            return f"{c}: expected {want}, got {v!r}"
        if abs(v) > MAX_SECONDS and c != "bytes":
            return f"{c}: expected at most {MAX_SECONDS:g} s, got {v!r}"
        if c == "seconds" and v < 1e-9:  # a call of 0 s or 1 ps was drawn (M-H2)
            return f"seconds: expected a call of at least 1 ns (the clock's), got {v!r}"
    elif c == "attempt":  # -1, 0.5, 1e300 were listed as attempts (U-H11)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10**6:
            return f"attempt: expected a whole number from 1 to 1000000, got {v!r}"
    elif c == "batch_loss":  # a log-loss: a loss of -5 was drawn (M-H2)
        if not _is_number(v) or not math.isfinite(v) or v < 0:
            return f"batch_loss: expected a finite log-loss >= 0, got {v!r}"
    elif not _is_number(v):
        return f"{c}: expected a number, got {v!r}"
    return None


#: The largest steps.jsonl or metrics.jsonl the report reads (its rows become arrays in
#: memory): a million steps of 8 ranks at about 150 B a line.
MAX_JSONL_BYTES = 2 << 30


def _read_jsonl(path: Path, columns: tuple[str, ...], world_size: int = 1 << 30, earlier: int = 0):
    """The columns of a JSON-lines file as float arrays (NaN where a line lacks a key).

    Every value is checked (:func:`check_value`): a bad one is a ``UsageError`` naming the
    file, the line and the key, never a traceback or a report of ``nan`` seconds.
    """
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_JSONL_BYTES:  # a 4 GB line was read into memory (L-H18)
        raise UsageError(
            f"{path}: expected at most {MAX_JSONL_BYTES:,} B of JSON lines, got {size:,}"
        )
    cols: dict[str, list] = {c: [] for c in columns}
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                # a byte that is not UTF-8, or nesting too deep, was a traceback (L-H18)
                raise UsageError(f"{path} line {n}: expected a JSON object ({exc})") from None
            if not isinstance(rec, dict) or "step" not in rec or "rank" not in rec:
                raise UsageError(f"{path} line {n}: expected an object with step and rank")
            step = rec.get("step")
            ranks = 10**7 if isinstance(step, int) and step < earlier else world_size
            for c in columns:
                v = rec.get(c)  # a step or rank of null too (a ValueError: U-H6)
                if (v is not None or c in ("step", "rank")) and (why := check_value(c, v, ranks)):
                    raise UsageError(f"{path} line {n}: {why}")
                cols[c].append(np.nan if v is None else v)
    return {c: np.asarray(v, dtype=np.float64) for c, v in cols.items()}


def slug(text: str) -> str:
    """A file-name-safe form of a tag: ``"ring 1 Gbit/s"`` -> ``"ring-1-Gbit-s"``; at most
    60 characters (a longer one ends in 8 hex digits of its hash): a 250-character tag made
    a plot name past the file system's 255 bytes (nineteenth attack, X-H18)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"
    if len(out) > 60:
        out = out[:51] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return out


def unique_tags(runs: list) -> None:
    """Make the runs' tags distinct (``tag``, ``tag #2``, ...), in place."""
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.tag] = seen.get(r.tag, 0) + 1
        if seen[r.tag] > 1:
            r.tag = f"{r.tag} #{seen[r.tag]}"
