"""Processing kernels against baselines measured in the same run (ratios, not pass/fail).

- Hampel, window 11 (k = 5), 10⁶ samples with spikes: ours (Numba, blocks of centres:
  four medians at a time from one comparator network and clamps, a count in place of the
  MAD) against the best exact NumPy formulation (sliding_window_view + median + MAD; flags
  checked identical), our own sliding sorted window (the form for k > 16; flags checked
  identical), one ``scipy.ndimage.median_filter`` pass and one pandas rolling median pass
  (each only *part* of a Hampel: lower bounds for a Hampel built on them), and an exact
  pandas Hampel (rolling median + rolling ``apply`` for the MAD) timed on 10⁵ samples and
  scaled.
- Streaming Hampel: samples/s pushed in chunks of 1000 and one sample at a time.
- Window statistics (10-min windows of 1 Hz samples): ours against a pure-Python loop.

A baseline whose package is missing is skipped with a line saying so (scipy and pandas are
bench-only: ``pip install -e '.[bench]'``).
Run: ``python bench/bench_processing.py [N]`` (N samples, default 10⁶). Best of 3 runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from daq.processing import StreamingHampel, hampel, warm, windowed_stats
from daq.processing import _kernels as K


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_hampel(x: np.ndarray, k: int, t: float) -> np.ndarray:
    win = np.lib.stride_tricks.sliding_window_view(x, 2 * k + 1)
    med = np.median(win, axis=1)
    mad = np.median(np.abs(win - med[:, None]), axis=1)
    flags = np.zeros(x.shape[0], dtype=bool)
    flags[k:-k] = np.abs(x[k:-k] - med) > t * 1.4826 * mad
    return flags


def python_stats(ts: list[float], xs: list[float], start: float, period: float) -> list[Any]:
    out: dict[int, list[float]] = {}
    for t, x in zip(ts, xs, strict=True):
        i = int((t - start) // period)
        a = out.setdefault(i, [0, 0.0, 0.0, 0.0, float("inf"), 0.0, float("-inf"), 0.0])
        if x != x:
            continue
        a[0] += 1
        a[1] += x
        d = x - a[2]
        a[2] += d / a[0]
        a[3] += d * (x - a[2])
        if x < a[4]:
            a[4], a[5] = x, t
        if x > a[6]:
            a[6], a[7] = x, t
    return list(out.values())


def main(n: int) -> None:
    print(f"kernels warmed (cache: NUMBA_CACHE_DIR or __pycache__) in {warm():.3f} s")
    rng = np.random.default_rng(0)
    x = 81.99 + 0.001 * rng.standard_normal(n)
    x[rng.integers(0, n, n // 1000)] += 0.5
    k, thr = 5, 3.0
    rows: list[tuple[str, float, str]] = []

    ours = best(lambda: hampel(x, k, thr))
    rows.append(("Hampel w=11, ours (Numba, exact)", ours, "1.0"))
    flags = hampel(x, k, thr)[1]
    nump = best(lambda: numpy_hampel(x, k, thr), 1)
    same = np.array_equal(numpy_hampel(x, k, thr), flags)
    rows.append((f"NumPy sliding windows (exact, flags identical: {same})", nump,
                 f"{nump / ours:.1f}"))
    out, sf = np.empty_like(x), np.empty(n, dtype=bool)
    srt = best(lambda: K._hampel_sorted(x, k, thr, 0.0, out, sf))
    rows.append((f"ours, sliding sorted window (flags identical: "
                 f"{np.array_equal(sf, flags)})", srt, f"{srt / ours:.1f}"))
    try:
        from scipy.ndimage import median_filter
        sp = best(lambda: median_filter(x, size=2 * k + 1, mode="nearest"))
        rows.append(("scipy.ndimage.median_filter, one median pass only", sp,
                     f"{sp / ours:.1f}"))
    except ImportError:
        print("scipy not installed: scipy.ndimage.median_filter baseline skipped "
              "(pip install -e '.[bench]')")
    try:
        import pandas as pd
        s = pd.Series(x)
        pdm = best(lambda: s.rolling(2 * k + 1, center=True).median())
        rows.append(("pandas rolling median, one pass only", pdm, f"{pdm / ours:.1f}"))
        m = min(n, 100_000)
        sub = pd.Series(x[:m])

        def pandas_hampel() -> Any:
            med = sub.rolling(2 * k + 1, center=True).median()
            mad = sub.rolling(2 * k + 1, center=True).apply(
                lambda w: np.median(np.abs(w - np.median(w))), raw=True)
            return (sub - med).abs() > thr * 1.4826 * mad

        pdh = best(pandas_hampel, 1) * n / m
        rows.append((f"pandas rolling Hampel, exact ({m} samples, scaled)", pdh,
                     f"{pdh / ours:.1f}"))
    except ImportError:
        print("pandas not installed: pandas baselines skipped (pip install -e '.[bench]')")

    print(f"\n{n} samples; time is the best of 3; ratio = baseline time / ours")
    for name, sec, ratio in rows:
        print(f"  {name:<58} {1000 * sec:9.1f} ms  {ratio:>6}×")

    h = StreamingHampel(k, thr)
    chunks = np.array_split(x, max(n // 1000, 1))
    t0 = time.perf_counter()
    for c in chunks:
        h.push(c)
    chunked = n / (time.perf_counter() - t0)
    h = StreamingHampel(k, thr)
    m = min(n, 200_000)
    xs = x[:m].tolist()
    t0 = time.perf_counter()
    for v in xs:
        h.push(v)
    single = m / (time.perf_counter() - t0)
    print(f"\nstreaming Hampel w=11: {chunked / 1e6:.2f} M samples/s in chunks of 1000, "
          f"{single / 1e3:.0f} k samples/s one sample per call (the daemon's 1 Hz channel "
          f"needs 1/s)")

    t = 1.7e9 + np.arange(n, dtype=float)
    start, period = 1.7e9, 600.0
    nw = int(np.ceil(n / period))
    ws = best(lambda: windowed_stats(t, x, start, period, nw))
    m = min(n, 200_000)
    tl, xl = t[:m].tolist(), x[:m].tolist()
    py = best(lambda: python_stats(tl, xl, start, period), 1) * n / m
    print(f"window statistics (10-min windows of 1 Hz): ours {1000 * ws:.1f} ms, "
          f"pure-Python loop {1000 * py:.1f} ms ({m} samples, scaled): {py / ws:.1f}×")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000)
