"""Window statistics and wall-clock-aligned windows.

A window is [start, end) in local time: sub-day windows are aligned to the start of the
local (hydrological) day, which begins at ``day_start`` o'clock (08:00 in Chinese practice),
so a 10-min window runs :00–:10, a 1-h window starts on the hour and a 1-day window runs
08:00–08:00. ``expected`` is the window's length over the channel's sampling interval.

NaN/bad-sample policy (per statistic), documented in the README:
- count is the valid samples; ``completeness`` = count ÷ expected.
- mean, min, max (with their times), σ, first, last are over the valid samples: a correct
  statistic of what arrived; the summary's quality says whether enough arrived.
- ``sum`` (a total) is only a value when every expected sample arrived valid; otherwise
  it is null and ``sum_valid`` keeps the partial total, so a total is never silently low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from . import _kernels as K
from .errors import ProcessingError
from .filters import _series, _times

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What one window's samples give; times are epoch seconds (UTC)."""

    count: int
    expected: int | None
    invalid: int
    mean: float | None
    min: float | None
    min_t: float | None
    max: float | None
    max_t: float | None
    std_pop: float | None
    std_sample: float | None
    first: float | None
    first_t: float | None
    last: float | None
    last_t: float | None
    sum_valid: float

    @property
    def completeness(self) -> float | None:
        if not self.expected:
            return None
        return min(self.count / self.expected, 1.0)

    @property
    def sum(self) -> float | None:
        """The total, only when nothing expected is missing (see the module's policy)."""
        if self.expected is None or self.count < self.expected:
            return None
        return self.sum_valid

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "expected": self.expected,
                "completeness": self.completeness, "invalid": self.invalid,
                "mean": self.mean, "min": self.min, "min_t": self.min_t, "max": self.max,
                "max_t": self.max_t, "std_pop": self.std_pop, "std_sample": self.std_sample,
                "first": self.first, "first_t": self.first_t, "last": self.last,
                "last_t": self.last_t, "sum": self.sum, "sum_valid": self.sum_valid}


def _from_acc(acc: np.ndarray[Any, Any], expected: int | None) -> WindowStats:
    n = int(acc[K.N])

    def opt(i: int) -> float | None:
        return float(acc[i]) if n else None

    return WindowStats(
        count=n, expected=expected, invalid=int(acc[K.NBAD]), mean=opt(K.MEAN),
        min=opt(K.MIN), min_t=opt(K.TMIN), max=opt(K.MAX), max_t=opt(K.TMAX),
        std_pop=math.sqrt(acc[K.M2] / n) if n else None,
        std_sample=math.sqrt(acc[K.M2] / (n - 1)) if n > 1 else None,
        first=opt(K.FIRST), first_t=opt(K.TFIRST), last=opt(K.LAST), last_t=opt(K.TLAST),
        sum_valid=float(acc[K.SUM]))


def window_stats(t: Any, x: Any, expected: int | None = None) -> WindowStats:
    """Statistics of one window's samples (NaN = invalid); D14 in DOMAIN.md."""
    a = _series(x)
    acc = WindowAccumulator()
    acc.add(_times(t, a.shape[0]), a)
    return acc.stats(expected)


def windowed_stats(t: Any, x: Any, start: float, period: float,
                   n_windows: int) -> list[WindowStats]:
    """Batch form: consecutive windows of ``period`` s from ``start`` (epoch s)."""
    a = _series(x)
    tt = _times(t, a.shape[0])
    if not (period > 0 and n_windows >= 0):
        raise ProcessingError("period must be > 0 and n_windows ≥ 0")
    out = np.empty((int(n_windows), K.ACC_SIZE))
    K._window_stats(tt, a, float(start), float(period), int(n_windows), out)
    return [_from_acc(row, None) for row in out]


class WindowAccumulator:
    """Streaming form: O(1) per sample, state of 13 floats (persistable as a list)."""

    def __init__(self, state: list[float] | None = None) -> None:
        self.acc = np.empty(K.ACC_SIZE)
        if state is None:
            K._acc_init(self.acc)
        else:
            if len(state) != K.ACC_SIZE:
                raise ProcessingError(f"accumulator state has {len(state)} values, "
                                      f"not {K.ACC_SIZE}")
            self.acc[:] = state

    def add(self, t: Any, x: Any) -> None:
        a = _series(np.atleast_1d(x))
        K._acc_update(self.acc, _times(np.atleast_1d(t), a.shape[0]), a)

    @property
    def count(self) -> int:
        return int(self.acc[K.N])

    def stats(self, expected: int | None = None) -> WindowStats:
        return _from_acc(self.acc, expected)

    def state(self) -> list[float]:
        return [float(v) for v in self.acc]


# -- wall-clock alignment ---------------------------------------------------------------------

def check_period(period: float) -> float:
    if not (period > 0 and (DAY % period == 0 or period == DAY)):
        raise ProcessingError(f"a window of {period} s does not divide a day: use e.g. "
                              "10s, 1min, 10min, 1h, 1d")
    return float(period)


class Clock:
    """Where windows begin: local time zone ``tz`` and the hour the day starts at."""

    def __init__(self, tz: str = "UTC", day_start: float = 0.0) -> None:
        if not 0 <= day_start < 24:
            raise ProcessingError(f"day_start must be an hour in [0, 24), got {day_start!r}")
        try:
            self.zone = ZoneInfo(tz)
        except (KeyError, ValueError) as err:
            raise ProcessingError(f"unknown time zone {tz!r}") from err
        self.tz, self.day_start = tz, float(day_start)

    def day(self, ts: float) -> tuple[float, float]:
        """[start, end) of the local day holding epoch second ``ts``."""
        local = datetime.fromtimestamp(ts, UTC).astimezone(self.zone)
        begin = datetime(local.year, local.month, local.day, tzinfo=self.zone) \
            + timedelta(hours=self.day_start)
        if begin.timestamp() > ts:
            begin = datetime(*(begin - timedelta(days=1)).timetuple()[:3],
                             tzinfo=self.zone) + timedelta(hours=self.day_start)
        nxt = datetime(*(begin + timedelta(days=1)).timetuple()[:3],
                       tzinfo=self.zone) + timedelta(hours=self.day_start)
        return begin.timestamp(), nxt.timestamp()

    def window(self, ts: float, period: float) -> tuple[float, float]:
        """[start, end) of the ``period`` window holding ``ts`` (the day's last one is cut
        at the next day's start, which matters only across a DST change)."""
        d0, d1 = self.day(ts)
        if period >= DAY:
            return d0, d1
        start = d0 + math.floor((ts - d0) / period) * period
        return start, min(start + period, d1)

    def date(self, ts: float) -> str:
        """The (hydrological) day's date: the local date on which it starts."""
        return datetime.fromtimestamp(self.day(ts)[0], self.zone).date().isoformat()
