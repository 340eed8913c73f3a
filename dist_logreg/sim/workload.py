"""A training step's workload (``simulate --workload SPEC``): what a step computes and sends.

A spec is ``preset[:key=value,...]``, ``key=value,...`` or a ``.toml``/``.json`` file of the
same keys (like ``--fabric``):

============  =================================================================================
``params``    parameters of the model (``7e9``, ``7B``, ``340M``: decimal suffixes K M B G T)
``dtype``     bytes per gradient element: ``fp32`` ``bf16`` ``fp16`` ``fp8`` ``fp64``
``buckets``   bucket size in bytes (``25M``, DDP's default; binary suffixes); ``0``: one bucket
``forward``   the forward pass of one step on one rank (``60ms``)
``backward``  the backward pass (``120ms``); the buckets become ready uniformly over it
``optimizer`` the optimizer step after the gradients are synchronised (default 0)
``flops``     instead of forward/backward: the FLOPs of a step on one rank (1/3 forward,
              2/3 backward), with ``flop-rate`` (FLOP/s of one rank, e.g. ``400T``)
``overlap``   ``yes`` (default): a bucket's collective starts once it is ready; ``no``: all
              after the backward pass
``sync``      ``allreduce`` (default), or ``sharded``: reduce-scatter per bucket, allgather
              of the parameters after the optimizer (ZeRO / FSDP)
``strong``    ``P0``: the compute given is at P0 ranks of one global batch (it scales as
              P0 / P); default 0: the compute per rank is fixed (weak scaling)
============  =================================================================================

:func:`step` is the model: bucket ``i`` (the last layers first) is ready at
``forward + backward x (bytes through bucket i) / (all bytes)``; the collectives run one
after another on one stream, as DDP's do: bucket ``i``'s starts at ``max(ready_i, end of
bucket i-1's)`` (overlap) or after the backward pass (no overlap); the step ends at
``max(backward end, last collective's end) + optimizer`` (+ the allgathers, when sharded).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from dist_logreg import units
from dist_logreg.collective import algorithms as table
from dist_logreg.errors import UsageError

DTYPES = {"fp64": 8, "fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
SYNCS = ("allreduce", "sharded")
#: Allreduce -> its (reduce-scatter, allgather) halves, as ``train --sync sharded`` runs them.
HALVES = {
    table.RING.name: (table.RING.name, table.RING.name),
    table.RABENSEIFNER.name: (table.RECURSIVE_HALVING, table.RECURSIVE_DOUBLING.name),
}
#: Named workloads (illustrative sizes and times of one rank's step, not measurements).
PRESETS = {
    "llama-7b": "params=7e9,dtype=bf16,buckets=25M,forward=60ms,backward=120ms",
    "gpt-1.3b": "params=1.3e9,dtype=bf16,buckets=25M,forward=12ms,backward=24ms",
    "bert-large": "params=340M,dtype=fp32,buckets=25M,forward=40ms,backward=80ms",
    "resnet50": "params=25.6M,dtype=fp32,buckets=25M,forward=30ms,backward=60ms",
}
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
#: At most this many buckets a step (DDP's 25 MB buckets of a 3T-parameter bf16 model:
#: 262,144). Each is a row of one step's timeline in simulate.json: at this bound the file is
#: 46 MB and its report takes 7 s and 0.6 GB; 2,097,152 wrote 353 MB that report could not
#: take in 6 GB (twelfth attack, L-H25).
MAX_BUCKETS = 1 << 18
#: A forward, backward or optimizer pass of at most this long (11.6 days; a report's bound).
MAX_SECONDS = 1e6
#: ``strong=P0`` of at most this many ranks (the compute scales as P0 / ranks).
MAX_STRONG = 10**7
#: params, flops and flop-rate below this.
MAX_NUMBER = 1e16
#: A workload file of at most this many bytes (its bucket-sizes list included).
MAX_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class Workload:
    """One rank's step: gradient ``params`` x ``dtype_bytes`` in buckets of ``bucket_bytes``
    (or the explicit ``bucket_sizes``, in the order backward makes them), its compute in s."""

    params: float
    dtype_bytes: int
    bucket_bytes: int
    forward_s: float
    backward_s: float
    optimizer_s: float = 0.0
    overlap: bool = True
    sync: str = "allreduce"
    strong: int = 0
    bucket_sizes: tuple = ()
    spec: str = ""

    def sizes(self) -> list[int]:
        """The buckets' bytes, first ready first (the last layers' gradients)."""
        if self.bucket_sizes:
            return [int(b) for b in self.bucket_sizes]
        total = int(round(self.params * self.dtype_bytes))
        if self.bucket_bytes <= 0 or self.bucket_bytes >= total:
            return [total]
        full, rest = divmod(total, self.bucket_bytes)
        return [self.bucket_bytes] * full + ([rest] if rest else [])

    def compute(self, ranks: int) -> tuple[float, float, float]:
        """(forward, backward, optimizer) in s on one of ``ranks`` ranks."""
        k = self.strong / ranks if self.strong else 1.0
        return self.forward_s * k, self.backward_s * k, self.optimizer_s * k

    def check_ranks(self, ranks) -> None:
        """Refuse a pass that ``strong`` scales past MAX_SECONDS at one of ``ranks``."""
        for p in ranks:
            for what, s in zip(("forward", "backward", "optimizer"), self.compute(p), strict=True):
                if s > MAX_SECONDS and self.spec.startswith("--run "):  # its file's keys (L-M8)
                    raise UsageError(
                        f"{self.spec}/summary.json: time_s.compute / steps / 2 x world_size / "
                        f"ranks = {s:.3g} s a {what} pass at {p} ranks (the run's compute, "
                        f"strong scaled); expected at most {MAX_SECONDS:g} s (11.6 days)"
                    )
                if s > MAX_SECONDS:
                    raise UsageError(
                        f"{_where(self.spec, 'strong')}: {what} x strong / ranks = {s:.3g} s "
                        f"at {p} ranks; expected at most {MAX_SECONDS:g} s (11.6 days) a pass"
                    )

    def describe(self) -> dict:
        d = asdict(self)
        d["bucket_sizes"] = list(self.bucket_sizes)
        d["gradient_bytes"] = sum(self.sizes())
        d["buckets"] = len(self.sizes())
        return d


def _where(name: str, key: str) -> str:
    return f"--workload {name}: {key}"


def _number(text, name, key) -> float:
    m = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*([KMBGT]?)\s*", str(text), re.I)
    value = float(m.group(1)) * _SCALE[m.group(2).upper()] if m else -1.0
    if value >= MAX_NUMBER:  # positive, but past the bound: say the bound
        raise UsageError(f"{_where(name, key)}: expected below {MAX_NUMBER:g}, got {text!r}")
    if not 0 < value:
        raise UsageError(
            f"{_where(name, key)}: expected a positive number such as 7e9, 7B or 340M, got {text!r}"
        )
    return value


def _read(pairs: dict, name: str) -> Workload:
    """The checked workload of ``pairs`` (``{key: text}``)."""
    known = (
        "params",
        "dtype",
        "buckets",
        "forward",
        "backward",
        "optimizer",
        "flops",
        "flop-rate",
        "overlap",
        "sync",
        "strong",
        "bucket-sizes",
    )
    for key in pairs:
        if key not in known:
            raise UsageError(f"{_where(name, key)}: expected one of the keys {', '.join(known)}")
    get = pairs.get
    if "bucket-sizes" in pairs:
        if both := [k for k in ("params", "dtype") if k in pairs]:  # one was dropped (W-M5)
            raise UsageError(f"{_where(name, both[0])}: give bucket-sizes or {both[0]}, not both")
        sizes = _bucket_sizes(get("bucket-sizes"), name)
        params, dtype = float(sum(sizes)), 1
    else:
        sizes = ()
        if "params" not in pairs:
            raise UsageError(f"{_where(name, 'params')}: required (the model's parameters)")
        params = _number(get("params"), name, "params")
        dtype = DTYPES.get(str(get("dtype", "fp32")).lower())
        if dtype is None:
            raise UsageError(
                f"{_where(name, 'dtype')}: expected one of {', '.join(DTYPES)}, "
                f"got {get('dtype')!r}"
            )
    bucket = _buckets(pairs, name, params, dtype, sizes)
    secs = lambda k: _seconds(get(k, 0), name, k)  # noqa: E731
    if "flops" in pairs:
        if "forward" in pairs or "backward" in pairs:
            raise UsageError(f"{_where(name, 'flops')}: give flops or forward/backward, not both")
        rate = _number(get("flop-rate", ""), name, "flop-rate")
        total = _number(get("flops"), name, "flops") / rate
        if total > MAX_SECONDS:
            raise UsageError(
                f"{_where(name, 'flops')}: flops / flop-rate = {total:.3g} s a step; expected "
                f"at most {MAX_SECONDS:g} s"
            )
        fwd, bwd = total / 3, 2 * total / 3
    else:
        fwd, bwd = secs("forward"), secs("backward")
    overlap = str(get("overlap", "yes")).lower()
    if overlap not in ("yes", "no", "true", "false"):
        raise UsageError(f"{_where(name, 'overlap')}: expected yes or no, got {overlap!r}")
    sync = str(get("sync", SYNCS[0])).lower()
    if sync not in SYNCS:
        raise UsageError(
            f"{_where(name, 'sync')}: expected one of {', '.join(SYNCS)}, got {sync!r}"
        )
    strong = str(get("strong", 0))
    if not (strong.isascii() and strong.isdigit() and int(strong) <= MAX_STRONG):
        raise UsageError(
            f"{_where(name, 'strong')}: expected a whole number of ranks at most "
            f"{MAX_STRONG:,}, got {strong!r}"
        )
    return Workload(
        params,
        dtype,
        bucket,
        fwd,
        bwd,
        secs("optimizer"),
        overlap in ("yes", "true"),
        sync,
        int(strong),
        sizes,
        name,
    )


def _bucket_sizes(value, name: str) -> tuple:
    """``bucket-sizes``: a list of byte counts (a file's), or in a spec one text of them
    joined by ``+`` (``1M+4M``), each at least 1 byte. A text was read character by
    character: ``1234`` was buckets of 1, 2, 3 and 4 B (fourteenth attack, P-H8)."""
    where = _where(name, "bucket-sizes")
    items = value.split("+") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise UsageError(
            f"{where}: expected a list of byte counts (in a spec: 1M+4M), got {value!r}"
        )
    sizes = tuple(int(units.parse_bytes(str(b).strip(), where)) for b in items)
    if min(sizes) < 1:
        raise UsageError(f"{where}: expected buckets of at least 1 byte, got {value!r}")
    return sizes


def _buckets(pairs: dict, name: str, params: float, dtype: int, sizes: tuple) -> int:
    """The bucket size; refuses a gradient under 1 B and more than MAX_BUCKETS buckets."""
    get = pairs.get
    if not sizes and params * dtype < 1:
        raise UsageError(
            f"{_where(name, 'params')}: expected a gradient of at least 1 byte, got "
            f"{get('params')!r} parameters of {dtype} B"
        )
    bucket = units.parse_bytes(str(get("buckets", "25M")), _where(name, "buckets"))
    total = sum(sizes) if sizes else int(round(params * dtype))
    count = len(sizes) if sizes else (-(-total // bucket) if bucket > 0 else 1)
    if count > MAX_BUCKETS:
        raise UsageError(
            f"{_where(name, 'buckets')}: {get('buckets', len(sizes))!r} makes {count:,} buckets "
            f"of a {total:,} B gradient; expected at most {MAX_BUCKETS:,} (larger buckets)"
        )
    return bucket


def _seconds(text, name: str, key: str) -> float:
    v = units.parse_seconds(str(text), _where(name, key))
    if not 0 <= v <= MAX_SECONDS:
        raise UsageError(
            f"{_where(name, key)}: expected at most {MAX_SECONDS:g} s (11.6 days), got {text!r}"
        )
    return v


def parse_workload(spec: str) -> Workload:
    """``--workload SPEC``: a preset (with overrides), ``key=value,...`` or a file."""
    text = spec.strip()
    if text.endswith((".toml", ".json")) and "=" not in text:
        return _read(_file(Path(text)), spec)
    head, _, rest = text.partition(":")
    pairs = {}
    if "=" not in head:
        if head not in PRESETS:
            raise UsageError(
                f"--workload {spec}: expected a preset ({', '.join(PRESETS)}), "
                "key=value,... or a .toml/.json file"
            )
        pairs.update(_pairs(PRESETS[head], spec))
    else:
        rest = text
    pairs.update(_pairs(rest, spec))
    return _read(pairs, spec)


def _pairs(text: str, spec: str) -> dict:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not value.strip():
            raise UsageError(f"--workload {spec}: expected key=value, got {item!r}")
        key = key.strip().lower().replace("_", "-")
        if key in out:
            raise UsageError(
                f"--workload {spec}: {key}: expected each key once (keys ignore case), "
                f"got {item!r} again"
            )
        out[key] = value.strip()
    return out


def _file(path: Path) -> dict:
    from dist_logreg.files import loads, regular_file

    regular_file(path, "--workload")  # a FIFO or a device would block
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(
            f"--workload {path}: expected a workload file of at most {MAX_FILE_BYTES:,} B, "
            f"got {path.stat().st_size:,} B"
        )
    try:
        raw = path.read_text()
        doc = tomllib.loads(raw) if path.suffix == ".toml" else loads(raw)
    except OSError as exc:
        raise UsageError(f"--workload {path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:  # L-H5: nested deep
        raise UsageError(
            f"--workload {path}: expected {path.suffix[1:].upper()}, got ({exc})"
        ) from None
    if not isinstance(doc, dict):
        raise UsageError(f"--workload {path}: expected a table of keys, got {type(doc).__name__}")
    out: dict = {}
    for k, v in doc.items():
        key = str(k).replace("_", "-").lower()
        if key in out:  # params and PARAMS: one was dropped (L-M1)
            raise UsageError(
                f"--workload {path}: {key}: expected each key once (keys ignore case), got "
                f"{k!r} again"
            )
        out[key] = v
    return out


def collectives(w: Workload, algorithm: str) -> tuple[str, ...]:
    """The collectives a step of ``w`` runs: the allreduce, or its two halves (sharded)."""
    if w.sync == SYNCS[0]:
        return (algorithm,)
    if algorithm not in HALVES:
        raise UsageError(
            f"--algorithm {algorithm}: sync=sharded runs an allreduce's two "
            f"halves, expected one of {', '.join(HALVES)}"
        )
    rs, ag = HALVES[algorithm]
    return (f"reduce-scatter/{rs}", f"allgather/{ag}")


# --- a train run's step (``simulate --run RUN``) ---------------------------------------


def predict_steps(run: dict, results: list) -> dict:
    """Per result: step = compute x world/P (the global batch split over P ranks) + comm."""
    preds = []
    for r in results:
        compute = run["compute_s_per_step"] * run["world_size"] / r["ranks"]
        comm = run["calls_per_step"] * r["time_s"]
        preds.append(
            {
                "algorithm": r["algorithm"],
                "ranks": r["ranks"],
                "compute_s": compute,
                "comm_s": comm,
                "step_s": compute + comm,
                "comm_fraction": comm / (compute + comm) if compute + comm else 0.0,
            }
        )
    return {
        **run,
        "predictions": preds,
        "assumption": "compute per step scales as world_size / P (the same global batch)",
    }


def run_workload(run: dict):
    """The run as a workload: its buckets (``calls_per_step`` of ``bytes_per_call``) and its
    measured compute, split evenly between the forward pass (the margins, X w) and the
    backward pass (the gradient, r X, block by block: the buckets), on one global batch
    (``strong``: the compute scales as world_size / P)."""
    calls = max(1, int(round(run["calls_per_step"])))
    half = run["compute_s_per_step"] / 2
    sizes = (run["bytes_per_call"],) * calls
    return Workload(
        params=float(sum(sizes)),
        dtype_bytes=1,
        bucket_bytes=run["bytes_per_call"],
        forward_s=half,
        backward_s=half,
        # the trainer posts each bucket's allreduce as soon as it is made; it overlaps the next
        # block's compute only with --allreduce mpi (a non-blocking Iallreduce)
        overlap=calls > 1 and run.get("overlapped", False),
        strong=run["world_size"],
        bucket_sizes=sizes,
        spec=f"--run {run['path']}",
    )
