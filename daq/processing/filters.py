"""Public filters: validating wrappers around the kernels, batch and streaming forms.

Every function takes float sequences where NaN marks an invalid sample, and returns new
arrays (inputs are never modified). Each streaming class gives, chunk by chunk, exactly what
the batch function gives on the whole series (``tests/test_processing_kernels.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _kernels as K
from .errors import ProcessingError

Array = np.ndarray[Any, np.dtype[np.float64]]


def _series(x: Any, name: str = "x") -> Array:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ProcessingError(f"{name} must be one-dimensional, got shape {a.shape}")
    if np.isinf(a).any():
        raise ProcessingError(f"{name} holds an infinity: mark invalid samples with NaN")
    return a


def _times(t: Any, n: int) -> Array:
    a = _series(t, "t")
    if a.shape[0] != n:
        raise ProcessingError(f"t has {a.shape[0]} times for {n} values")
    if np.isnan(a).any():
        raise ProcessingError("t holds NaN: every sample needs its time")
    return a


def _int(v: Any, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ProcessingError(f"{name} must be an integer ≥ {lo}, got {v!r}")
    return int(v)


def _pos(v: Any, name: str, *, zero_ok: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ProcessingError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f < 0 or (f == 0 and not zero_ok):
        raise ProcessingError(f"{name} must be a {'non-negative' if zero_ok else 'positive'}"
                              f" finite number, got {v!r}")
    return f


# -- Hampel -----------------------------------------------------------------------------------

def hampel(x: Any, k: int = 3, t: float = 3.0,
           min_deviation: float = 0.0) -> tuple[Array, np.ndarray[Any, Any]]:
    """Hampel identifier over the centred window 2k+1: a sample is flagged when
    |x − median| > t·1.4826·MAD (and > ``min_deviation``) and replaced by the median
    (DOMAIN.md D15).

    NaN samples are left out of every window and never flagged; windows with fewer than 3
    valid samples judge nothing; the first and last ``k`` samples pass unjudged.
    Returns (cleaned values, flags)."""
    a = _series(x)
    k = _int(k, "k", 1)
    t = _pos(t, "t", zero_ok=True)
    floor = _pos(min_deviation, "min_deviation", zero_ok=True)
    out = np.empty_like(a)
    flags = np.empty(a.shape[0], dtype=np.bool_)
    K._hampel(a, k, t, floor, out, flags)
    return out, flags


class StreamingHampel:
    """Hampel one chunk (or sample) at a time: O(k) per sample, each decision ``k``
    samples behind the newest. :meth:`push` returns the decided (values, flags);
    :meth:`flush` the last ``k``, unjudged as in :func:`hampel`."""

    def __init__(self, k: int = 3, t: float = 3.0, min_deviation: float = 0.0) -> None:
        self.k = _int(k, "k", 1)
        self.t = _pos(t, "t", zero_ok=True)
        self.floor = _pos(min_deviation, "min_deviation", zero_ok=True)
        w = 2 * self.k + 1
        self._ring = np.full(w, np.nan)
        self._sorted = np.empty(w)
        self._scratch = np.empty(w)
        self._state = np.zeros(3, dtype=np.int64)

    @property
    def pending(self) -> int:
        """Samples pushed and not decided yet."""
        return int(min(self._state[2], self.k))

    def push(self, x: Any) -> tuple[Array, np.ndarray[Any, Any]]:
        a = _series(np.atleast_1d(x))
        out = np.empty_like(a)
        flags = np.empty(a.shape[0], dtype=np.bool_)
        m = K._hampel_stream(a, self.k, self.t, self.floor, self._ring, self._sorted, self._scratch,
                             self._state, out, flags)
        return out[:m], flags[:m]

    def flush(self) -> Array:
        """The pending samples, oldest first (no full window: unjudged); state is reset."""
        n, w = self.pending, 2 * self.k + 1
        pos = int(self._state[0])
        rest = np.array([self._ring[(pos - n + i) % w] for i in range(n)])
        self.__init__(self.k, self.t, self.floor)  # type: ignore[misc]
        return rest


# -- rolling filters --------------------------------------------------------------------------

def rolling_median(x: Any, w: int) -> Array:
    """Median of the valid samples among the last ``w`` (NaN when there is none)."""
    a = _series(x)
    out = np.empty_like(a)
    K._rolling_median(a, _int(w, "w", 1), out)
    return out


def rolling_mean(x: Any, w: int) -> Array:
    """Mean of the valid samples among the last ``w`` (NaN when there is none)."""
    a = _series(x)
    out = np.empty_like(a)
    K._rolling_mean(a, _int(w, "w", 1), out)
    return out


def ewma(x: Any, alpha: float) -> Array:
    """Exponentially weighted mean; an invalid sample holds the previous value."""
    return StreamingEwma(alpha).push(x)


def rate_of_change(t: Any, x: Any) -> Array:
    """Units per second against the previous valid sample (NaN for the first)."""
    return StreamingRate().push(t, x)


def stuck(x: Any, tol: float, n: int) -> np.ndarray[Any, Any]:
    """True where the current run of valid samples has stayed within ``tol`` for at least
    ``n`` samples: a frozen transducer or a logger repeating its last value."""
    return StreamingStuck(tol, n).push(x)


class StreamingRollingMedian:
    def __init__(self, w: int) -> None:
        self.w = _int(w, "w", 1)
        self._ring = np.full(self.w, np.nan)
        self._sorted = np.empty(self.w)
        self._state = np.zeros(3, dtype=np.int64)

    def push(self, x: Any) -> Array:
        a = _series(np.atleast_1d(x))
        out = np.empty_like(a)
        K._rolling_median_stream(a, self.w, self._ring, self._sorted, self._state, out)
        return out


class StreamingRollingMean:
    def __init__(self, w: int) -> None:
        self.w = _int(w, "w", 1)
        self._ring = np.full(self.w, np.nan)
        self._state = np.zeros(2, dtype=np.int64)

    def push(self, x: Any) -> Array:
        a = _series(np.atleast_1d(x))
        out = np.empty_like(a)
        K._rolling_mean_stream(a, self.w, self._ring, self._state, out)
        return out


class StreamingEwma:
    def __init__(self, alpha: float) -> None:
        self.alpha = _pos(alpha, "alpha")
        if self.alpha > 1:
            raise ProcessingError(f"alpha must be in (0, 1], got {alpha!r}")
        self._state = np.full(1, np.nan)

    def push(self, x: Any) -> Array:
        a = _series(np.atleast_1d(x))
        out = np.empty_like(a)
        K._ewma(a, self.alpha, self._state, out)
        return out


class StreamingRate:
    def __init__(self) -> None:
        self._state = np.full(2, np.nan)

    def push(self, t: Any, x: Any) -> Array:
        a = _series(np.atleast_1d(x))
        tt = _times(np.atleast_1d(t), a.shape[0])
        out = np.empty_like(a)
        K._rate(tt, a, self._state, out)
        return out


class StreamingStuck:
    def __init__(self, tol: float, n: int) -> None:
        self.tol = _pos(tol, "tol", zero_ok=True)
        self.n = _int(n, "n", 2)
        self._state = np.zeros(3)

    def push(self, x: Any) -> np.ndarray[Any, Any]:
        a = _series(np.atleast_1d(x))
        out = np.empty(a.shape[0], dtype=np.bool_)
        K._stuck(a, self.tol, float(self.n), self._state, out)
        return out
