"""A ``simulate.json`` with ``--scenario neighbour:...`` in the report: each job's time alone,
together and its slowdown, as a table and as a figure (slowdown against the first job's
rank count, one line per job, algorithm and size).

The keys (``docs/outputs.md``): a row's ``time_s`` is the first job's with the neighbour,
``alone_s`` the same job alone, ``slowdown`` their ratio; ``jobs.first`` and
``jobs.neighbour`` hold each job's ``alone_s``, ``together_s`` (from its own start) and
``slowdown``. :data:`KEYS` checks their types and bounds, :func:`physics` what no engine
could write (a slowdown that is not ``together_s / alone_s``, a row that disagrees with
its ``jobs.first``).

Example::

    >>> sec.items += items(builder, run, "1-")  # doctest: +SKIP
"""

from __future__ import annotations

import math

from dist_logreg import schema
from dist_logreg.report import plots
from dist_logreg.report.document import Table
from dist_logreg.units import format_bytes, format_seconds

#: A duration beyond this is not a simulated allreduce (eleven days): as ``simulate``'s.
MAX_SECONDS = 1e12  # as report/simulate.py's
#: Relative slack for rounding (JSON's 17 digits, a ratio of two rounded times).
RTOL = 1e-6
_SECONDS = schema.number(0.0, MAX_SECONDS, "a finite number of seconds")
#: Together / alone: a job beside a neighbour is never faster than alone (beyond rounding).
# not bounded below by 1: max-min sharing is not monotone, so a neighbour can in principle
# speed a job up (it slows the flows that delayed the job's critical path); what no engine
# writes is a slowdown that is not together / alone (:func:`physics`)
_SLOWDOWN = schema.number(0.0, 1e9, "a slowdown (together / alone, > 0)", above=True)
_JOB = schema.table(
    {
        "ranks": schema.count(1, 10**7, "a number of ranks"),
        "algorithm": schema.text(),
        "bytes": schema.count(1, 1 << 50, "a whole number of bytes"),
        "hosts": schema.count(1, 10**7, "a number of hosts"),
        "start_s": _SECONDS,
        "alone_s": _SECONDS,
        "together_s": _SECONDS,
        "slowdown": _SLOWDOWN,
    },
    {"placement": schema.text("packed", "random", "spread", "scatter")},  # "x" (T-M5)
    "a job (an object)",
)
#: The optional keys a result row has with a neighbour.
KEYS = {
    "alone_s": _SECONDS,
    "slowdown": _SLOWDOWN,
    "jobs": schema.table({"first": _JOB, "neighbour": _JOB}, what="an object of two jobs"),
}
#: The two jobs, in the order of the table and the figure.
JOBS = ("first", "neighbour")


def _differ(a: float, b: float) -> bool:
    return not math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-15)


def physics(doc) -> None:
    """:class:`schema.Invalid` for a neighbour row no engine could write: a slowdown that is
    not ``together_s / alone_s``, or a row whose ``time_s``, ``alone_s``, ``slowdown`` are
    not its ``jobs.first``'s; a row with only some of the three keys."""
    for i, r in enumerate(doc["results"]):
        have = [k for k in KEYS if k in r]
        if not have or have == ["slowdown"]:  # a sweep's row: its scenario's slowdown
            continue
        if len(have) < len(KEYS):
            missing = ", ".join(k for k in KEYS if k not in r)
            raise schema.Invalid(f"results[{i}]", f"expected keys {missing} (a neighbour row)")
        for name in JOBS:
            j = r["jobs"][name]
            want = j["together_s"] / j["alone_s"] if j["alone_s"] > 0 else 1.0
            if _differ(j["slowdown"], want):
                raise schema.Invalid(
                    f"results[{i}].jobs.{name}.slowdown",
                    f"expected together_s / alone_s = {want:g}, got {j['slowdown']:g}",
                )
        first = r["jobs"]["first"]
        for key in ("ranks", "bytes", "algorithm"):  # the row's own job (4000 ranks drawn
            if key in first and first[key] != r[key]:  # on 8 hosts: twelfth attack, L-H31)
                raise schema.Invalid(
                    f"results[{i}].jobs.first.{key}",
                    f"expected the row's {key} {r[key]!r}, got {first[key]!r}",
                )
        fabrics = [f for f in doc.get("fabrics") or [doc.get("fabric")] if isinstance(f, dict)]
        hosts = max(
            (f.get("hosts") for f in fabrics if isinstance(f.get("hosts"), int)), default=None
        )
        for name in JOBS:
            got = r["jobs"][name].get("hosts")
            if isinstance(hosts, int) and isinstance(got, int) and not 1 <= got <= hosts:
                raise schema.Invalid(
                    f"results[{i}].jobs.{name}.hosts",
                    f"expected 1 to the fabric's {hosts} hosts, got {got}",
                )
        for key, mine in (("time_s", "together_s"), ("alone_s", "alone_s"), ("slowdown", None)):
            if _differ(r[key], first[mine or key]):
                raise schema.Invalid(
                    f"results[{i}].{key}",
                    f"expected jobs.first.{mine or key} {first[mine or key]:g}, got {r[key]:g}",
                )


def has_neighbour(doc) -> bool:
    return any("jobs" in r for r in doc["results"])


def table(doc) -> Table:
    """One line per row and job: its ranks, time alone, together and slowdown."""
    rows = []
    for r in doc["results"]:
        if "jobs" not in r:
            continue
        for name in JOBS:
            j = r["jobs"][name]
            rows.append(
                [
                    r["algorithm"],
                    str(r["ranks"]),
                    format_bytes(r["bytes"], "g"),
                    name,
                    j["algorithm"],
                    str(j["ranks"]),
                    format_seconds(j["start_s"], ".6g"),
                    format_seconds(j["alone_s"], ".6g"),
                    format_seconds(j["together_s"], ".6g"),
                    f"{j['slowdown']:.6f}",
                ]
            )
    head = ["algorithm", "ranks", "bytes", "job", "its algorithm", "its ranks", "start"]
    return Table(
        "Two jobs on one fabric: each alone and together",
        [*head, "alone", "together", "slowdown"],
        rows,
        "start: after the first job's; alone and together from the job's own start; "
        "slowdown = together / alone (median seed)",
    )


def figure(run):
    """Slowdown against the first job's rank count: one line per job, algorithm and size."""
    fig, ax = plots.figure(f"Slowdown beside a neighbour: {run.tag}")
    lines: dict = {}
    for r in run.doc["results"]:
        for name in JOBS if "jobs" in r else ():
            j = r["jobs"][name]
            key = (name, r["algorithm"], r["bytes"])
            lines.setdefault(key, []).append((r["ranks"], j["slowdown"]))
    pairs = sorted({k[1:] for k in lines}, key=str)  # one colour per algorithm and size
    for (name, alg, n), pts in sorted(lines.items(), key=str):
        i = pairs.index((alg, n))
        pts.sort()
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            "o-" if name == "first" else "s--",
            color=f"C{i % 10}",
            label=f"{name} job, {alg} {n / 2**20:g} MiB",
        )
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks of the first job"), ax.set_ylabel("slowdown (together / alone)")
    ax.legend(fontsize=7)
    return fig


def items(b, run, prefix: str) -> list:
    """The figure and the table, or nothing for a file without a neighbour."""
    if not has_neighbour(run.doc):
        return []
    image = b.image(
        figure(run),
        f"{prefix}sim-neighbour.png",
        "Slowdown beside a neighbouring job",
        "each job's time together / alone (from its own start), median seed",
    )
    return [image, table(run.doc)]
