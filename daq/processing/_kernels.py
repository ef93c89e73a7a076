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

BLOCK = 128  # quads of centres per block of :func:`_hampel` (buffers: 2 kB·k + 44 kB)
NETWORK_MAX_K = 16  # wider windows use the sliding sorted window (:func:`_hampel_sorted`)


@njit(cache=True, nogil=True)
def _middle_network(n, w0, w1):
    """Comparators (p, q), p < q, that leave the (w0+1)-th … (w1+1)-th smallest of n values
    on wires w0 … w1: Batcher's odd-even merge sort (wires past n dropped: they would hold
    +inf and never swap), pruned backwards to the comparators those wires depend on. Its
    first n/2 comparators are the layer (0, 1), (2, 3) … (every input matters), which
    :func:`_hampel` applies as it loads a block."""
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
    need[max(w0, 0):min(w1, n - 1) + 1] = True
    keep = np.zeros(c, dtype=np.bool_)
    for i in range(c - 1, -1, -1):
        a, b = full[i, 0], full[i, 1]
        if need[a] or need[b]:
            keep[i] = need[a] = need[b] = True
    return full[:c][keep]


@njit(cache=True, nogil=True)
def _clamp(a, lo, hi):
    """The middle of (lo, a, hi) for lo ≤ hi: inserting ``a`` into a sorted run moves the
    value at a position to at most its neighbour below or above."""
    a = a if a < hi else hi
    return a if a > lo else lo


@njit(cache=True, nogil=True)
def _middle_two(s0, s1, s2, s3, a, b):
    """Positions k-1 and k of a sorted run of 2k-2 values (s0 … s3 at k-3 … k) with ``a``
    and ``b`` inserted: one insertion at a time, each position clamped between its
    neighbours."""
    u0, u1, u2 = _clamp(a, s0, s1), _clamp(a, s1, s2), _clamp(a, s2, s3)
    return _clamp(b, u0, u1), _clamp(b, u1, u2)


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

    - Median, four at a time: the windows of centres i … i+3 share 2k-2 values; a
      comparator network sorts the middle four of them, inserting two values gives the
      middle two (lo, hi) of the 2k values shared by i and i+1 (and by i+2 and i+3), and
      each median is the one value its window adds, clamped to [lo, hi].
    - MAD, never computed: with c = t·1.4826 and d = |x_i − m|, ``d > c·MAD`` holds iff at
      least k+1 of the window's 2k+1 values have c·|x_j − m| < d (the MAD is the (k+1)-th
      smallest deviation and multiplying by c ≥ 0 keeps the order), so a count decides,
      with the flags of the formula, to the last bit.
    - A window holding NaN, and the few centres after the last whole quad, are sorted
      afresh and judged as :func:`_hampel_sorted` would."""
    n = x.shape[0]
    w = 2 * k + 1
    if n < w or k > NETWORK_MAX_K:
        _hampel_sorted(x, k, t, floor, out, flags)
        return
    for i in range(k):  # the edges; every centre is written below
        out[i], flags[i] = x[i], False
        out[n - 1 - i], flags[n - 1 - i] = x[n - 1 - i], False
    c = t * MAD_SCALE
    ns = 2 * k - 2  # values shared by the four windows of a quad
    net = _middle_network(ns, k - 3, k)
    first = ns // 2  # the network's first layer, done on loading
    buf = np.empty((ns + 4, BLOCK))  # row 2 + p: position p; -inf below 0, +inf past ns
    buf[:2] = -np.inf
    buf[ns + 2:] = np.inf
    med = np.empty(4 * BLOCK)
    dev = np.empty(4 * BLOCK)
    cnt = np.empty(4 * BLOCK)
    s = np.empty(w)
    scratch = np.empty(w)
    span = (2 * k + 3) // 4  # a quad reads xs[:, q … q + span]: up to x[base + 4q + 2k + 2]
    quads = max((n - 2 * k - 3) // 4, 0)
    xs = np.empty((4, BLOCK + span))
    for b0 in range(0, quads, BLOCK):
        nq = min(BLOCK, quads - b0)
        lo = k + 4 * b0  # first centre of the block
        m4 = 4 * nq
        base = lo - k  # offset o of quad q is x[base + 4q + o] = xs[o % 4, q + o // 4]:
        nans = 0  # in the block's windows (and up to 3 values past them)
        for j in range(nq + span):  # every read below is at unit stride
            for r in range(4):
                v = x[base + 4 * j + r]
                xs[r, j] = v
                nans += v != v
        for r in range(first):  # shared values: offsets 3 … 2k
            o1, o2 = 3 + 2 * r, 4 + 2 * r
            sa, sb = xs[o1 % 4, o1 // 4:o1 // 4 + nq], xs[o2 % 4, o2 // 4:o2 // 4 + nq]
            bp, bq = buf[2 + 2 * r], buf[3 + 2 * r]
            for j in range(nq):
                a, z = sa[j], sb[j]
                bp[j] = a if a < z else z
                bq[j] = z if a < z else a
        for e in range(first, net.shape[0]):
            bp, bq = buf[2 + net[e, 0]], buf[2 + net[e, 1]]  # rows: the loop vectorises
            for j in range(nq):
                a, z = bp[j], bq[j]
                bp[j] = a if a < z else z
                bq[j] = z if a < z else a
        s0, s1, s2, s3 = buf[k - 1], buf[k], buf[k + 1], buf[k + 2]  # positions k-3 … k
        # centres i, i+1 share offsets 1 … 2k, centres i+2, i+3 offsets 3 … 2k+2; each
        # window adds offset 0, 2k+1, 2 and 2k+3; the centres are at k … k+3
        o = 2 * k + 1
        a1, a2, b1 = xs[1, :nq], xs[2, :nq], xs[o % 4, o // 4:o // 4 + nq]
        o = 2 * k + 2
        b2 = xs[o % 4, o // 4:o // 4 + nq]
        o = 2 * k + 3
        e3 = xs[o % 4, o // 4:o // 4 + nq]
        e0 = xs[0, :nq]
        c0 = xs[k % 4, k // 4:k // 4 + nq]
        c1 = xs[(k + 1) % 4, (k + 1) // 4:(k + 1) // 4 + nq]
        c2 = xs[(k + 2) % 4, (k + 2) // 4:(k + 2) // 4 + nq]
        c3 = xs[(k + 3) % 4, (k + 3) // 4:(k + 3) // 4 + nq]
        for j in range(nq):
            lo_a, hi_a = _middle_two(s0[j], s1[j], s2[j], s3[j], a1[j], a2[j])
            lo_b, hi_b = _middle_two(s0[j], s1[j], s2[j], s3[j], b1[j], b2[j])
            m = _clamp(e0[j], lo_a, hi_a)
            med[4 * j], dev[4 * j], cnt[4 * j] = m, abs(c0[j] - m), 0.0
            m = _clamp(b1[j], lo_a, hi_a)
            med[4 * j + 1], dev[4 * j + 1], cnt[4 * j + 1] = m, abs(c1[j] - m), 0.0
            m = _clamp(a2[j], lo_b, hi_b)
            med[4 * j + 2], dev[4 * j + 2], cnt[4 * j + 2] = m, abs(c2[j] - m), 0.0
            m = _clamp(e3[j], lo_b, hi_b)
            med[4 * j + 3], dev[4 * j + 3], cnt[4 * j + 3] = m, abs(c3[j] - m), 0.0
        _count_below(x, base, w, m4, c, med, dev, cnt)
        xc = x[lo:lo + m4]
        oc = out[lo:lo + m4]
        fc = flags[lo:lo + m4]
        for j in range(m4):
            f = (cnt[j] > k) & (dev[j] > floor)
            oc[j] = med[j] if f else xc[j]
            fc[j] = f
        if nans:
            last = -w  # the latest NaN at or before the window's right end
            for j in range(lo - k, lo + k):
                if x[j] != x[j]:
                    last = j
            for i in range(lo, lo + m4):
                if x[i + k] != x[i + k]:
                    last = i + k
                if last >= i - k:
                    out[i], flags[i] = _hampel_window(x, i, k, t, floor, s, scratch)
    for i in range(k + 4 * quads, n - k):  # the centres after the last quad
        out[i], flags[i] = _hampel_window(x, i, k, t, floor, s, scratch)


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
