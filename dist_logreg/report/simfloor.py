"""A ``simulate.json``'s fabric block against what ``simulate`` accepts, and each row's time
against the least time its fabric allows (:mod:`~dist_logreg.report.simcheck` calls it).

No engine finishes a collective before its dependent steps have each paid the fabric's
alpha (the closed form's latency count: 2(p-1) for a ring, log2 p for recursive doubling,
p-1 for a reduce-scatter ring; without a closed form, ceil(log2 p): a step at most doubles
the ranks a rank's data has reached) and, with one rank a host, crossed two links (to a switch and
off it) of the fabric's shortest latency. A file whose times are below that, or whose fabric
no simulation could have had, is a damaged or edited file.

Pure Python: a :class:`~dist_logreg.schema.Invalid` names the key and both values.
"""

from __future__ import annotations

import math

from dist_logreg import schema

#: Relative slack of the checks here and in ``simcheck``: the engines compute busbw as
#: bytes / time x factor in binary64, and JSON keeps 17 significant digits.
RTOL = 1e-6
#: What an uplink or core rate derived from a spec (hosts x rate / oversubscription) may
#: reach: the spec's highest rate x its lowest oversubscription's inverse x the hosts.
DERIVED_FACTOR = 1e3


def _bad(where: str, message: str) -> schema.Invalid:
    return schema.Invalid(where, f"{message} (a file that breaks physics)")


def _num(v) -> bool:
    return schema.is_number(v) and math.isfinite(v)


def _positive(v) -> bool:
    return _num(v) and v > 0


def nic_ports(params) -> float:
    """The links a sprayed connection spreads over at its NIC: ``nic-ports`` x ``planes``
    of the fabric's parameters (1 where it has neither): a rank's bytes go out on each."""
    ports = [_get(_get(params, k), "value") for k in ("nic-ports", "planes")]
    return math.prod(v for v in ports if schema.is_number(v) and v >= 1)


class Floor:
    """The fabric block checked once; :meth:`check` holds each row to its floor."""

    def __init__(self, doc: dict):
        fabric = doc.get("fabric")
        self.doc = doc
        self.values = _values(fabric) if isinstance(fabric, dict) else {}
        self.swept = {  # a sweep's fabrics, each checked once
            b["spec"]: _values(b)
            for b in doc.get("fabrics") or []
            if isinstance(b, dict) and isinstance(b.get("spec"), str)
        }
        self.per_host = (doc.get("placement") or {}).get("ranks_per_host", 1)
        if not _whole_per_host(self.per_host):  # 1e20 was an OverflowError (T-H3)
            raise schema.Invalid(
                "placement.ranks_per_host",
                f"expected a whole number of ranks from 1 to {MAX_PER_HOST}, got {self.per_host!r}",
            )

    def check(self, r: dict, where: str) -> None:
        from dist_logreg.collective.algorithms import get

        try:
            algorithm = get(r["algorithm"])
        except (KeyError, ValueError, TypeError) as exc:
            raise schema.Invalid(f"{where}.algorithm", f"{exc}") from None
        values = self.values if r.get("fabric") is None else self.swept.get(r["fabric"])
        if r.get("fabric") is not None and values is None:
            if r["fabric"] != (self.doc.get("fabric") or {}).get("spec"):
                raise schema.Invalid(
                    f"{where}.fabric",
                    f"expected one of the file's fabrics ({', '.join(self.swept) or 'none'}), "
                    f"got {r['fabric']!r}",
                )
            values = self.values
        if not values:
            return
        alpha = self._alpha(r, where, values)
        if r["ranks"] < 2:
            return
        form = algorithm.closed_form
        # without a closed form (the hierarchical ones, the MPI library's choice): every
        # rank's data reaches every rank, and a step at most doubles whom it has reached
        low = math.ceil(math.log2(r["ranks"]))
        steps = low if not form or algorithm.library else max(float(form(r["ranks"])[0]), low)
        lat = [values[k] for k in ("link-latency", "scaleup-latency") if k in values]
        delays = ((r.get("packet") or {}).get("options") or {}).get("link_delay")
        one = ranks_per_host(self.doc, r) == 1
        if delays and isinstance(delays, dict):  # a packet row's --link-delay: the least
            named = [v for v in delays.values() if isinstance(v, int | float) and v >= 0]
            lat = [*lat, *named] if len(named) == len(delays) else []  # (L-H29)
            delays = None
        hop = 2 * min(lat) if lat and one and not delays else 0.0
        floor = steps * (alpha + hop)
        t = min([r["time_s"], *r["time_s_seeds"]])
        if t < floor * (1 - RTOL):
            raise _bad(
                f"{where}.time_s",
                f"expected at least {floor:g} s ({steps:g} dependent steps x (the fabric's "
                f"alpha {alpha:g} s + two links of {hop / 2:g} s)), got {t:g}",
            )

    def _alpha(self, r: dict, where: str, values: dict) -> float:
        """The fabric's alpha; 0 where a cost model gave it (its source says so; ``null``
        for one per algorithm): a fitted alpha is not the engines' per-message one (a real
        8-rank ring under a model took 90 us, below 14 x its fitted 8.2 us), so only the
        links' latency holds the floor there."""
        alpha = values.get("alpha")
        model = (self.doc.get("cost_model") or {}) if isinstance(self.doc, dict) else {}
        if str(values.get("alpha-source", "")).startswith("cost model") and isinstance(
            model.get("alpha_s"), dict
        ):
            return 0.0  # a fitted alpha (one, or null: one per algorithm), the model recorded
        if not (_num(alpha) and alpha >= 0):
            raise schema.Invalid(
                f"{where}: fabric.params.alpha",
                f"expected a number of seconds >= 0, got {alpha!r}",
            )
        return float(alpha)


def _values(fabric: dict) -> dict:
    """The fabric's parameters by key, each within what ``simulate`` accepts
    (:data:`dist_logreg.schema.FABRIC_BOUNDS`; a rate it derives, such as an uplink of
    hosts x rate / oversubscription, within that x the hosts x 1000), latencies numbers,
    the shape's rate its ``rate``. A fabric block without ``params`` or ``link-latency``
    is not one ``simulate`` writes."""
    params = fabric.get("params")
    if not isinstance(params, dict) or not params:
        raise schema.Invalid("fabric.params", f"expected the fabric's parameters, got {params!r}")
    for key, p in params.items():  # a bare 5e-6 or a number as its source (T-H2)
        if not isinstance(p, dict) or not isinstance(p.get("source", ""), str):
            raise schema.Invalid(f"fabric.params.{key}", f"expected {{value, source}}, got {p!r}")
    values = {k: p.get("value") for k, p in params.items()}
    values["alpha-source"] = (params.get("alpha") or {}).get("source", "")
    hosts = fabric.get("hosts") if _num(fabric.get("hosts")) else 1
    for key, v in values.items():
        if key not in schema.FABRIC_BOUNDS or v is None and key in ("alpha", "gamma"):
            continue  # null: the cost model's, per algorithm
        low, high = schema.FABRIC_BOUNDS[key]
        if str((params[key] or {}).get("source", "")).startswith("derived"):
            high *= DERIVED_FACTOR * max(hosts, 1)
        if not _num(v) or not low <= v <= high:
            raise _bad(
                f"fabric.{key}", f"expected {low:g} to {high:g} (what simulate accepts), got {v!r}"
            )
    for key in ("link-latency",):
        if not _num(values.get(key)):
            raise schema.Invalid(
                f"fabric.params.{key}", f"expected a number of seconds, got {values.get(key)!r}"
            )
    shape = fabric.get("shape")
    if not isinstance(shape, dict):  # a shape of 5 was an AttributeError (T-H2)
        raise schema.Invalid("fabric.shape", f"expected the fabric's shape, got {shape!r}")
    shape_rate = shape.get("rate")
    low, high = schema.FABRIC_BOUNDS["rate"]
    if shape_rate is not None and not (_num(shape_rate) and low <= shape_rate <= high):
        raise _bad(
            "fabric.shape.rate",
            f"expected {low:g} to {high:g} (what simulate accepts), got {shape_rate!r}",
        )
    rate = values.get("rate")
    if _num(shape_rate) and _num(rate) and shape_rate != rate:
        raise _bad("fabric.shape.rate", f"expected params.rate {rate:g} B/s, got {shape_rate:g}")
    return values


def fabric_of(doc: dict, r: dict) -> dict | None:
    """The fabric block a row ran on: a sweep row's own (the file's ``fabrics`` by the row's
    ``fabric`` spec; None if the file lacks it), else the file's."""
    if r.get("fabric") is None:
        return doc.get("fabric")
    for block in doc.get("fabrics") or []:
        if isinstance(block, dict) and block.get("spec") == r["fabric"]:
            return block
    return None


def slows_only(scenario) -> bool:
    """Whether a scenario (the file's block or a sweep row's spec) can only slow links:
    every kind but ``degrade`` with a factor below 1 (which makes links faster)."""
    if scenario is None:
        return True
    if isinstance(scenario, dict):
        kind, factor = scenario.get("kind"), scenario.get("factor", 1.0)
    else:  # a sweep row's spec, as simulate spells it (and an older file's spelling)
        kind, _, rest = str(scenario).strip().partition(":")
        kind = kind.strip().lower()
        pairs = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition("=") for x in rest.split(","))
        }
        try:
            factor = float(pairs.get("factor", 1.0))
        except ValueError:
            return False
    if kind in ("none", "straggler", "background", "fail", "neighbour"):
        return True
    return kind == "degrade" and schema.is_number(factor) and factor >= 1


def host_push(doc, r: dict | None = None) -> float | None:
    """The most B/s one rank can push (its endpoint's fastest link times its NIC's ports and
    planes, plus ``host-rate`` to each other rank of its host) on the fabric row ``r`` ran
    on (a sweep row's own), or None where the file does not say it: a scenario that makes
    links faster (``degrade:factor=0.5``), a sweep over ranks per host."""
    r = r or {}
    fabric = fabric_of(doc, r)
    scenario = r.get("scenario", doc.get("scenario"))
    if not slows_only(scenario):  # simulate refuses a scenario that speeds links up
        raise schema.Invalid("scenario", f"expected a scenario simulate writes, got {scenario!r}")
    if not isinstance(fabric, dict):
        return None
    shape = fabric.get("shape")
    rates = [_get(shape, k) for k in ("rate", "nic_rate", "scaleup_rate")]
    rates = [x for x in rates if schema.is_number(x) and x > 0]
    params = fabric.get("params")
    host = _get(_get(params, "host-rate"), "value", 0.0)
    per_host = ranks_per_host(doc, r)
    if not rates or not schema.is_number(host):
        return None
    return max(rates) * nic_ports(params) + max(host, 0.0) * max(per_host - 1, 0)


def _get(d, key, default=None):
    return d.get(key, default) if isinstance(d, dict) else default


def ranks_per_host(doc: dict, r: dict) -> int:
    """Ranks a host of row ``r`` holds: the row's own (a sweep over ``ranks-per-host``
    records it per row), else the file's placement; a whole number >= 1, or refused."""
    k = r.get("ranks-per-host", (doc.get("placement") or {}).get("ranks_per_host", 1))
    if not _whole_per_host(k):
        raise schema.Invalid(
            "ranks-per-host",
            f"expected a whole number of ranks from 1 to {MAX_PER_HOST}, got {k!r}",
        )
    return int(k)


#: The most ranks a host holds (simulate's ``--ranks-per-host`` bound).
MAX_PER_HOST = 1_000_000


def _whole_per_host(k) -> bool:
    return schema.is_number(k) and 1 <= k <= MAX_PER_HOST and k == int(k)


def fastest_link(fabric) -> float:
    """What one connection may be paced at, B/s: the fastest link rate the file's fabric
    block names, times the NIC ports (and planes) a sprayed connection spreads over (a
    rail fabric's NIC of two ports paces a sprayed QP at both); inf where it names none."""
    rates, ports = [], 1.0
    if isinstance(fabric, dict):
        shape, params = fabric.get("shape") or {}, fabric.get("params") or {}
        rates += [v for k, v in shape.items() if k.endswith("rate") and _positive(v)]
        rates += [
            p["value"]
            for p in params.values()
            if isinstance(p, dict) and p.get("unit") == "B/s" and _positive(p.get("value"))
        ]
        ports = nic_ports(params)
    return max(rates) * ports if rates else float("inf")


def gamma_of(doc, r: dict, fabric) -> float:
    """The row's gamma, s/B: its algorithm's in its cost model (a sweep's: the one the row
    names), else its fabric's."""
    model = doc.get("cost_model")
    for other in doc.get("cost_models") or ():
        if isinstance(other, dict) and other.get("path") == r.get("cost-model"):
            model = other
    per = model.get("gamma_s_per_byte") if isinstance(model, dict) else None
    if isinstance(per, dict) and _positive(per.get(r["algorithm"])):
        return per[r["algorithm"]]
    params = fabric.get("params") if isinstance(fabric, dict) else None
    gamma = params.get("gamma") if isinstance(params, dict) else None
    value = gamma.get("value") if isinstance(gamma, dict) else None
    return value if _positive(value) else 0.0


def check_ideal(r: dict, i: int) -> None:
    """``ratio_to_ideal`` is ``time_s / ideal_s`` (1 at an ideal of 0), and the ideal of an
    ``--exact`` or packet row, its phase-synchronous run's, at most that run's time (each
    phase on the edge links alone is no slower): "time 85 us, ideal 8.5 ms" was drawn
    (thirteenth attack, M-M1). A phase-synchronous row's time is held to it in ``physics``."""
    t, ideal, ratio = r["time_s"], r["ideal_s"], r.get("ratio_to_ideal")
    want = t / ideal if ideal > 0 else 1.0
    if ratio is not None and not (_num(ratio) and math.isclose(ratio, want, rel_tol=RTOL)):
        raise _bad(
            f"results[{i}].ratio_to_ideal", f"expected time_s / ideal_s {want:g}, got {ratio!r}"
        )
    sync = r.get("phase_sync_s", (r.get("packet") or {}).get("flow_phase_sync_s"))
    if _num(sync) and ideal > sync * (1 + RTOL):
        raise _bad(
            f"results[{i}].ideal_s",
            f"expected at most the row's phase-synchronous time {sync:g} s (the ideal is that "
            f"run's with only the edge links finite), got {ideal:g}",
        )


def check_seeds(doc: dict, r: dict, i: int) -> None:
    """A row has one time per seed of its placement block (a sweep row: its own seeds):
    "placement packed, 1000 seed(s)" was shown over rows of one (sixteenth attack, R-H4)."""
    want = r.get("seeds", (doc.get("placement") or {}).get("seeds"))
    if len(r["time_s_seeds"]) != want:
        raise schema.Invalid(
            f"results[{i}].time_s_seeds", f"expected {want} seeds, got {len(r['time_s_seeds'])}"
        )
