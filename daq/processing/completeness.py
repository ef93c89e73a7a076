"""Completeness accounting (DOMAIN.md D16): per channel and per (hydrological) day,
FR = missing ÷ expected, and the online rate and MTBF of each acquisition unit.

``expected`` is the day's length (from commissioning, if that fell inside the day) over the
channel's interval; ``valid`` counts the samples that arrived valid. So every way a value
can go missing counts: a gap record (no answer), a bad value, a slot the scheduler skipped
and the time the daemon was not running. Counts are persisted (every minute and at a stop):
a crash can lose at most a minute of counts, which can only make FR look worse, never better.
"""

from __future__ import annotations

from typing import Any

from .windows import Clock

MAX_TICK_S = 30.0  # a longer pause between observations is time not running
MAX_MISSED_DAYS = 31  # whole days missed are reported one by one up to this many, then
#                     # the older ones in one range record


def missing_rate(missing: float, expected: float) -> float:
    """FR = missing ÷ expected (D16: 2592 of 120 channels × 144 scans × 30 days = 0.50 %)."""
    if expected <= 0:
        raise ValueError(f"expected must be > 0, got {expected!r}")
    if not 0 <= missing <= expected:
        raise ValueError(f"missing {missing!r} must be in [0, expected]")
    return missing / expected


def mtbf_hours(up_hours: float, failures: int) -> float | None:
    """Σ operating hours ÷ Σ failures (None while nothing has failed)."""
    return up_hours / failures if failures else None


class Day:
    def __init__(self, start: float, end: float, since: float) -> None:
        self.start, self.end, self.since = start, end, max(start, since)
        self.channels: dict[str, dict[str, int]] = {}
        self.units: dict[str, dict[str, float]] = {}
        self.running_s = 0.0

    def state(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def load(cls, s: dict[str, Any]) -> Day:
        d = cls(s["start"], s["end"], s["since"])
        d.channels, d.units, d.running_s = s["channels"], s["units"], s["running_s"]
        return d


class Completeness:
    def __init__(self, clock: Clock, intervals: dict[str, float],
                 units: tuple[str, ...] = ()) -> None:
        """``units``: the configured acquisition units, each in every report of a day
        nothing ran, even one the daemon never saw up or down before it stopped."""
        self.clock, self.intervals, self.units = clock, intervals, units
        self.commissioned: float | None = None
        self.day: Day | None = None
        self.last_tick: float | None = None
        self.unit_up: dict[str, bool] = {}

    def _day_for(self, ts: float) -> tuple[Day, list[dict[str, Any]]]:
        reports: list[dict[str, Any]] = []
        if self.day is not None and ts >= self.day.end:
            reports.append(self.report(self.day))
            reports.extend(self._missed(self.day, self.clock.day(ts)[0]))
            self.day = None
        if self.day is None:
            start, end = self.clock.day(ts)
            if self.commissioned is None:
                self.commissioned = ts
            self.day = Day(start, end, self.commissioned)
        return self.day, reports

    def count(self, channel: str, ts: float, valid: bool) -> list[dict[str, Any]]:
        """One sample of a chained channel; returns the reports of days that ended."""
        day, reports = self._day_for(ts)
        if ts < day.start:  # from a day already reported (late or a clock step): dropped
            return reports
        c = day.channels.setdefault(channel, {"valid": 0, "gaps": 0})
        c["valid" if valid else "gaps"] += 1
        return reports

    def tick(self, now: float, units: dict[str, bool | None]) -> list[dict[str, Any]]:
        """Called every few seconds with each unit's state (None: not polled yet)."""
        day, reports = self._day_for(now)
        dt = 0.0 if self.last_tick is None else now - self.last_tick
        self.last_tick = now
        if not 0 < dt <= MAX_TICK_S:
            dt = 0.0
        day.running_s += dt
        for name, up in units.items():
            u = day.units.setdefault(name, {"up_s": 0.0, "down_s": 0.0, "failures": 0})
            if up is None:
                continue
            u["up_s" if up else "down_s"] += dt
            if self.unit_up.get(name) and not up:
                u["failures"] += 1
            self.unit_up[name] = up
        return reports

    def summary(self, day: Day, until: float | None = None) -> dict[str, Any]:
        end = day.end if until is None else min(until, day.end)
        covered = max(end - day.since, 0.0)
        channels: dict[str, dict[str, Any]] = {}
        for ch, interval in sorted(self.intervals.items()):
            c = day.channels.get(ch, {"valid": 0, "gaps": 0})
            expected = int(covered // interval)
            missing = max(expected - c["valid"], 0)
            channels[ch] = {"expected": expected, "valid": c["valid"], "gaps": c["gaps"],
                            "missing": missing,
                            "fr": missing / expected if expected else None}
        units: dict[str, dict[str, Any]] = {}
        for name, u in sorted(day.units.items()):
            units[name] = {"up_s": round(u["up_s"], 1), "down_s": round(u["down_s"], 1),
                           "failures": int(u["failures"]),
                           "online_rate": round(u["up_s"] / covered, 6) if covered else None,
                           "mtbf_h": mtbf_hours(u["up_s"] / 3600.0, int(u["failures"]))}
        exp = sum(int(c["expected"]) for c in channels.values())
        miss = sum(int(c["missing"]) for c in channels.values())
        return {"date": self.clock.date(day.start), "timezone": self.clock.tz,
                "day_start_hour": self.clock.day_start, "start": day.start, "end": day.end,
                "covered_s": round(covered, 1), "running_s": round(day.running_s, 1),
                "not_running_s": round(max(covered - day.running_s, 0.0), 1),
                "expected": exp, "missing": miss,
                "fr": miss / exp if exp else None,
                "channels": channels, "units": units}

    def report(self, day: Day) -> dict[str, Any]:
        return self.summary(day)

    def _missed(self, last: Day, until: float) -> list[dict[str, Any]]:
        """The reports of the whole days between ``last`` and the day starting at
        ``until``, when nothing ran (the daemon was down, or the clock stepped forward):
        FR 100 %, online rate 0, never a silent hole. The :data:`MAX_MISSED_DAYS` most
        recent ones each get their own report; any older ones share one range record
        (``days``, ``last_date``)."""
        starts: list[float] = []
        begin = until
        while begin > last.end and len(starts) < MAX_MISSED_DAYS:
            begin = self.clock.day(begin - 1.0)[0]
            starts.append(begin)
        out = []
        if begin > last.end:  # more days than reported one by one: the oldest in a range
            out.append(self._empty(last, last.end, begin, range_=True))
        ends = [until, *starts][:len(starts)]
        for start, end in reversed(list(zip(starts, ends, strict=True))):
            out.append(self._empty(last, start, end))
        return out

    def _empty(self, last: Day, start: float, end: float,
               range_: bool = False) -> dict[str, Any]:
        day = Day(start, end, start)
        day.units = {name: {"up_s": 0.0, "down_s": 0.0, "failures": 0}
                     for name in sorted({*last.units, *self.units})}
        rep = self.summary(day)
        if range_:
            rep["days"] = max(1, round((end - start) / 86400.0))
            rep["last_date"] = self.clock.date(end - 1.0)
        return rep

    def state(self) -> dict[str, Any]:
        return {"commissioned": self.commissioned, "last_tick": self.last_tick,
                "day": None if self.day is None else self.day.state()}

    def restore(self, s: dict[str, Any], now: float) -> list[dict[str, Any]]:
        self.commissioned = s.get("commissioned")
        if s.get("day"):
            self.day = Day.load(s["day"])
        return self._day_for(now)[1]
