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
- a flow's bytes left are brought up to date only when its rate changes (``left``,
  ``tupd``), and finish times sit in a heap with stale entries skipped.
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
def component(seeds, ns, lflows, ldeg, route, r_ptr, r_link, lmark, fmark, stamp, comp_l, comp_f):
    """Links and flows connected to the links ``seeds[:ns]``: ``(nl, nf)`` of them in
    ``comp_l``, ``comp_f``, marked with ``stamp`` (flows: free to grow)."""
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
            r = route[f]
            for e in range(r_ptr[r], r_ptr[r + 1]):
                l2 = r_link[e]
                if lmark[l2] != stamp:
                    lmark[l2] = stamp
                    comp_l[nl] = l2
                    nl += 1
    return nl, nf


@njit
def fill(
    nl,
    nf,
    comp_l,
    comp_f,
    lflows,
    ldeg,
    route,
    r_ptr,
    r_link,
    r_w,
    cap,
    fmark,
    stamp,
    new,
    pos,
    tol,
):
    """Progressive filling (:func:`.maxmin.rates`) of one component: ``new[f]`` per flow
    (``pos``: scratch, one entry per link)."""
    lleft, lcnt, lsum = np.empty(nl), np.zeros(nl, np.int64), np.zeros(nl)
    for k in range(nl):
        pos[comp_l[k]] = k
        lleft[k] = cap[comp_l[k]]
    for k in range(nf):
        r = route[comp_f[k]]
        for e in range(r_ptr[r], r_ptr[r + 1]):
            j = pos[r_link[e]]
            lcnt[j] += 1
            lsum[j] += r_w[e]
    level, free, full = 0.0, nf, np.empty(nl, np.int64)
    while free > 0:
        inc = np.inf
        for j in range(nl):
            if lcnt[j] > 0 and lleft[j] / lsum[j] < inc:
                inc = lleft[j] / lsum[j]
        level += inc
        nfull = 0
        for j in range(nl):
            if lcnt[j] > 0:
                lleft[j] -= inc * lsum[j]
                if lleft[j] <= tol * cap[comp_l[j]]:
                    full[nfull] = j
                    nfull += 1
        if nfull == 0:  # rounding: freeze the tightest link anyway
            least = np.inf
            for j in range(nl):
                if lcnt[j] > 0:
                    least = min(least, lleft[j] / lsum[j])
            for j in range(nl):
                if lcnt[j] > 0 and lleft[j] / lsum[j] <= least * (1 + 1e-6):
                    full[nfull] = j
                    nfull += 1
        for q in range(nfull):
            lnk = comp_l[full[q]]
            for s in range(ldeg[lnk]):
                f = lflows[lnk, s]
                if fmark[f] != stamp:
                    continue
                fmark[f] = -stamp  # frozen
                new[f] = level
                free -= 1
                r = route[f]
                for e in range(r_ptr[r], r_ptr[r + 1]):
                    j = pos[r_link[e]]
                    lcnt[j] -= 1
                    lsum[j] = 0.0 if lcnt[j] == 0 else lsum[j] - r_w[e]


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
def touch(touched, nt, tmark, stamp, r, r_ptr, r_link):
    """Add route ``r``'s links to ``touched[:nt]`` (once each per ``stamp``); the new count."""
    for e in range(r_ptr[r], r_ptr[r + 1]):
        if tmark[r_link[e]] != stamp:
            tmark[r_link[e]] = stamp
            touched[nt] = r_link[e]
            nt += 1
    return nt


@njit
def release(i, now, red_t, aft_ptr, aft_idx, aft_red, ready, waits, alpha, ek, ev, en):
    """Message ``i`` arrived at ``now``: its dependents may start ``alpha`` after their last
    dependency (after the reduction, where the dependency was received by the rank waiting)."""
    reduced = now + red_t[i]
    for e in range(aft_ptr[i], aft_ptr[i + 1]):
        j = aft_idx[e]
        val = reduced if aft_red[e] else now
        if val > ready[j]:
            ready[j] = val
        waits[j] -= 1
        if waits[j] == 0:
            ek, ev, en = push(ek, ev, en, ready[j] + alpha, 2 * j + BEGIN)
    return ek, ev, en


@njit
def reshare(g, nt, now, stamp, st, lflows, fk, fv, fn, tol):
    """New max-min rates for the component of the links ``st.touched[:nt]``; a new finish
    time for each flow whose rate changed."""
    route, r_ptr, r_link, r_w, cap = g[2], g[7], g[8], g[9], g[12]
    touched, ldeg, lmark, fmark, comp_l, comp_f, pos = (
        st[0],
        st[1],
        st[2],
        st[3],
        st[4],
        st[5],
        st[6],
    )
    new, rate, left, tupd, fin = st[7], st[8], st[9], st[10], st[11]
    nl, nf = component(
        touched, nt, lflows, ldeg, route, r_ptr, r_link, lmark, fmark, stamp, comp_l, comp_f
    )
    if nf == 0:
        return fk, fv, fn
    fill(
        nl,
        nf,
        comp_l,
        comp_f,
        lflows,
        ldeg,
        route,
        r_ptr,
        r_link,
        r_w,
        cap,
        fmark,
        stamp,
        new,
        pos,
        tol,
    )
    for k in range(nf):
        f = comp_f[k]
        if new[f] != rate[f]:
            left[f] -= rate[f] * (now - tupd[f])
            tupd[f], rate[f] = now, new[f]
            fin[f] = max(now, now + left[f] / rate[f])
            fk, fv, fn = push(fk, fv, fn, fin[f], f)
    return fk, fv, fn


@njit
def run(g, alpha, host_rate, tol):
    """Arrival time (s) of every message; ``g``: the arrays :func:`.exact.simulate` builds:
    ``(nbytes, red_t, route, waits, aft_ptr, aft_idx, aft_red, r_ptr, r_link, r_w, r_lat,
    r_inter, cap)``; ``waits`` is used up."""
    nbytes, red_t, route, waits, aft_ptr, aft_idx, aft_red = (
        g[0],
        g[1],
        g[2],
        g[3],
        g[4],
        g[5],
        g[6],
    )
    r_ptr, r_link, r_lat, r_inter = g[7], g[8], g[10], g[11]
    m, nlinks = nbytes.size, g[12].size
    arrival, ready = np.full(m, np.nan), np.zeros(m)
    st = (
        np.empty(nlinks, np.int64),  # touched links
        np.zeros(nlinks, np.int64),  # flows on each link
        np.zeros(nlinks, np.int64),  # link marks (component)
        np.zeros(m, np.int64),  # flow marks
        np.empty(nlinks, np.int64),  # component links
        np.empty(m, np.int64),  # component flows
        np.zeros(nlinks, np.int64),  # scratch
        np.zeros(m),  # new rates
        np.zeros(m),  # rates, B/s
        np.zeros(m),  # bytes left at tupd
        np.zeros(m),  # tupd
        np.zeros(m),  # finish times
    )
    ldeg, rate, left, tupd, fin = st[1], st[8], st[9], st[10], st[11]
    tmark, active = np.zeros(nlinks, np.int64), np.zeros(m, np.bool_)
    lflows = np.empty((nlinks, 4), np.int64)
    ek, ev, en = np.empty(1024), np.empty(1024, np.int64), 0
    fk, fv, fn = np.empty(1024), np.empty(1024, np.int64), 0
    for i in range(m):
        if waits[i] == 0:
            ek, ev, en = push(ek, ev, en, alpha, 2 * i + BEGIN)
    t, nactive, stamp = 0.0, 0, 0
    while en > 0 or nactive > 0:
        while fn > 0 and not (active[fv[0]] and fin[fv[0]] == fk[0]):
            fn = pop(fk, fv, fn)  # stale: the flow's rate changed since
        t_next = ek[0] if en > 0 else np.inf
        t_fin = fk[0] if fn > 0 else np.inf
        events = not t_fin < t_next * (1 - tol)
        now = t_next if events else t_fin
        dt, t, stamp, nt = now - t, now, stamp + 1, 0
        while fn > 0:  # flows done by now (within tol), the last bytes left
            f = fv[0]
            if not (active[f] and fin[f] == fk[0]):
                fn = pop(fk, fv, fn)
                continue
            if (fk[0] - now) * rate[f] > tol * max(rate[f] * dt, 1.0):
                break
            fn = pop(fk, fv, fn)
            active[f], nactive, r = False, nactive - 1, route[f]
            link_remove(lflows, ldeg, f, r, r_ptr, r_link)
            nt = touch(st[0], nt, tmark, stamp, r, r_ptr, r_link)
            ek, ev, en = push(ek, ev, en, now + r_lat[r], 2 * f + ARRIVE)
        while events and en > 0 and ek[0] <= now * (1 + tol):  # every event of this instant
            i, kind = ev[0] >> 1, ev[0] & 1
            en = pop(ek, ev, en)
            r = route[i]
            if kind == BEGIN and r_inter[r] and nbytes[i] > 0:
                active[i], nactive = True, nactive + 1
                left[i], tupd[i], rate[i] = nbytes[i], now, 0.0
                lflows = link_add(lflows, ldeg, i, r, r_ptr, r_link)
                nt = touch(st[0], nt, tmark, stamp, r, r_ptr, r_link)
            elif kind == BEGIN:  # inside a host (or nothing to send)
                ek, ev, en = push(ek, ev, en, now + nbytes[i] / host_rate, 2 * i + ARRIVE)
            else:
                arrival[i] = now
                ek, ev, en = release(
                    i, now, red_t, aft_ptr, aft_idx, aft_red, ready, waits, alpha, ek, ev, en
                )
        if nt > 0:  # then one reallocation
            fk, fv, fn = reshare(g, nt, now, stamp, st, lflows, fk, fv, fn, tol)
    return arrival
