"""The daemon's processing stage: between the sensor layer and the outbox.

``Processor.feed(items)`` takes the (topic, reading) pairs of one poll and returns what goes
to the outbox: raw readings as each channel's chain decides, summaries and totals as their
windows close, and the daily completeness report when a day ends. Readings of channels
without a chain pass untouched. Window and completeness state are saved to
``processing.json`` in the state directory every minute and at a stop, and resumed at start.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from ..model import Lane, Quality, Reading
from .chain import ChannelChain
from .completeness import Completeness
from .windows import Clock

log = structlog.get_logger("daq.processing")

Item = tuple[str, Reading]
SAVE_EVERY_S = 60.0


def chain_intervals(cfg: Any) -> dict[str, float]:
    """The sampling interval of each chained channel: its own ``interval`` or that of the
    device it comes from (for a sensor output, the slowest device among its inputs)."""
    dev_interval = {d.name: d.interval for d in cfg.devices}
    out = {}
    for ch, spec in (cfg.processing or {}).get("chains", {}).items():
        if spec.get("interval"):
            out[ch] = float(spec["interval"])
            continue
        if "/" in ch:
            out[ch] = float(dev_interval.get(ch.split("/")[0], 1.0))
            continue
        sensor = cfg.sensors.get(ch.split(".")[0], {})
        ivs = [dev_interval[str(ref).split("/")[0]]
               for ref in (sensor.get("inputs") or {}).values()
               if str(ref).split("/")[0] in dev_interval]
        out[ch] = float(max(ivs)) if ivs else 1.0
    return out


class Processor:
    def __init__(self, processing: dict[str, Any], intervals: dict[str, float],
                 state_path: Path | None = None, now: float | None = None,
                 units: tuple[str, ...] = ()) -> None:
        self.clock = Clock(processing.get("timezone", "UTC"),
                           float(processing.get("day_start", 0.0)))
        self.chains = {ch: ChannelChain(ch, spec, self.clock, intervals[ch])
                       for ch, spec in processing.get("chains", {}).items()}
        self.report_enabled = bool(processing.get("report", True))
        self.completeness = Completeness(self.clock, dict(intervals), units)
        self.topics: dict[str, str] = {}
        self.state_path = state_path
        self._lock = threading.Lock()
        self._queued: list[Item] = []
        self._saved = time.monotonic()
        self.reports = 0
        if state_path is not None and state_path.exists():
            self._restore(state_path, time.time() if now is None else now)

    @classmethod
    def from_config(cls, cfg: Any, state_dir: Path | None = None,
                    now: float | None = None) -> Processor:
        return cls(dict(cfg.processing), chain_intervals(cfg),
                   None if state_dir is None else state_dir / "processing.json", now=now,
                   units=tuple(d.name for b in cfg.buses for d in b.devices))

    # -- the hook -------------------------------------------------------------------------

    def feed(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        with self._lock:
            if self._queued:
                out.extend(self._queued)
                self._queued = []
            for topic, r in items:
                chain = self.chains.get(r.channel)
                if chain is None:
                    out.append((topic, r))
                    continue
                self.topics[r.channel] = topic
                valid = r.value is not None and r.quality in (Quality.GOOD, Quality.SUSPECT)
                for rep in self.completeness.count(r.channel, r.ts.timestamp(), valid):
                    out.append(self._report(rep))
                out.extend(chain.feed(topic, r))
        return out

    def tick(self, units: dict[str, bool | None], now: float | None = None) -> None:
        """From the supervisor every few seconds: unit states, day roll-over, saving."""
        now = time.time() if now is None else now
        with self._lock:
            for rep in self.completeness.tick(now, units):
                self._queued.append(self._report(rep))
        if time.monotonic() - self._saved >= SAVE_EVERY_S:
            self.save()

    def take_queued(self) -> list[Item]:
        with self._lock:
            out, self._queued = self._queued, []
        return out

    def flush(self) -> list[Item]:
        """At a stop: what the despikers hold leaves (unjudged); the state is saved."""
        with self._lock:
            out = self._queued
            self._queued = []
            for ch, chain in self.chains.items():
                out.extend(chain.flush(self.topics.get(ch, "data/unknown")))
        self.save(clean=True)
        return out

    # -- state ----------------------------------------------------------------------------

    def _report(self, rep: dict[str, Any]) -> Item:
        self.reports += 1
        for k in ("start", "end"):
            rep[k] = datetime.fromtimestamp(rep[k], UTC).isoformat().replace("+00:00", "Z")
        r = Reading(device="daq", channel="report/daily", quantity="missing_rate",
                    value=rep["fr"], unit="1",
                    # nothing was expected in the part of the day covered (a start moments
                    # before its end): FR is undefined, never a good value
                    quality=Quality.GOOD if rep["fr"] is not None else Quality.BAD,
                    ts=datetime.now(UTC), lane=Lane.RESULT, extra={"report": rep})
        return ("report/daily", r)

    def save(self, clean: bool = False) -> None:
        """``clean``: written by an orderly stop, so a window that ended while the daemon
        was down was not published yet. A periodic save (clean false) may hold a window
        that closed and was published before a crash: that one is not published again."""
        if self.state_path is None:
            return
        with self._lock:
            doc = {"version": 1, "saved": time.time(), "clean": clean,
                   "windows": {ch: [w.state() for w in c.windows]
                               for ch, c in self.chains.items()},
                   "completeness": self.completeness.state()}
        tmp = self.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as err:
            log.error("processing_state_save_failed", error=str(err))
        self._saved = time.monotonic()

    def _restore(self, path: Path, now: float) -> None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:  # windows restart marked partial: honest
            log.error("processing_state_unreadable", path=str(path), error=str(err))
            return
        try:
            for ch, states in doc.get("windows", {}).items():
                chain = self.chains.get(ch)
                if chain is None:
                    continue
                for w, s in zip(chain.windows, states, strict=False):
                    if (w.period, w.kind) != (s.get("period"), s.get("kind")):
                        continue
                    if not doc.get("clean") and s.get("end", 0) <= now:
                        continue  # may be published already: a second version would lie
                    for r in w.restore(s, now):
                        self._queued.append((f"summary/{r.sensor or r.device}", r))
            for rep in self.completeness.restore(doc.get("completeness") or {}, now):
                self._queued.append(self._report(rep))
        except (KeyError, TypeError, ValueError) as err:
            log.error("processing_state_unreadable", path=str(path), error=repr(err))
        log.info("processing_state_resumed", windows_published=len(self._queued),
                 clean=bool(doc.get("clean")))
        self.save()  # a crash from now on must not resume this state a second time

    def status(self) -> dict[str, Any]:
        with self._lock:
            day = self.completeness.day
            return {
                "chains": {ch: {"interval_s": c.interval, "counters": dict(c.counters),
                                "windows": {w.label: w.view() for w in c.windows}}
                           for ch, c in self.chains.items()},
                "today": None if day is None else
                self.completeness.summary(day, until=time.time()),
                "reports": self.reports,
            }


def warm(processing: dict[str, Any] | None = None, step: Any = None) -> float:
    """Compile (or load from NUMBA_CACHE_DIR) the kernels before the first chained sample
    (the daemon: in the background, daq/processing/loader.py): those the
    configured chains use (each loaded kernel costs memory), or all of them. ``step``:
    called after each kernel group (the loader gives back LLVM's code pages there)."""
    import numpy as np

    from . import filters, windows

    chains = None if processing is None else list((processing.get("chains") or {}).values())
    after = step or (lambda: None)
    t0 = time.perf_counter()
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0])
    t = np.arange(x.shape[0], dtype=np.float64)
    windows.WindowAccumulator().add(t, x)  # the first: Numba compiles its runtime here
    after()
    if chains is None or any(c.get("despike") for c in chains):
        filters.StreamingHampel(1, 3.0).push(x)
        after()
    if chains is None or any(c.get("stuck") for c in chains):
        filters.StreamingStuck(0.0, 2).push(x)
        after()
    if chains is None:
        filters.hampel(x, 1, 3.0)
        filters.rolling_median(x, 3)
        filters.StreamingRollingMedian(3).push(x)
        filters.rolling_mean(x, 3)
        filters.StreamingRollingMean(3).push(x)
        filters.ewma(x, 0.5)
        filters.rate_of_change(t, x)
        windows.windowed_stats(t, x, 0.0, 4.0, 2)
        after()
    return time.perf_counter() - t0
