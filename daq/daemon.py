"""The daemon: bus workers → pipeline (sensors, outbox) → publisher, under one supervisor.

The main thread supervises: it writes the status file that ``daq status`` reads, feeds the
systemd watchdog only while every worker is alive, and stops everything on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import signal
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from . import __version__
from .bus import BusWorker, PollResult
from .config import Config, instantiate
from .model import ChannelValue, Lane, Quality, Reading, format_ts, utcnow
from .outbox import Outbox
from .publisher import Publisher
from .sdnotify import Notifier

log = structlog.get_logger("daq.daemon")

_LANES = {"raw": Lane.RAW, "result": Lane.RESULT, "alarm": Lane.ALARM}
ROW_BYTES = 250  # on-disk size of an outbox row with its index (FIELD-NOTES.md: ~228 B)


def readings_per_second(cfg: Config) -> float:
    """Expected readings/s at the configured intervals, for sizing the outbox in days."""
    total = 0.0
    for dev in cfg.devices:
        drv = instantiate(dev, cfg.drivers)
        total += max(len(drv.channels), 1) / dev.interval
    return total


def outbox_cap(cfg: Config) -> int:
    cap = int(cfg.outbox.max_days * 86400 * max(readings_per_second(cfg), 0.01))
    if cfg.outbox.max_mb is not None:
        cap = min(cap, int(cfg.outbox.max_mb * 2**20 / ROW_BYTES))
    return max(cap, 1000)


class Pipeline(threading.Thread):
    """Turns poll results into readings and commits them to the outbox in batches."""

    def __init__(self, cfg: Config, outbox: Outbox, on_commit: Any = None) -> None:
        super().__init__(name="pipeline", daemon=True)
        self.cfg = cfg
        self.outbox = outbox
        self.queue: queue.Queue[PollResult | None] = queue.Queue()
        self.on_commit = on_commit
        self.heartbeat = time.monotonic()
        self.accepted = 0
        self.commits = 0
        self.dropped_uncommitted = 0
        self.sensors: Any = None
        self.processor: Any = None  # daq.processing.Processor when chains are configured
        self.last: dict[str, dict[str, Any]] = {}
        if cfg.sensors:
            from .sensors import SensorSet

            channels = {f"{d.name}/{c.name}" for d in cfg.devices
                        for c in instantiate(d, cfg.drivers).channels}
            self.sensors = SensorSet.build(dict(cfg.sensors), channels)
        self._done = threading.Event()

    def submit(self, result: PollResult) -> None:
        self.queue.put(result)

    def readings(self, res: PollResult) -> list[tuple[str, Reading]]:
        dev = res.device
        topic = f"data/{dev.name}"
        lane = _LANES[dev.lane]
        out = [(v.topic or topic, _reading(dev.name, v, res, v.lane or lane))
               for v in res.values]
        if self.sensors is not None:
            try:
                derived = [sanitize(r) for r in
                           self.sensors.process(dev.name, res.values, res.ts)]
            except Exception as err:  # a sensor-layer bug costs the derived values only
                log.error("sensor_layer_error", device=dev.name,
                          error=f"{type(err).__name__}: {err}")
                self.outbox.bump("sensor_layer_errors")
                derived = []
            for r in derived:  # what `daq status --sensor P07` shows
                self.last[r.channel] = {"value": r.value, "unit": r.unit,
                                        "quality": r.quality.value, "ts": format_ts(r.ts)}
            out.extend((topic, r) for r in derived)
        out = [(t, r if r.sensor is not None else sanitize(r)) for t, r in out]
        if self.processor is None:
            return out
        try:
            return list(self.processor.feed(out))
        except Exception as err:  # a processing bug costs summaries, never the raw readings
            log.error("processing_error", device=dev.name,
                      error=f"{type(err).__name__}: {err}")
            self.outbox.bump("processing_errors")
            return out

    def run(self) -> None:
        interval, batch = self.cfg.outbox.commit_interval, self.cfg.outbox.commit_batch
        stopping = False
        pending: list[tuple[str, Reading]] = []
        tries_at_stop = 3  # commits tried once stopping before what is held is given up
        failing: str | None = None
        while not stopping or pending:
            self.heartbeat = time.monotonic()
            items: list[tuple[str, Reading]] = []
            deadline = time.monotonic() + interval
            while len(items) < batch and not stopping:
                try:
                    res = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if res is None:
                    stopping = True
                    break
                try:
                    items.extend(self.readings(res))
                except Exception as err:  # a sensor bug must not stop acquisition
                    log.error("pipeline_error", device=res.device.name,
                              error=f"{type(err).__name__}: {err}")
                    self.outbox.bump("pipeline_errors")
            pending.extend(items)
            if pending:
                try:
                    self.outbox.add(pending)
                except (sqlite3.Error, OSError) as err:  # disk full, I/O error: keep, retry
                    if str(err) != failing:  # once per distinct failure, not every second
                        log.error("outbox_commit_failed", error=str(err), held=len(pending))
                        failing = str(err)
                    pending = self._bounded(pending)
                    if stopping:
                        tries_at_stop -= 1
                        if tries_at_stop <= 0:
                            log.error("readings_not_committed", count=len(pending))
                            break
                    time.sleep(1.0)
                    continue
                if failing is not None:
                    log.info("outbox_commit_recovered", committed=len(pending))
                    failing = None
                self.accepted += len(pending)
                self.commits += 1
                pending = []
                if self.on_commit is not None:
                    self.on_commit()
        self._done.set()

    MAX_HELD = 200_000  # readings held in memory while the outbox cannot commit

    def _bounded(self, pending: list[tuple[str, Reading]]) -> list[tuple[str, Reading]]:
        """While commits fail (disk full for hours), memory must not grow without bound:
        beyond MAX_HELD the oldest raw samples go first, counted; alarms and results stay.
        None of these were accepted yet (accepted means committed)."""
        excess = len(pending) - self.MAX_HELD
        if excess <= 0:
            return pending
        kept, dropped = [], 0
        for item in pending:
            if dropped < excess and item[1].lane == Lane.RAW:
                dropped += 1
                continue
            kept.append(item)
        self.dropped_uncommitted += dropped
        log.error("readings_dropped_uncommitted", count=dropped,
                  total=self.dropped_uncommitted)
        return kept

    def stop(self, timeout: float = 10.0) -> None:
        self.queue.put(None)
        self._done.wait(timeout)


def _reading(device: str, v: ChannelValue, res: PollResult, lane: Lane) -> Reading:
    return Reading(device=device, channel=f"{device}/{v.channel}", quantity=v.quantity,
                   value=v.value, unit=v.unit, quality=v.quality, ts=res.ts, lane=lane,
                   flags=v.flags, raw=v.raw)


def sanitize(r: Reading) -> Reading:
    """JSON has no NaN or infinity: such a value is kept as null, flagged ``bad``."""
    value, quality, flags = r.value, r.quality, r.flags
    if value is not None and not math.isfinite(value):
        value, quality, flags = None, Quality.BAD, (*flags, "not_finite")
    elif value is None and quality in (Quality.GOOD, Quality.SUSPECT):
        quality = Quality.MISSING
    raw = r.raw and {k: _finite_or_none(x) for k, x in r.raw.items()}
    if (value, quality, flags, raw) == (r.value, r.quality, r.flags, r.raw):
        return r
    return dataclasses.replace(r, value=value, quality=quality, flags=flags, raw=raw)


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, list | tuple):
        return [_finite_or_none(i) for i in x]
    return x


class Daemon:
    def __init__(self, cfg: Config, *, state_dir: str | None = None) -> None:
        self.cfg = cfg
        self.state_dir = Path(state_dir or cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # the status file is rewritten every 2 s: under systemd it goes to the runtime
        # directory (tmpfs), not to the RTU's flash (`daq status` looks there first)
        self.status_dir = Path(os.environ.get("RUNTIME_DIRECTORY") or self.state_dir)
        self.status_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3", max_rows=outbox_cap(cfg))
        self.publisher: Publisher | None = None
        self.pipeline = Pipeline(cfg, self.outbox, on_commit=self._wake_publisher)
        self.processor: Any = None
        if cfg.processing:  # only then are NumPy and Numba imported
            from .processing.processor import Processor, warm

            log.info("processing_kernels_ready",  # before any poll
                     seconds=round(warm(dict(cfg.processing)), 3))
            self.processor = self.pipeline.processor = Processor.from_config(
                cfg, self.state_dir)
        self.workers = [BusWorker(bus, {d.name: instantiate(d, cfg.drivers)
                                        for d in bus.devices}, self.pipeline.submit)
                        for bus in cfg.buses]
        if cfg.mqtt is not None:
            self.publisher = Publisher(cfg.mqtt, self.outbox, site=cfg.site, rtu=cfg.rtu,
                                       health=self.health,
                                       ack_interval=cfg.outbox.commit_interval)
        self.gnss: Any = None
        if cfg.gnss is not None:  # GNSS recording and session solving (daq/gnss/sessions/)
            from .gnss.sessions.recorder import GnssService

            self.gnss = GnssService(cfg.gnss, self.state_dir, self.outbox,
                                    on_commit=self._wake_publisher)
        self.notifier = Notifier()
        self.started = utcnow()
        self._stop = threading.Event()
        self._status_error: str | None = None
        from .control_daemon import DaemonControl  # the control socket (daq read, tail)

        self.control = DaemonControl(self)
        self.alarms: Any = None  # alarms, manual readings, field calibration (issue 11)
        self.manual: Any = None
        self.fieldcal: Any = None
        from .alarms.wiring import attach

        attach(self)  # THE hook: each wraps outbox.add, seeing every accepted reading

    def _wake_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.wakeup.set()

    # -- state ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        devices = [s for w in self.workers for s in w.states.values()]
        return {
            "uptime_s": round((utcnow() - self.started).total_seconds()),
            "outbox": self.outbox.depth(),
            "counters": self.outbox.counters(),
            "devices_up": sum(1 for s in devices if s.up),
            "devices_down": sum(1 for s in devices if s.up is False),
            "clock_synchronised": clock_synchronised(),
            **({"alarms": self.alarms.health()} if self.alarms is not None else {}),
        }

    def status(self) -> dict[str, Any]:
        link: dict[str, Any] = ({"configured": False} if self.publisher is None
                                else {"configured": True, **asdict(self.publisher.state)})
        return {
            "version": __version__, "pid": os.getpid(), "site": self.cfg.site,
            "rtu": self.cfg.rtu, "started": format_ts(self.started),
            "updated": format_ts(utcnow()), "config": self.cfg.source,
            "buses": [{"name": w.bus.name, "url": w.bus.url, "protocol": w.bus.protocol,
                       "open": w.link is not None, "error": w.link_error,
                       "devices": [asdict(s) for s in w.states.values()]}
                      for w in self.workers],
            "outbox": {"depth": self.outbox.depth(), "cap_rows": self.outbox.max_rows,
                       "counters": self.outbox.counters(),
                       "accepted": self.pipeline.accepted,
                       "dropped_uncommitted": self.pipeline.dropped_uncommitted},
            "broker": link,
            "sensors": dict(getattr(self.pipeline.sensors, "counters", {}) or {}),
            "sensor_values": dict(self.pipeline.last),
            "driver_counters": {n: c for w in self.workers for n, d in w.drivers.items()
                                if (c := d.counters())},
            "clock_synchronised": clock_synchronised(),
            "gnss": None if self.gnss is None else self.gnss.status(),
            "alarms": None if self.alarms is None else self.alarms.health(),
            **self.control.status(),
            "processing": None if self.processor is None else self.processor.status(),
        }

    def write_status(self) -> None:
        """Rewrite the status file; a failure (full or broken directory) is logged once
        per distinct error and never stops the supervisor or its orderly shutdown."""
        path = self.status_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.status(), indent=1, default=str), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as err:
            text = f"{type(err).__name__}: {err}"
            if text != self._status_error:
                log.error("status_write_failed", path=str(path), error=text)
            self._status_error = text
            return
        self._status_error = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.control.start()
        if self.alarms is not None:
            self.alarms.start()
        self.pipeline.start()
        for w in self.workers:
            w.start()
        if self.gnss is not None:
            self.gnss.start()
        if self.publisher is not None:
            self.publisher.start()
        else:
            log.warning("no_broker_configured",
                        hint="readings are buffered in the outbox until mqtt is configured")
        log.info("daemon_started", site=self.cfg.site, rtu=self.cfg.rtu,
                 buses=len(self.workers), devices=len(self.cfg.devices),
                 state_dir=str(self.state_dir), outbox_cap_rows=self.outbox.max_rows)

    def alive(self) -> bool:
        now = time.monotonic()
        threads_ok = all(w.is_alive() for w in self.workers) and self.pipeline.is_alive()
        beats_ok = now - self.pipeline.heartbeat < 30 and all(
            now - w.heartbeat < 60 + max((d.timeout or w.bus.timeout) for d in w.bus.devices)
            for w in self.workers if w.bus.devices)
        publisher_ok = self.publisher is None or self.publisher.is_alive()
        return (threads_ok and beats_ok and publisher_ok
                and (self.gnss is None or self.gnss.alive()))

    def run_forever(self) -> None:
        self.start()
        streams = len(self.cfg.gnss.streams) if self.cfg.gnss is not None else 0
        self.notifier.ready(f"acquiring from {len(self.cfg.devices)} devices and "
                            f"{streams} GNSS streams")
        wd = self.notifier.watchdog_interval
        next_status = 0.0
        next_maintenance = time.monotonic() + 60.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_status:
                if self.processor is not None:
                    self.processor.tick({s.name: s.up for w in self.workers
                                         for s in w.states.values()})
                self.write_status()
                next_status = now + 2.0
            if now >= next_maintenance:
                next_maintenance = now + 300.0
                try:
                    self.outbox.maintain()
                except sqlite3.Error as err:  # freeing pages is optional; stopping is not
                    log.error("outbox_maintenance_failed", error=str(err))
            if wd is not None and self.alive():
                self.notifier.watchdog()
            self._stop.wait(min(wd or 1.0, 1.0))
        self.shutdown()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.control.stop()
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.join(5.0)
        if self.gnss is not None:
            self.gnss.stop()  # commits a solve in progress before the outbox closes
        self.pipeline.stop()  # commits what was polled: accepted before we go
        if self.processor is not None:  # what the despikers hold; window state saved
            try:
                self.outbox.add(self.processor.flush())
            except (sqlite3.Error, OSError) as err:
                log.error("processing_flush_failed", error=str(err))
        if self.publisher is not None:
            deadline = time.monotonic() + 3.0  # a short grace to send what is buffered
            while (self.publisher.state.connected and time.monotonic() < deadline
                   and any(self.outbox.depth().values())):
                time.sleep(0.05)
            self.publisher.stop()
            self.publisher.join(5.0)
        self.write_status()
        if self.alarms is not None:
            self.alarms.stop()
        if self.manual is not None:
            self.manual.close()
        self.fieldcal.close()
        self.outbox.close()
        log.info("daemon_stopped")


def clock_synchronised() -> bool | None:
    """True/False when the kernel says (adjtimex via timedatectl's flag file); None unknown."""
    if os.path.exists("/run/systemd/timesync/synchronized"):
        return True
    try:
        import ctypes

        class Timex(ctypes.Structure):
            _fields_ = [("modes", ctypes.c_uint), ("pad", ctypes.c_byte * 204)]

        libc = ctypes.CDLL(None, use_errno=True)
        state = libc.adjtimex(ctypes.byref(Timex()))
    except (OSError, AttributeError):
        return None
    return bool(state != 5)  # TIME_ERROR (5): the clock is not synchronised

