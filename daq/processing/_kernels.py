"""Numba kernels: private, pure, writing into arrays their wrappers allocate.

Conventions shared by every kernel:
- NaN is an invalid sample (a gap record, a bad value): it never enters a median, a mean,
  a sum or a deviation; what each statistic does about it is the wrapper's documented policy.
- Streaming kernels carry their state in small arrays owned by the caller, so a 1 Hz channel
  costs O(1) or O(window) per sample and a chunk costs one call.
- The batch and the streaming form of a filter share no code where an independent form is
  cheap (the tests compare them); where they share the update step, the tests compare them
  with a naive NumPy formula instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAD_SCALE = 1.4826  # MAD → σ for normal data (DOMAIN.md: Hampel identifier)


# -- sorted windows ---------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _insert_sorted(s, n, v):
    """Insert ``v`` into ``s[:n]`` (ascending); returns the new count."""
    j = n
    while j > 0 and s[j - 1] > v:
        s[j] = s[j - 1]
        j -= 1
    s[j] = v
    return n + 1


@njit(cache=True, nogil=True)
def _remove_sorted(s, n, v):
    """Remove one ``v`` from ``s[:n]``; returns the new count (``v`` must be there)."""
    j = 0
    while j < n and s[j] != v:
        j += 1
    while j < n - 1:
        s[j] = s[j + 1]
        j += 1
    return n - 1


@njit(cache=True, nogil=True)
def _median_sorted(s, n):
    h = n // 2
    if n % 2 == 1:
        return s[h]
    return 0.5 * (s[h - 1] + s[h])


@njit(cache=True, nogil=True)
def _mad_sorted(s, n, m, scratch):
    """Median of |s - m| for sorted ``s[:n]`` with median ``m``: a merge of the two
    monotone runs of deviations (left of the median going down, right going up), stopped
    as soon as the middle of the merged run is reached."""
    left = (n - 1) // 2
    right = left + 1
    last = n // 2  # the highest merged index the median needs
    k = 0
    while k <= last:
        if right >= n or (left >= 0 and m - s[left] <= s[right] - m):
            scratch[k] = m - s[left]
            left -= 1
        else:
            scratch[k] = s[right] - m
            right += 1
        k += 1
    return _median_sorted(scratch, n)


@njit(cache=True, nogil=True)
def _replace_sorted(s, n, old, new):
    """Swap one ``old`` in sorted ``s[:n]`` for ``new`` in one pass (both finite)."""
    j = 0
    while s[j] != old:
        j += 1
    if new > old:
        while j + 1 < n and s[j + 1] < new:
            s[j] = s[j + 1]
            j += 1
    else:
        while j > 0 and s[j - 1] > new:
            s[j] = s[j - 1]
            j -= 1
    s[j] = new


@njit(cache=True, nogil=True)
def _hampel_judge(s, n, x, t, floor, scratch):
    """(replacement, flagged) of the centre value ``x`` against the finite window ``s[:n]``;
    a deviation must also exceed ``floor`` (engineering units): on a quiet plateau the MAD
    is the sensor's noise, and noise is not a spike."""
    if n < 3 or x != x:
        return x, False
    m = _median_sorted(s, n)
    mad = _mad_sorted(s, n, m, scratch)
    d = abs(x - m)
    if d > t * MAD_SCALE * mad and d > floor:
        return m, True
    return x, False


# -- Hampel -----------------------------------------------------------------------------------

BLOCK = 256  # pairs of centres per block of :func:`_hampel` (buffers: 4 kB·k + 16 kB)
NETWORK_MAX_K = 16  # wider windows use the sliding sorted window (:func:`_hampel_sorted`)


@njit(cache=True, nogil=True)
def _pair_network(k):
    """Comparators (p, q), p < q, that leave the k-th and (k+1)-th smallest of 2k values on
    wires k-1 and k: Batcher's odd-even merge sort (wires past 2k dropped: they would hold
    +inf and never swap), pruned backwards to the comparators those two wires depend on.
    Its first k comparators are the layer (0, 1), (2, 3) … (every input matters), which
    :func:`_hampel` applies as it loads the block."""
    n = 2 * k
    size, m = 1, 0
    while size < n:
        size *= 2
        m += 1
    full = np.empty((size // 2 * (m * (m + 1) // 2) + 1, 2), dtype=np.int64)
    c = 0
    p = 1
    while p < size:
        q = p
        while q >= 1:
            for j in range(q % p, size - q, 2 * q):
                for i in range(min(q, size - j - q)):
                    a, b = i + j, i + j + q
                    if a // (2 * p) == b // (2 * p) and b < n:
                        full[c, 0], full[c, 1] = a, b
                        c += 1
            q //= 2
        p *= 2
    need = np.zeros(n, dtype=np.bool_)
    need[k - 1] = need[k] = True
    keep = np.zeros(c, dtype=np.bool_)
    for i in range(c - 1, -1, -1):
        a, b = full[i, 0], full[i, 1]
        if need[a] or need[b]:
            keep[i] = need[a] = need[b] = True
    return full[:c][keep]


@njit(cache=True, nogil=True)
def _hampel_window(x, i, k, t, floor, s, scratch):
    """The decision on ``x[i]`` from its window sorted afresh (a window holding NaN)."""
    cnt = 0
    for j in range(i - k, i + k + 1):
        if x[j] == x[j]:
            cnt = _insert_sorted(s, cnt, x[j])
    return _hampel_judge(s, cnt, x[i], t, floor, scratch)


@njit(cache=True, nogil=True)
def _count_below(x, first, w, m2, c, med, dev, cnt):
    """cnt[j] += how many of x[first + j … first + j + w - 1] have c·|x − med[j]| < dev[j];
    three window offsets per pass over the block (fewer loads and stores of cnt)."""
    r = 0
    while r + 3 <= w:
        xa = x[first + r:first + r + m2]
        xb = x[first + r + 1:first + r + 1 + m2]
        xc = x[first + r + 2:first + r + 2 + m2]
        for j in range(m2):
            m, d = med[j], dev[j]
            cnt[j] += ((1.0 if c * abs(xa[j] - m) < d else 0.0)
                       + (1.0 if c * abs(xb[j] - m) < d else 0.0)
                       + (1.0 if c * abs(xc[j] - m) < d else 0.0))
        r += 3
    while r < w:
        xs = x[first + r:first + r + m2]
        for j in range(m2):
            cnt[j] += 1.0 if c * abs(xs[j] - med[j]) < dev[j] else 0.0
        r += 1


@njit(cache=True, nogil=True)
def _hampel(x, k, t, floor, out, flags):
    """Centred window 2k+1; the first and last ``k`` samples have no full window and pass
    unjudged. The same decisions as :func:`_hampel_sorted`, found another way, in blocks
    of centres, each step a loop over the block that the compiler vectorises:

    - Median: the windows of centres i and i+1 share 2k values; a comparator network puts
      their k-th and (k+1)-th smallest (lo, hi) on two wires, and each median is the one
      value the window adds, clamped to [lo, hi]: one network for two medians.
    - MAD, never computed: with c = t·1.4826 and d = |x_i − m|, ``d > c·MAD`` holds iff at
      least k+1 of the window's 2k+1 values have c·|x_j − m| < d (the MAD is the (k+1)-th
      smallest deviation and multiplying by c ≥ 0 keeps the order), so a count decides,
      with the flags of the formula, to the last bit.
    - A window holding NaN is sorted afresh and judged as :func:`_hampel_sorted` would."""
    n = x.shape[0]
    w = 2 * k + 1
    if n < w or k > NETWORK_MAX_K:
        _hampel_sorted(x, k, t, floor, out, flags)
        return
    for i in range(k):  # the edges; every centre is written below
        out[i], flags[i] = x[i], False
        out[n - 1 - i], flags[n - 1 - i] = x[n - 1 - i], False
    c = t * MAD_SCALE
    net = _pair_network(k)
    buf = np.empty((2 * k, BLOCK))
    med = np.empty(2 * BLOCK)
    ev = np.empty(BLOCK + k)
    od = np.empty(BLOCK + k)
    dev = np.empty(2 * BLOCK)
    cnt = np.empty(2 * BLOCK)
    s = np.empty(w)
    scratch = np.empty(w)
    end = n - k  # centres are k … n-k-1
    pairs = (end - k) // 2
    for b0 in range(0, pairs, BLOCK):
        nb = min(BLOCK, pairs - b0)
        lo = k + 2 * b0  # first centre of the block
        m2 = 2 * nb
        # the block's windows span x[lo-k … lo+m2+k-1]: split into even and odd samples,
        # every read below is at unit stride; the core of pair j is od[j], ev[j+1], od[j+1]
        # … ev[j+k], and the network's first layer pairs each od with the next ev
        nans = 0
        for j in range(nb + k):
            ve, vo = x[lo - k + 2 * j], x[lo - k + 2 * j + 1]
            ev[j], od[j] = ve, vo
            nans += (ve != ve) + (vo != vo)
        for r in range(k):
            so, se = od[r:r + nb], ev[r + 1:r + 1 + nb]
            bp, bq = buf[2 * r], buf[2 * r + 1]
            for j in range(nb):
                a, z = so[j], se[j]
                bp[j] = a if a < z else z
                bq[j] = z if a < z else a
        for e in range(k, net.shape[0]):
            bp, bq = buf[net[e, 0]], buf[net[e, 1]]  # rows: the loop vectorises
            for j in range(nb):
                a, z = bp[j], bq[j]
                bp[j] = a if a < z else z
                bq[j] = z if a < z else a
        blo, bhi = buf[k - 1], buf[k]
        eright = od[k:k + nb]  # what the window of the pair's second centre adds
        h = k // 2
        x0 = od[h:h + nb] if k % 2 else ev[h:h + nb]  # the pair's centres
        x1 = ev[h + 1:h + 1 + nb] if k % 2 else od[h:h + nb]
        for j in range(nb):
            lo_v, hi_v = blo[j], bhi[j]
            a = ev[j]  # what the window of the first centre adds
            a = a if a < hi_v else hi_v
            m = a if a > lo_v else lo_v
            med[2 * j] = m
            dev[2 * j] = abs(x0[j] - m)
            cnt[2 * j] = 0.0
            a = eright[j]
            a = a if a < hi_v else hi_v
            m = a if a > lo_v else lo_v
            med[2 * j + 1] = m
            dev[2 * j + 1] = abs(x1[j] - m)
            cnt[2 * j + 1] = 0.0
        xc = x[lo:lo + m2]
        _count_below(x, lo - k, w, m2, c, med, dev, cnt)
        oc = out[lo:lo + m2]
        fc = flags[lo:lo + m2]
        for j in range(m2):
            f = (cnt[j] > k) & (dev[j] > floor)
            oc[j] = med[j] if f else xc[j]
            fc[j] = f
        if nans:
            last = -w  # the latest NaN at or before the window's right end
            for j in range(lo - k, lo + k):
                if x[j] != x[j]:
                    last = j
            for i in range(lo, lo + m2):
                if x[i + k] != x[i + k]:
                    last = i + k
                if last >= i - k:
                    out[i], flags[i] = _hampel_window(x, i, k, t, floor, s, scratch)
    if (end - k) % 2:  # the odd centre left over
        out[end - 1], flags[end - 1] = _hampel_window(x, end - 1, k, t, floor, s, scratch)


@njit(cache=True, nogil=True)
def _hampel_sorted(x, k, t, floor, out, flags):
    """Centred window 2k+1, a sliding sorted window: O(k) per sample. The first and last
    ``k`` samples have no full window and pass unjudged. The form for wide windows (and
    the tests' reference for :func:`_hampel`)."""
    n = x.shape[0]
    w = 2 * k + 1
    s = np.empty(w)
    scratch = np.empty(w)
    cnt = 0
    for i in range(n):
        out[i] = x[i]
        flags[i] = False
    if n < w:
        return
    for j in range(w - 1):
        if x[j] == x[j]:
            cnt = _insert_sorted(s, cnt, x[j])
    for i in range(k, n - k):
        new = x[i + k]
        old = x[i - k - 1] if i > k else np.nan  # leaves as ``new`` enters
        if old == old and new == new:
            _replace_sorted(s, cnt, old, new)
        else:
            if old == old:
                cnt = _remove_sorted(s, cnt, old)
            if new == new:
                cnt = _insert_sorted(s, cnt, new)
        out[i], flags[i] = _hampel_judge(s, cnt, x[i], t, floor, scratch)


@njit(cache=True, nogil=True)
def _hampel_stream(x, k, t, floor, ring, s, scratch, state, out, flags):
    """Push ``x``; write the decisions on the samples that became centred (each is ``k``
    samples behind the newest) to ``out``/``flags``; return how many. ``state`` holds
    [ring position, finite count in ``s``, samples seen]."""
    w = 2 * k + 1
    pos, cnt, seen = state[0], state[1], state[2]
    m = 0
    for i in range(x.shape[0]):
        old = ring[pos] if seen >= w else np.nan  # the oldest leaves the window
        v = x[i]
        if old == old and v == v:
            _replace_sorted(s, cnt, old, v)
        else:
            if old == old:
                cnt = _remove_sorted(s, cnt, old)
            if v == v:
                cnt = _insert_sorted(s, cnt, v)
        ring[pos] = v
        pos = (pos + 1) % w
        seen += 1
        centre = seen - 1 - k
        if centre < 0:
            continue
        c = ring[(pos - 1 - k) % w]
        if seen >= w:
            out[m], flags[m] = _hampel_judge(s, cnt, c, t, floor, scratch)
        else:  # one of the first k samples: no full window, as in the batch form
            out[m], flags[m] = c, False
        m += 1
    state[0], state[1], state[2] = pos, cnt, seen
    return m


# -- rolling filters (trailing windows) -------------------------------------------------------

@njit(cache=True, nogil=True)
def _rolling_median(x, w, out):
    """Median of the finite values among the last ``w`` samples (NaN when none)."""
    for i in range(x.shape[0]):
        lo = max(0, i - w + 1)
        seg = x[lo:i + 1]
        seg = np.sort(seg[seg == seg])
        out[i] = np.nan if seg.shape[0] == 0 else _median_sorted(seg, seg.shape[0])


@njit(cache=True, nogil=True)
def _rolling_median_stream(x, w, ring, s, state, out):
    pos, cnt, seen = state[0], state[1], state[2]
    for i in range(x.shape[0]):
        if seen >= w:
            old = ring[pos]
            if old == old:
                cnt = _remove_sorted(s, cnt, old)
        v = x[i]
        ring[pos] = v
        if v == v:
            cnt = _insert_sorted(s, cnt, v)
        pos = (pos + 1) % w
        seen += 1
        out[i] = np.nan if cnt == 0 else _median_sorted(s, cnt)
    state[0], state[1], state[2] = pos, cnt, seen


@njit(cache=True, nogil=True)
def _rolling_mean(x, w, out):
    """Mean of the finite values among the last ``w`` samples (NaN when none)."""
    for i in range(x.shape[0]):
        total = 0.0
        n = 0
        for j in range(max(0, i - w + 1), i + 1):
            if x[j] == x[j]:
                total += x[j]
                n += 1
        out[i] = np.nan if n == 0 else total / n


@njit(cache=True, nogil=True)
def _rolling_mean_stream(x, w, ring, state, out):
    """O(w) per sample: the window is summed from the ring, oldest first, so rounding
    cannot drift and the result is the batch form's to the last bit.
    ``state`` holds [ring position, samples seen]."""
    pos, seen = state[0], state[1]
    for i in range(x.shape[0]):
        ring[pos] = x[i]
        pos = (pos + 1) % w
        seen += 1
        start = pos if seen >= w else 0
        total = 0.0
        n = 0
        for j in range(min(seen, w)):
            v = ring[(start + j) % w]
            if v == v:
                total += v
                n += 1
        out[i] = np.nan if n == 0 else total / n
    state[0], state[1] = pos, seen


@njit(cache=True, nogil=True)
def _ewma(x, alpha, state, out):
    """y = α·x + (1−α)·y; an invalid sample leaves y as it was (NaN until the first valid).
    ``state[0]`` is y (NaN before any valid sample)."""
    y = state[0]
    for i in range(x.shape[0]):
        v = x[i]
        if v == v:
            y = v if y != y else alpha * v + (1.0 - alpha) * y
        out[i] = y
    state[0] = y


@njit(cache=True, nogil=True)
def _rate(t, x, state, out):
    """(x − x_prev)/(t − t_prev) against the previous valid sample, units per second;
    NaN for the first valid sample, an invalid one, or no time elapsed.
    ``state`` holds [t_prev, x_prev] (NaN before any valid sample)."""
    tp, xp = state[0], state[1]
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            out[i] = np.nan
            continue
        dt = t[i] - tp
        out[i] = (v - xp) / dt if (xp == xp and dt > 0) else np.nan
        tp, xp = t[i], v
    state[0], state[1] = tp, xp


@njit(cache=True, nogil=True)
def _stuck(x, tol, n_min, state, out):
    """Flag a sample once the current run of valid samples spans ≤ ``tol`` for at least
    ``n_min`` samples (a frozen transducer, a logger repeating its last value).
    ``state`` holds [run min, run max, run length]."""
    lo, hi, n = state[0], state[1], state[2]
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            out[i] = False
            continue
        if n > 0 and max(hi, v) - min(lo, v) <= tol:
            lo, hi, n = min(lo, v), max(hi, v), n + 1
        else:
            lo, hi, n = v, v, 1.0
        out[i] = n >= n_min
    state[0], state[1], state[2] = lo, hi, n


# -- window statistics ------------------------------------------------------------------------
# accumulator layout (float64[13]); times are epoch seconds
N, SUM, MEAN, M2, MIN, TMIN, MAX, TMAX, FIRST, TFIRST, LAST, TLAST, NBAD = range(13)
ACC_SIZE = 13


@njit(cache=True, nogil=True)
def _acc_init(acc):
    acc[:] = 0.0
    acc[MIN], acc[MAX] = np.inf, -np.inf
    acc[TMIN] = acc[TMAX] = acc[FIRST] = acc[LAST] = np.nan
    acc[TFIRST], acc[TLAST] = np.inf, -np.inf


@njit(cache=True, nogil=True)
def _acc_add(acc, ti, v):
    """Welford's update, O(1); extremes keep the earliest time of a tie, first and last
    are by measurement time (an out-of-order sample lands where it belongs)."""
    if v != v:
        acc[NBAD] += 1.0
        return
    acc[N] += 1.0
    acc[SUM] += v
    d = v - acc[MEAN]
    acc[MEAN] += d / acc[N]
    acc[M2] += d * (v - acc[MEAN])
    if v < acc[MIN] or (v == acc[MIN] and ti < acc[TMIN]):
        acc[MIN], acc[TMIN] = v, ti
    if v > acc[MAX] or (v == acc[MAX] and ti < acc[TMAX]):
        acc[MAX], acc[TMAX] = v, ti
    if ti < acc[TFIRST]:
        acc[FIRST], acc[TFIRST] = v, ti
    if ti >= acc[TLAST]:
        acc[LAST], acc[TLAST] = v, ti


@njit(cache=True, nogil=True)
def _acc_update(acc, t, x):
    for i in range(x.shape[0]):
        _acc_add(acc, t[i], x[i])


@njit(cache=True, nogil=True)
def _window_stats(t, x, start, period, n_windows, out):
    """Accumulators of consecutive windows [start + i·period, start + (i+1)·period) into
    ``out[n_windows, ACC_SIZE]``; samples outside every window are ignored."""
    for i in range(n_windows):
        _acc_init(out[i])
    for j in range(x.shape[0]):
        i = int(np.floor((t[j] - start) / period))
        if 0 <= i < n_windows:
            _acc_add(out[i], t[j], x[j])
