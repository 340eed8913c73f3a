"""The kernels of ``--exact``: the event loop and max-min sharing, recomputed per component.

Written for :func:`.jit.njit` (numba where installed, plain Python where not): arrays and
scalars only. :func:`run` plays the message graph as :mod:`.exact` describes. What makes it
fast, besides being compiled:

- events within ``tol`` of one instant are one batch: every start and arrival of the batch
  first, then one reallocation;
- a reallocation touches only the connected component, in the graph of flows and the links
  they cross, of the links whose flows changed (max-min fair rates of flows that share no
  link, directly or through other flows, do not depend on each other), and only the
  flows whose rate changed get a new finish time;
- the filling keeps each link's fill level and scans only links with unfrozen flows (at
  thousands of ranks, a thousand links filled at eighty levels at nearly every event);
- a flow's bytes left are brought up to date only when its rate changes (``left``,
  ``tupd``), and finish times sit in a heap with stale entries skipped;
- the state of a flow lives in a slot, reused once the flow is done: a few thousand
  slots in cache, not one entry per message among millions.
"""

from __future__ import annotations

import numpy as np

from dist_logreg.sim.jit import njit

BEGIN, ARRIVE = 0, 1


@njit
def push(keys, vals, n, k, v):
    """Push ``(k, v)`` on the min-heap ``keys[:n]``/``vals[:n]`` (grown when full)."""
    if n == keys.size:
        k2, v2 = np.empty(2 * n + 16, keys.dtype), np.empty(2 * n + 16, vals.dtype)
        k2[:n], v2[:n] = keys[:n], vals[:n]
        keys, vals = k2, v2
    i = n
    while i > 0:
        up = (i - 1) >> 1
        if keys[up] < k or (keys[up] == k and vals[up] <= v):
            break
        keys[i], vals[i] = keys[up], vals[up]
        i = up
    keys[i], vals[i] = k, v
    return keys, vals, n + 1


@njit
def pop(keys, vals, n):
    """Drop the top of the heap (read it from ``keys[0]``, ``vals[0]`` first); the new size."""
    n -= 1
    k, v = keys[n], vals[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and (
            keys[c + 1] < keys[c] or (keys[c + 1] == keys[c] and vals[c + 1] < vals[c])
        ):
            c += 1
        if keys[c] < k or (keys[c] == k and vals[c] < v):
            keys[i], vals[i] = keys[c], vals[c]
            i = c
        else:
            break
    if n > 0:
        keys[i], vals[i] = k, v
    return n


@njit
def component(seeds, ns, lflows, ldeg, s_route, r_ptr, r_link, lmark, fmark, stamp, comp_l, comp_f):
    """Links and flows (slots) connected to the links ``seeds[:ns]``: ``(nl, nf)`` of them
    in ``comp_l``, ``comp_f``, marked with ``stamp`` (flows: free to grow)."""
    nl = nf = 0
    for k in range(ns):
        if lmark[seeds[k]] != stamp:
            lmark[seeds[k]] = stamp
            comp_l[nl] = seeds[k]
            nl += 1
    h = 0
    while h < nl:
        lnk = comp_l[h]
        h += 1
        for q in range(ldeg[lnk]):
            f = lflows[lnk, q]
            if fmark[f] == stamp:
                continue
            fmark[f] = stamp
            comp_f[nf] = f
            nf += 1
            r = s_route[f]
            for e in range(r_ptr[r], r_ptr[r + 1]):
                l2 = r_link[e]
                if lmark[l2] != stamp:
                    lmark[l2] = stamp
                    comp_l[nl] = l2
                    nl += 1
    return nl, nf


@njit
def _levels(cap, frz, lsum, tol):
    """The level of the unfrozen flows at which a link is full (``cap - frz = level *
    lsum``), and that at which it is within ``tol`` of full (what freezes its flows)."""
    return (cap - frz) / lsum, (cap * (1.0 - tol) - frz) / lsum


@njit
def _least(lv, na):
    """The least of ``lv[:na]`` and where it is (inf, 0 when ``na`` is 0)."""
    level, first = np.inf, 0
    for a in range(na):
        if lv[a] < level:
            level, first = lv[a], a
    return level, first


@njit
def fill(
    nl, nf, lk, comp_f, lflows, ldeg, s_route, r_ptr, r_link, r_w, cap, fmark, stamp, new, tol
):
    """Progressive filling (:func:`.maxmin.rates`) of one component: ``new[f]`` per flow.
    ``lk``: ``(comp_l, pos, frozen load, unfrozen flows, their weight, full)`` per link
    (scratch but comp_l). A link fills at a level of its own, ``(cap - frozen) / weight``,
    kept per link (``lv``; ``lt``: within ``tol`` of full) as it moves only when one of its
    flows freezes; the scan for the next level skips links without unfrozen flows."""
    comp_l, pos, frz, lcnt, lsum, full = lk
    lv, lt, act = np.empty(nl), np.empty(nl), np.empty(nl, np.int64)
    for k in range(nl):
        pos[comp_l[k]] = k
        frz[k], lcnt[k], lsum[k] = 0.0, 0, 0.0
    for k in range(nf):
        r = s_route[comp_f[k]]
        for e in range(r_ptr[r], r_ptr[r + 1]):
            j = pos[r_link[e]]
            lcnt[j] += 1
            lsum[j] += r_w[e]
    slot, na = np.empty(nl, np.int64), 0
    for j in range(nl):
        if lcnt[j] > 0:
            act[na], slot[j] = j, na
            lv[na], lt[na] = _levels(cap[comp_l[j]], 0.0, lsum[j], tol)
            na += 1
    free, rnd, dirty, dl = nf, 0, np.zeros(nl, np.int64), np.empty(nl, np.int64)
    level, first = _least(lv, na)
    while free > 0 and na > 0:
        rnd, nfull, nd, nxt, nxt_j = rnd + 1, 0, 0, np.inf, -1
        for a in range(na):  # the first to fill, every link within tol of full there...
            if lt[a] <= level or a == first:
                full[nfull] = act[a]
                nfull += 1
            elif lv[a] < nxt:  # ...and the least level of the others
                nxt, nxt_j = lv[a], act[a]
        for q in range(nfull):
            lnk = comp_l[full[q]]
            for s in range(ldeg[lnk]):
                f = lflows[lnk, s]
                if fmark[f] != stamp:
                    continue
                fmark[f], new[f], free = -stamp, level, free - 1  # frozen
                r = s_route[f]
                for e in range(r_ptr[r], r_ptr[r + 1]):
                    j = pos[r_link[e]]
                    lcnt[j] -= 1
                    frz[j] += r_w[e] * level
                    lsum[j] = 0.0 if lcnt[j] == 0 else lsum[j] - r_w[e]
                    a = slot[j]
                    if lcnt[j] > 0:  # its level moves up
                        lv[a], lt[a] = _levels(cap[comp_l[j]], frz[j], lsum[j], tol)
                    else:  # no unfrozen flow left: out of the scan
                        na -= 1
                        act[a], lv[a], lt[a] = act[na], lv[na], lt[na]
                        slot[act[a]] = a
                    if dirty[j] != rnd:
                        dirty[j], dl[nd], nd = rnd, j, nd + 1
        if nxt_j < 0 or dirty[nxt_j] == rnd:  # the least of the others moved: scan again
            level, first = _least(lv, na)
            continue
        level, first = nxt, slot[nxt_j]  # else it, or a link whose level moved, is next
        for d in range(nd):
            if lcnt[dl[d]] > 0 and lv[slot[dl[d]]] < level:
                level, first = lv[slot[dl[d]]], slot[dl[d]]


@njit
def link_add(lflows, ldeg, f, r, r_ptr, r_link):
    """Put flow ``f`` (route ``r``) on its links; the adjacency, grown when a link is full."""
    for e in range(r_ptr[r], r_ptr[r + 1]):
        lnk = r_link[e]
        if ldeg[lnk] == lflows.shape[1]:
            grown = np.empty((lflows.shape[0], 2 * lflows.shape[1]), lflows.dtype)
            grown[:, : lflows.shape[1]] = lflows
            lflows = grown
        lflows[lnk, ldeg[lnk]] = f
        ldeg[lnk] += 1
    return lflows


@njit
def link_remove(lflows, ldeg, f, r, r_ptr, r_link):
    for e in range(r_ptr[r], r_ptr[r + 1]):
        lnk = r_link[e]
        for q in range(ldeg[lnk]):
            if lflows[lnk, q] == f:
                ldeg[lnk] -= 1
                lflows[lnk, q] = lflows[lnk, ldeg[lnk]]
                break


@njit
def touch(touched, nt, tmark, stamp, r, r_ptr, r_link, ldeg):
    """Add route ``r``'s links that carry a flow to ``touched[:nt]`` (once each per
    ``stamp``); the new count. A link without flows changes no rate."""
    for e in range(r_ptr[r], r_ptr[r + 1]):
        if tmark[r_link[e]] != stamp and ldeg[r_link[e]] > 0:
            tmark[r_link[e]] = stamp
            touched[nt] = r_link[e]
            nt += 1
    return nt


@njit
def begin(j, t0, g, host_rate, ek, ev, en):
    """Message ``j`` may start at ``t0``: a flow begins then (an event: it shares links);
    a message inside a host (or of no bytes) shares nothing: its arrival is known now."""
    if g[11][g[2][j]] and g[0][j] > 0:
        return push(ek, ev, en, t0, 2 * j + BEGIN)
    return push(ek, ev, en, t0 + g[0][j] / host_rate, 2 * j + ARRIVE)


@njit
def release(i, now, red_t, g, ready, waits, alpha, host_rate, ek, ev, en):
    """Message ``i`` arrived at ``now``: its dependents may start ``alpha`` after their last
    dependency (after the reduction, where the dependency was received by the rank waiting)."""
    reduced, aft_idx, aft_red = now + red_t, g[5], g[6]
    for e in range(g[4][i], g[4][i + 1]):
        j = aft_idx[e]
        val = reduced if aft_red[e] else now
        if val > ready[j]:
            ready[j] = val
        waits[j] -= 1
        if waits[j] == 0:
            ek, ev, en = begin(j, ready[j] + alpha, g, host_rate, ek, ev, en)
    return ek, ev, en


@njit
def alone(r, r_ptr, r_link, r_w, cap, ldeg):
    """The max-min rate of a flow on route ``r`` if no other flow shares its links (what
    :func:`fill` gives a component of one flow), else 0."""
    x = np.inf
    for e in range(r_ptr[r], r_ptr[r + 1]):
        if ldeg[r_link[e]] > 1:
            return 0.0
        x = min(x, cap[r_link[e]] / r_w[e])
    return x


#: A finish-heap entry is ``slot | generation << SLOT_BITS``: stale once the slot is reused.
SLOT_BITS = 24


@njit
def reshare(g, nt, now, stamp, sl, lk, lflows, ldeg, fk, fv, fn, tol):
    """New max-min rates for the component of the links ``lk[6][:nt]`` (touched); a new
    finish time for each flow whose rate changed."""
    r_ptr, r_link, r_w, cap = g[7], g[8], g[9], g[12]
    s_gen, s_route, fmark, comp_f, new, rate, left, tupd, fin = sl[1:]
    comp_l, lmark = lk[0], lk[7]
    nl, nf = component(
        lk[6], nt, lflows, ldeg, s_route, r_ptr, r_link, lmark, fmark, stamp, comp_l, comp_f
    )
    if nf == 0:
        return fk, fv, fn
    fill(
        nl,
        nf,
        lk[:6],
        comp_f,
        lflows,
        ldeg,
        s_route,
        r_ptr,
        r_link,
        r_w,
        cap,
        fmark,
        stamp,
        new,
        tol,
    )
    for k in range(nf):
        f = comp_f[k]
        if new[f] != rate[f]:
            left[f] -= rate[f] * (now - tupd[f])
            tupd[f], rate[f] = now, new[f]
            fin[f] = max(now, now + left[f] / rate[f])
            fk, fv, fn = push(fk, fv, fn, fin[f], f | (s_gen[f] << SLOT_BITS))
    return fk, fv, fn


@njit
def slots(n):
    """Flow state of ``n`` slots: ``(message, generation, route, mark, component scratch,
    new rate, rate B/s, bytes left at tupd, tupd, finish time)``."""
    i, f = np.zeros(n, np.int64), np.zeros(n)
    return (i, i.copy(), i.copy(), i.copy(), i.copy(), f, f.copy(), f.copy(), f.copy(), f.copy())


@njit
def grow(sl, free):
    """Twice the slots (the new ones on the free stack ``free``, returned grown too)."""
    n = sl[0].size
    big = slots(2 * n)
    big[0][:n], big[1][:n], big[2][:n], big[3][:n], big[4][:n] = sl[0], sl[1], sl[2], sl[3], sl[4]
    big[5][:n], big[6][:n], big[7][:n], big[8][:n], big[9][:n] = sl[5], sl[6], sl[7], sl[8], sl[9]
    stack = np.empty(2 * n, np.int64)
    stack[:n] = np.arange(2 * n - 1, n - 1, -1)
    return big, stack, n


@njit
def links(n):
    """Per link: component links, position, capacity left, flows, weight, full (the
    progressive filling's scratch), touched, and two marks."""
    z, zf = np.zeros(n, np.int64), np.zeros(n)
    return (z, z.copy(), zf, z.copy(), zf.copy(), z.copy(), z.copy(), z.copy(), z.copy())


@njit
def run(g, alpha, gamma, host_rate, tol, ready0):
    """Arrival time (s) of every message; ``g``: the arrays :func:`.exact.simulate` builds:
    ``(nbytes, reduce, route, waits, aft_ptr, aft_idx, aft_red, r_ptr, r_link, r_w, r_lat,
    r_inter, cap)``; ``waits`` is used up. ``ready0``: per message, the earliest time it may
    be ready (its sender's start offset): it starts ``alpha`` after that or after its last
    dependency, whichever is later."""
    nbytes, reduce, route, waits = g[0], g[1], g[2], g[3]
    r_ptr, r_link, r_w, r_lat, cap = g[7], g[8], g[9], g[10], g[12]
    nlinks = cap.size
    arrival, ready = np.full(nbytes.size, np.nan), ready0.copy()
    lk = links(nlinks)
    sl, free = slots(256), np.arange(255, -1, -1).astype(np.int64)
    nfree, ldeg, lflows = 256, np.zeros(nlinks, np.int64), np.empty((nlinks, 4), np.int64)
    ek, ev, en = np.empty(1024), np.empty(1024, np.int64), 0
    fk, fv, fn = np.empty(1024), np.empty(1024, np.int64), 0
    for i in range(nbytes.size):
        if waits[i] == 0:
            ek, ev, en = begin(i, ready[i] + alpha, g, host_rate, ek, ev, en)
    t, nactive, stamp, mask = 0.0, 0, 0, (1 << SLOT_BITS) - 1
    while en > 0 or nactive > 0:
        s_msg, s_gen, s_route, rate, fin = sl[0], sl[1], sl[2], sl[6], sl[9]
        while fn > 0 and not (
            s_gen[fv[0] & mask] == fv[0] >> SLOT_BITS and fin[fv[0] & mask] == fk[0]
        ):
            fn = pop(fk, fv, fn)  # stale: the flow's rate changed since, or it is done
        t_next = ek[0] if en > 0 else np.inf
        t_fin = fk[0] if fn > 0 else np.inf
        events = not t_fin < t_next * (1 - tol)
        now = t_next if events else t_fin
        dt, t, stamp, nt = now - t, now, stamp + 1, 0
        while fn > 0:  # flows done by now (within tol), the last bytes left
            f = fv[0] & mask
            if not (s_gen[f] == fv[0] >> SLOT_BITS and fin[f] == fk[0]):
                fn = pop(fk, fv, fn)
                continue
            if (fk[0] - now) * rate[f] > tol * max(rate[f] * dt, 1.0):
                break
            fn = pop(fk, fv, fn)
            i, r = s_msg[f], s_route[f]
            link_remove(lflows, ldeg, f, r, r_ptr, r_link)
            nt = touch(lk[6], nt, lk[8], stamp, r, r_ptr, r_link, ldeg)
            ek, ev, en = push(ek, ev, en, now + r_lat[r], 2 * i + ARRIVE)
            s_gen[f], nactive, free[nfree], nfree = s_gen[f] + 1, nactive - 1, f, nfree + 1
        while events and en > 0 and ek[0] <= now * (1 + tol):  # every event of this instant
            i, kind = ev[0] >> 1, ev[0] & 1
            en = pop(ek, ev, en)
            r = route[i]
            if kind == BEGIN:  # a flow (messages inside a host: ARRIVE only, see begin)
                if nfree == 0:
                    sl, free, nfree = grow(sl, free)
                f, nfree, nactive = free[nfree - 1], nfree - 1, nactive + 1
                sl[0][f], sl[2][f], sl[6][f], sl[7][f], sl[8][f] = i, r, 0.0, nbytes[i], now
                lflows = link_add(lflows, ldeg, f, r, r_ptr, r_link)
                x = alone(r, r_ptr, r_link, r_w, cap, ldeg)
                if x > 0:  # alone on its links: its own component, a rate at once
                    sl[6][f], sl[9][f] = x, now + nbytes[i] / x
                    fk, fv, fn = push(fk, fv, fn, sl[9][f], f | (sl[1][f] << SLOT_BITS))
                else:
                    nt = touch(lk[6], nt, lk[8], stamp, r, r_ptr, r_link, ldeg)
            else:
                arrival[i] = now
                ek, ev, en = release(
                    i, now, reduce[i] * gamma, g, ready, waits, alpha, host_rate, ek, ev, en
                )
        if nt > 0:  # then one reallocation
            fk, fv, fn = reshare(g, nt, now, stamp, sl, lk, lflows, ldeg, fk, fv, fn, tol)
    return arrival
