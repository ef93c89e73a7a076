"""Every kernel equals its pure-Python self (``.py_func``) on random and edge inputs, and
every streaming form equals the batch form on the same data, however it is chunked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.processing import (
    ProcessingError,
    StreamingEwma,
    StreamingHampel,
    StreamingRate,
    StreamingRollingMean,
    StreamingRollingMedian,
    StreamingStuck,
    WindowAccumulator,
    ewma,
    hampel,
    rate_of_change,
    rolling_mean,
    rolling_median,
    stuck,
    window_stats,
    windowed_stats,
)
from daq.processing import _kernels as K

# values with NaN (invalid samples), repeats (ties) and plateaus: the edge cases
values = st.lists(st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(np.nan),
                            st.sampled_from([0.0, 1.0, 1.0, 5.0])), min_size=0, max_size=80)
cuts = st.lists(st.integers(0, 80), max_size=6)
SETTINGS = settings(max_examples=150, deadline=None)


def chunks(x: np.ndarray, at: list[int]) -> list[np.ndarray]:
    return np.split(x, sorted({min(c, len(x)) for c in at}))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@SETTINGS
@given(values, st.integers(1, 6), st.floats(0, 5), st.sampled_from([0.0, 0.5, 50.0]))
def test_hampel_kernel_equals_py_func_and_streaming_equals_batch(xs, k, t, floor):
    x = np.array(xs, dtype=float)
    out, flags = hampel(x, k, t, floor)
    o2, f2 = np.empty_like(x), np.empty(len(x), dtype=bool)
    K._hampel.py_func(x, k, t, floor, o2, f2)
    assert same(out, o2) and np.array_equal(flags, f2)
    h = StreamingHampel(k, t, floor)
    parts = [h.push(c) for c in chunks(x, [3, 17, 40])]
    so = np.concatenate([p[0] for p in parts] + [h.flush()])
    sf = np.concatenate([p[1] for p in parts] + [np.zeros(len(x) - sum(len(p[1])
                                                                         for p in parts),
                                                          dtype=bool)])
    assert same(so, out) and np.array_equal(sf, flags)


@SETTINGS
@given(values, st.integers(1, 6), st.floats(0, 5))
def test_streaming_hampel_kernel_equals_py_func(xs, k, t):
    x = np.array(xs, dtype=float)
    w = 2 * k + 1
    res = []
    for fn in (K._hampel_stream, K._hampel_stream.py_func):
        ring, s, sc, state = np.full(w, np.nan), np.empty(w), np.empty(w), np.zeros(3, np.int64)
        o, f = np.empty_like(x), np.empty(len(x), dtype=bool)
        m = fn(x, k, t, 0.0, ring, s, sc, state, o, f)
        res.append((o[:m], f[:m], state.copy()))
    assert same(res[0][0], res[1][0]) and np.array_equal(res[0][1], res[1][1])
    assert np.array_equal(res[0][2], res[1][2])


def test_hampel_matches_a_naive_numpy_formulation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    x[rng.integers(0, 2000, 40)] += rng.choice([-8.0, 8.0], 40)
    k, t = 5, 3.0
    _, flags = hampel(x, k, t)
    win = np.lib.stride_tricks.sliding_window_view(x, 2 * k + 1)
    med = np.median(win, axis=1)
    mad = np.median(np.abs(win - med[:, None]), axis=1)
    ref = np.zeros_like(flags)
    ref[k:-k] = np.abs(x[k:-k] - med) > t * 1.4826 * mad
    assert np.array_equal(flags, ref) and flags.sum() >= 30


def run_hampel(fn, x, k, t, floor):  # type: ignore[no-untyped-def]
    out, flags = np.empty_like(x), np.empty(len(x), dtype=bool)
    fn(x, k, t, floor, out, flags)
    return out, flags


@SETTINGS
@given(values, st.integers(1, 18), st.floats(0, 5), st.sampled_from([0.0, 0.5, 50.0]))
def test_hampel_network_form_equals_the_sorted_window_form(xs, k, t, floor):
    """The block form (comparator network + counting) decides as the sliding sorted window
    does, and both equal their pure-Python selves; k 17, 18 take the sorted form."""
    x = np.array(xs, dtype=float)
    out, flags = run_hampel(K._hampel, x, k, t, floor)
    for fn in (K._hampel_sorted, K._hampel_sorted.py_func):
        o, f = run_hampel(fn, x, k, t, floor)
        assert same(o, out) and np.array_equal(f, flags)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 16])
def test_hampel_network_form_over_many_blocks_with_gaps(k):
    """Several blocks of centres, NaN alone, in runs and on block edges, odd and even
    lengths, ties: every decision equals the sorted window's."""
    rng = np.random.default_rng(k)
    for n in [4 * K.BLOCK * 2 + 2 * k + 3 + e for e in range(4)] + [1500]:
        x = np.round(rng.normal(size=n) * 4) / 4  # many ties
        x[rng.integers(0, n, n // 50)] += rng.choice([-9.0, 9.0], n // 50)
        x[rng.integers(0, n, 6)] = np.nan
        x[4 * K.BLOCK + k - 2:4 * K.BLOCK + k + 3] = np.nan  # a run across a block edge
        x[-1] = np.nan
        for t in (0.0, 3.0):
            a = run_hampel(K._hampel, x, k, t, 0.0)
            b = run_hampel(K._hampel_sorted, x, k, t, 0.0)
            assert same(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[1].sum() > 0
            if k in (1, 5) and n != 1500:  # the pure-Python self reads the same bounds
                p = run_hampel(K._hampel.py_func, x, k, t, 0.0)
                assert same(a[0], p[0]) and np.array_equal(a[1], p[1])


@pytest.mark.parametrize("k", range(1, K.NETWORK_MAX_K + 1))
def test_middle_network_selects_the_middle_four(k):
    """0-1 principle: a comparator network selects order statistics of every input iff it
    does so for every 0/1 input; exhaustive up to 16 wires, random above. The kernel's
    network: positions k-3 … k of the 2k-2 values a quad of windows shares (those that
    exist: none for k = 1)."""
    n = 2 * k - 2
    net = K._middle_network(n, k - 3, k)
    assert np.array_equal(net, K._middle_network.py_func(n, k - 3, k))
    assert (net[:, 0] < net[:, 1]).all() and net.max(initial=0) < max(n, 1)
    # _hampel applies the first layer as it loads a block
    layer = np.array([(2 * r, 2 * r + 1) for r in range(n // 2)]).reshape(-1, 2)
    assert np.array_equal(net[:n // 2], layer)
    if n <= 16:
        v = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)
    else:
        v = np.random.default_rng(k).integers(0, 3, (20000, n)).astype(float)
    ref = np.sort(v, axis=1)
    for p, q in net:
        lo, hi = np.minimum(v[:, p], v[:, q]), np.maximum(v[:, p], v[:, q])
        v[:, p], v[:, q] = lo, hi
    assert np.array_equal(v[:, max(k - 3, 0):k + 1], ref[:, max(k - 3, 0):k + 1])


def test_middle_two_is_the_merge_of_a_sorted_run_and_two_values():
    rng = np.random.default_rng(7)
    for k in (1, 2, 3, 4, 6):  # the kernel's padding: -inf before the run, +inf after
        for _ in range(300):
            run = np.sort(rng.integers(0, 6, 2 * k - 2).astype(float))
            a, b = rng.integers(0, 6, 2).astype(float)
            ref = np.sort(np.concatenate([run, [a, b]]))
            padded = np.concatenate([[-np.inf] * 2, run, [np.inf] * 2])
            for fn in (K._middle_two, K._middle_two.py_func):
                assert fn(*padded[k - 1:k + 3], a, b) == (ref[k - 1], ref[k])


@SETTINGS
@given(values, st.integers(1, 6), st.floats(0, 5))
def test_hampel_block_helpers_equal_their_py_func(xs, k, t):
    x = np.array(xs + [0.5] * (2 * k + 1), dtype=float)
    for a, lo, hi in ((x[0], -1.0, 1.0), (x[-1], 0.0, 0.0), (-np.inf, 2.0, 3.0)):
        assert K._clamp(a, lo, hi) == K._clamp.py_func(a, lo, hi)  # NaN gives hi: unused
        if a == a:
            assert K._clamp(a, lo, hi) == min(max(a, lo), hi)
    w, m2 = 2 * k + 1, len(x) - 2 * k
    med, dev = x[k:k + m2] * 0.5, np.abs(x[k:k + m2])
    counts = []
    for fn in (K._count_below, K._count_below.py_func):
        cnt = np.zeros(m2)
        fn(x, 0, w, m2, t * K.MAD_SCALE, med, dev, cnt)
        counts.append(cnt)
    assert same(counts[0], counts[1])
    decided = [fn(x, k, k, t, 0.0, np.empty(w), np.empty(w))
               for fn in (K._hampel_window, K._hampel_window.py_func)]
    assert same(np.array([decided[0][0]]), np.array([decided[1][0]]))
    assert decided[0][1] == decided[1][1]


@SETTINGS
@given(values, st.integers(1, 9), cuts)
def test_rolling_median_and_mean(xs, w, at):
    x = np.array(xs, dtype=float)
    for batch, kernel, stream in ((rolling_median, K._rolling_median, StreamingRollingMedian),
                                  (rolling_mean, K._rolling_mean, StreamingRollingMean)):
        out = batch(x, w)
        ref = np.empty_like(x)
        kernel.py_func(x, w, ref)
        assert same(out, ref)
        s = stream(w)
        got = np.concatenate([s.push(c) for c in chunks(x, at)] or [np.empty(0)])
        assert same(got, out)
    # and against NumPy itself
    for i in range(len(x)):
        seg = x[max(0, i - w + 1):i + 1]
        seg = seg[~np.isnan(seg)]
        if len(seg):
            assert rolling_median(x, w)[i] == np.median(seg)
            assert rolling_mean(x, w)[i] == pytest.approx(seg.mean(), rel=1e-12, abs=1e-9)


@SETTINGS
@given(values, st.floats(0.01, 1.0), cuts)
def test_ewma_rate_stuck(xs, alpha, at):
    x = np.array(xs, dtype=float)
    t = np.cumsum(np.ones(len(x)) * 0.5)
    e = ewma(x, alpha)
    ref, state = np.empty_like(x), np.full(1, np.nan)
    K._ewma.py_func(x, alpha, state, ref)
    assert same(e, ref)
    s = StreamingEwma(alpha)
    assert same(np.concatenate([s.push(c) for c in chunks(x, at)] or [np.empty(0)]), e)

    r = rate_of_change(t, x)
    ref, state = np.empty_like(x), np.full(2, np.nan)
    K._rate.py_func(t, x, state, ref)
    assert same(r, ref)
    sr = StreamingRate()
    got = [sr.push(tc, xc) for tc, xc in zip(chunks(t, at), chunks(x, at), strict=True)]
    assert same(np.concatenate(got or [np.empty(0)]), r)

    f = stuck(x, 0.0, 3)
    ref_f, state = np.empty(len(x), dtype=bool), np.zeros(3)
    K._stuck.py_func(x, 0.0, 3.0, state, ref_f)
    assert np.array_equal(f, ref_f)
    ss = StreamingStuck(0.0, 3)
    got_f = [ss.push(c) for c in chunks(x, at)]
    assert np.array_equal(np.concatenate(got_f or [np.empty(0, bool)]), f)


@SETTINGS
@given(values, cuts)
def test_window_stats_streaming_batch_py_func_and_numpy(xs, at):
    x = np.array(xs, dtype=float)
    t = np.arange(len(x), dtype=float)
    whole = window_stats(t, x, max(len(x), 1))
    acc = WindowAccumulator()
    for tc, xc in zip(chunks(t, at), chunks(x, at), strict=True):
        acc.add(tc, xc)
    assert acc.stats(max(len(x), 1)) == whole
    a1, a2 = np.empty(K.ACC_SIZE), np.empty(K.ACC_SIZE)
    K._acc_init(a1)
    K._acc_init.py_func(a2)
    K._acc_update(a1, t, x)
    K._acc_update.py_func(a2, t, x)
    assert same(a1, a2)
    out1, out2 = np.empty((3, K.ACC_SIZE)), np.empty((3, K.ACC_SIZE))
    K._window_stats(t, x, 0.0, 30.0, 3, out1)
    K._window_stats.py_func(t, x, 0.0, 30.0, 3, out2)
    assert same(out1, out2)
    assert windowed_stats(t, x, 0.0, 1e9, 1)[0].mean == whole.mean
    v = x[~np.isnan(x)]
    assert whole.count == len(v) and whole.invalid == len(x) - len(v)
    if len(v):
        assert whole.mean == pytest.approx(v.mean(), rel=1e-9, abs=1e-9)
        assert whole.min == v.min() and whole.max == v.max()
        assert whole.min_t == t[~np.isnan(x)][np.argmin(v)]
        assert whole.std_pop == pytest.approx(v.std(), rel=1e-6, abs=1e-6)
        assert whole.first == v[0] and whole.last == v[-1]


def test_out_of_order_samples_give_the_same_window():
    rng = np.random.default_rng(5)
    t = np.arange(100, dtype=float)
    x = rng.normal(size=100)
    order = rng.permutation(100)
    a, b = window_stats(t, x), window_stats(t[order], x[order])
    assert (a.first, a.last, a.min_t, a.max_t, a.count) == (b.first, b.last, b.min_t,
                                                            b.max_t, b.count)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)


def test_a_total_with_missing_samples_is_void_not_low():
    t = np.arange(10, dtype=float)
    x = np.ones(10)
    assert window_stats(t, x, 10).sum == 10.0
    x[4] = np.nan
    s = window_stats(t, x, 10)
    assert s.sum is None and s.sum_valid == 9.0
    assert window_stats(t[:8], x[:8] * 0 + 1, 10).sum is None  # 2 samples never arrived


@pytest.mark.parametrize("call", [
    lambda: hampel([1.0, 2.0], k=0), lambda: hampel([[1.0]]), lambda: hampel([np.inf]),
    lambda: hampel([1.0], t=-1), lambda: rolling_mean([1.0], 0), lambda: ewma([1.0], 2.0),
    lambda: rate_of_change([0.0], [1.0, 2.0]), lambda: stuck([1.0], 0.0, 1),
    lambda: window_stats([0.0, np.nan], [1.0, 2.0]), lambda: WindowAccumulator([1.0]),
])
def test_bad_arguments_are_clear_errors(call):
    with pytest.raises(ProcessingError):
        call()
