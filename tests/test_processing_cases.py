"""DOMAIN.md D14–D16 through the public API (``daq.processing``), and the windows'
wall-clock alignment (10-min windows on :00, :10 …; 08:00–08:00 hydrological days)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from daq.processing import Clock, hampel, missing_rate, mtbf_hours, window_stats


def test_d14_ten_minute_summary_of_1hz_level():
    i = np.arange(600)
    t, x = 1.7e9 + i, 81.950 + 0.0001 * i
    s = window_stats(t, x, expected=600)
    assert s.mean == pytest.approx(81.97995, abs=1e-9)
    assert s.min == pytest.approx(81.9500) and s.min_t == t[0]
    assert s.max == pytest.approx(82.0099) and s.max_t == t[-1]
    assert s.std_pop == pytest.approx(0.017320, abs=5e-7)
    keep = (i < 100) | (i > 111)
    s = window_stats(t[keep], x[keep], expected=600)
    assert s.count == 588 and s.completeness == pytest.approx(0.98)
    assert s.mean == pytest.approx(81.980346, abs=5e-7)


def test_d15_hampel_flags_and_replaces_the_spike():
    out, flags = hampel([10.00, 10.01, 10.02, 10.50, 10.03, 10.04, 10.05], k=3, t=3)
    assert list(np.flatnonzero(flags)) == [3]
    assert out[3] == pytest.approx(10.03)


def test_d16_missing_rate():
    expected = 120 * 144 * 30
    assert missing_rate(2592, expected) == pytest.approx(0.0050)
    assert mtbf_hours(8760.0, 2) == 4380.0 and mtbf_hours(10.0, 0) is None
    with pytest.raises(ValueError):
        missing_rate(5, 0)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_windows_align_to_the_local_clock_and_the_hydrological_day():
    c = Clock("Asia/Shanghai", day_start=8)
    # 2026-11-23 07:59 local is 23:59 UTC the day before: still the 22nd's hydrological day
    d0, d1 = c.day(_ts("2026-11-22T23:59:00"))
    assert (d0, d1) == (_ts("2026-11-22T00:00:00"), _ts("2026-11-23T00:00:00"))
    assert c.date(_ts("2026-11-22T23:59:00")) == "2026-11-22"
    assert c.date(_ts("2026-11-23T00:00:00")) == "2026-11-23"
    assert c.window(_ts("2026-11-23T02:17:31"), 600) == (_ts("2026-11-23T02:10:00"),
                                                          _ts("2026-11-23T02:20:00"))
    assert c.window(_ts("2026-11-23T02:17:31"), 3600)[0] == _ts("2026-11-23T02:00:00")
    india = Clock("Asia/Kolkata")  # +05:30: an hour window starts on the local hour
    assert india.window(_ts("2026-11-23T02:17:31"), 3600)[0] == _ts("2026-11-23T01:30:00")
