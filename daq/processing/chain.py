"""One channel's chain: despike → stuck check → clock-aligned summaries and totals → raw
policy. Fed reading by reading (O(window) per sample); emits results for the outbox.

A summary is a :class:`~daq.model.Reading` on the result lane, topic ``summary/{sensor}``,
channel ``{channel}/{label}`` (``L1.level/10min``: its own ``seq``), ``ts`` = window end,
value = mean (summaries) or total (totals), the statistics in ``extra``, and a
``window_key`` (channel, label, window start) that names the window for idempotency.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from datetime import UTC, datetime
from typing import Any

from ..model import Lane, Quality, Reading, format_ts
from .filters import StreamingHampel, StreamingStuck
from .windows import Clock, WindowAccumulator

CLOCK_STEP_S = 60.0  # a sample this far before its window's start is a clock step back


def label(period: float) -> str:
    for unit, s in (("d", 86400), ("h", 3600), ("min", 60)):
        if period >= s and period % s == 0:
            return f"{int(period // s)}{unit}"
    return f"{period:g}s"


def _value(r: Reading) -> float:
    if r.value is None or r.quality not in (Quality.GOOD, Quality.SUSPECT):
        return math.nan
    v = float(r.value)
    return v if math.isfinite(v) else math.nan


class Window:
    """One open window of one statistic (``kind`` summary or total) of one channel."""

    def __init__(self, chain: ChannelChain, period: float, kind: str) -> None:
        self.chain, self.period, self.kind = chain, period, kind
        self.label = label(period) if kind == "summary" else f"total_{label(period)}"
        self.start: float | None = None
        self.end = 0.0
        self.acc = WindowAccumulator()
        self.flags: set[str] = set()
        self.late = self.lapses = self.despiked = self.stuck = 0
        self.template: Reading | None = None

    def _open(self, ts: float, *flags: str) -> None:
        self.start, self.end = self.chain.clock.window(ts, self.period)
        self.acc = WindowAccumulator()
        self.flags = set(flags)
        self.late = self.despiked = self.stuck = 0

    def add(self, r: Reading, ts: float, x: float, despiked: bool, stuck: bool) -> list[Reading]:
        out: list[Reading] = []
        self.template = r
        if self.start is None:
            self._open(ts, "partial_start")
        assert self.start is not None
        if ts < self.start:
            if self.start - ts <= max(self.period, CLOCK_STEP_S):
                self.late += 1  # its window was published already: counted, not merged
                return out
            out.append(self.close("clock_step"))
            self._open(ts, "clock_step")
        elif ts >= self.end:
            out.append(self.close())
            nxt = self.chain.clock.window(ts, self.period)[0]
            self.lapses = max(0, round((nxt - self.end) / self.period))
            self._open(ts)
        self.acc.add(ts, x)
        self.despiked += despiked
        self.stuck += stuck
        return out

    def expected(self) -> int:
        assert self.start is not None
        return max(1, round((self.end - self.start) / self.chain.interval))

    def close(self, *flags: str) -> Reading:
        """The summary of the window as it stands (then the window is spent)."""
        assert self.start is not None and self.template is not None
        st = self.acc.stats(self.expected())
        fl = sorted(self.flags | set(flags))
        if st.count < (st.expected or 0):
            fl.append("incomplete")
        ch = self.chain
        completeness = st.completeness or 0.0
        if self.kind == "total":
            value = st.sum
            quality = Quality.GOOD if value is not None and not (set(fl) - {"resumed"}) \
                else Quality.BAD
        else:
            value = st.mean
            if st.count == 0:
                quality = Quality.MISSING
            elif completeness < ch.min_completeness or {"clock_step", "restart"} & set(fl):
                quality = Quality.SUSPECT
            else:
                quality = Quality.GOOD
        extra = {
            "stat": self.kind, "window": {"start": _iso(self.start), "end": _iso(self.end),
                                          "period_s": self.period},
            "window_key": f"{ch.channel}/{self.label}@{_iso(self.start)}",
            "n_valid": st.count, "n_expected": st.expected,
            "completeness": round(completeness, 6), "n_invalid": st.invalid,
            "n_late": self.late, "n_despiked": self.despiked, "n_stuck": self.stuck,
            "lapses": self.lapses,
            "mean": st.mean, "min": st.min, "min_ts": _iso(st.min_t), "max": st.max,
            "max_ts": _iso(st.max_t), "std_pop": st.std_pop, "std_sample": st.std_sample,
            "first": st.first, "last": st.last, "sum": st.sum, "sum_valid": st.sum_valid,
        }
        t = self.template
        self.lapses = 0
        return Reading(device=t.device, channel=f"{ch.channel}/{self.label}",
                       quantity=t.quantity, value=value, unit=t.unit, quality=quality,
                       ts=datetime.fromtimestamp(self.end, UTC), lane=Lane.RESULT,
                       sensor=t.sensor, calibration=t.calibration, flags=tuple(fl),
                       extra=extra)

    def view(self) -> dict[str, Any]:
        if self.start is None:
            return {"start": None}
        st = self.acc.stats(self.expected())
        return {"start": _iso(self.start), "end": _iso(self.end), "n_valid": st.count,
                "n_expected": st.expected, "completeness": st.completeness,
                "mean": st.mean, "min": st.min, "max": st.max, "sum_valid": st.sum_valid,
                "flags": sorted(self.flags)}

    def state(self) -> dict[str, Any]:
        return {"period": self.period, "kind": self.kind,
                "start": self.start, "end": self.end, "acc": self.acc.state(),
                "flags": sorted(self.flags), "late": self.late, "lapses": self.lapses,
                "despiked": self.despiked, "stuck": self.stuck,
                "template": None if self.template is None else _dump(self.template)}

    def restore(self, s: dict[str, Any], now: float) -> list[Reading]:
        """Resume a window saved at a stop; a window that ended meanwhile is published
        marked ``restart`` (its samples are there, the rest are missing and counted)."""
        if s.get("start") is None or s.get("template") is None:
            return []
        self.start, self.end = float(s["start"]), float(s["end"])
        self.acc = WindowAccumulator(s["acc"])
        self.flags = set(s["flags"])
        self.late, self.lapses = int(s["late"]), int(s["lapses"])
        self.despiked, self.stuck = int(s["despiked"]), int(s["stuck"])
        self.template = _load(s["template"])
        if now >= self.end:
            r = self.close("restart")
            self.start = None
            return [r]
        self.flags.add("resumed")
        return []


class ChannelChain:
    def __init__(self, channel: str, spec: dict[str, Any], clock: Clock,
                 interval: float) -> None:
        self.channel, self.clock, self.interval = channel, clock, float(interval)
        self.min_completeness = float(spec.get("min_completeness", 0.9))
        self.raw_policy = spec.get("raw", "keep")
        self.decimate = int(spec.get("decimate", 10))
        d = spec.get("despike")
        self.hampel = (StreamingHampel((int(d.get("window", 7)) - 1) // 2,
                                       float(d.get("threshold", 3.0)),
                                       float(d.get("min_deviation", 0.0))) if d else None)
        s = spec.get("stuck")
        self.stuck = (StreamingStuck(float(s.get("tolerance", 0.0)), int(s["samples"]))
                      if s else None)
        self.windows = ([Window(self, p, "summary") for p in spec.get("summaries", [])]
                        + [Window(self, p, "total") for p in spec.get("totals", [])])
        self.pending: deque[Reading] = deque()
        self.seen = 0
        self.counters = {"despiked": 0, "stuck": 0, "late": 0, "raw_dropped": 0}

    def feed(self, topic: str, r: Reading) -> list[tuple[str, Reading]]:
        """One reading in; what is decided leaves, each raw reading after the ``k``
        samples the despiker looks ahead."""
        if self.hampel is None:
            return self._decided(topic, r, _value(r), False)
        self.pending.append(r)
        values, flags = self.hampel.push(_value(r))
        out: list[tuple[str, Reading]] = []
        for v, f in zip(values, flags, strict=True):
            out.extend(self._decided(topic, self.pending.popleft(), float(v), bool(f)))
        return out

    def flush(self, topic: str) -> list[tuple[str, Reading]]:
        """At a stop: the readings the despiker still holds leave unjudged."""
        out: list[tuple[str, Reading]] = []
        if self.hampel is not None:
            for v in self.hampel.flush():
                out.extend(self._decided(topic, self.pending.popleft(), float(v), False))
        return out

    def _decided(self, topic: str, r: Reading, x: float, despiked: bool) -> list[
            tuple[str, Reading]]:
        if despiked:
            self.counters["despiked"] += 1
            r = dataclasses.replace(r, value=x, quality=Quality.SUSPECT,
                                    flags=(*r.flags, "despiked"),
                                    raw={**(r.raw or {}), "original": r.value})
        stuck = False
        if self.stuck is not None and not math.isnan(x):
            stuck = bool(self.stuck.push(x)[0])
            if stuck:
                self.counters["stuck"] += 1
                r = dataclasses.replace(r, quality=Quality.SUSPECT, flags=(*r.flags, "stuck"))
                x = math.nan  # a stuck value is not a valid sample of any summary
        out: list[tuple[str, Reading]] = []
        ts = r.ts.timestamp()
        summary_topic = f"summary/{r.sensor or r.device}"
        for w in self.windows:
            before = w.late
            out.extend((summary_topic, s) for s in w.add(r, ts, x, despiked, stuck))
            self.counters["late"] += w.late > before
        self.seen += 1
        keep = (self.raw_policy == "keep" or r.quality != Quality.GOOD
                or (self.raw_policy == "decimate" and (self.seen - 1) % self.decimate == 0))
        if keep:
            out.insert(0, (topic, r))
        else:
            self.counters["raw_dropped"] += 1
        return out


def _iso(t: float | None) -> str | None:
    return None if t is None else format_ts(datetime.fromtimestamp(t, UTC))


def _dump(r: Reading) -> dict[str, Any]:
    return {"device": r.device, "channel": r.channel, "quantity": r.quantity, "unit": r.unit,
            "sensor": r.sensor, "calibration": r.calibration}


def _load(d: dict[str, Any]) -> Reading:
    return Reading(device=d["device"], channel=d["channel"], quantity=d["quantity"],
                   value=None, unit=d["unit"], quality=Quality.MISSING,
                   ts=datetime.now(UTC), sensor=d.get("sensor"),
                   calibration=d.get("calibration"))
