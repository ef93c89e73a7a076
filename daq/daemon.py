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
from .downtime import downtime_gaps
from .model import ChannelValue, Lane, Quality, Reading, format_ts, utcnow
from .outbox import Outbox
from .publisher import Publisher
from .sdnotify import Notifier
from .statelock import lock_state_dir

log = structlog.get_logger("daq.daemon")

_LANES = {"raw": Lane.RAW, "result": Lane.RESULT, "alarm": Lane.ALARM}
ROW_BYTES = 60  # on-disk bytes per reading: one compressed row per poll (bench_outbox.py)
STATUS_ON_FLASH_S = 60.0
# acknowledged rows are deleted in one range per lane this often (or per 2000 readings):
# each delete is a commit written to flash; a kill before it costs only re-sent copies
ACK_INTERVAL_S = 10.0


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


_TICK = "tick"  # a bus finished the polls due in its tick: commit what is gathered
_READY = "processing_ready"  # the processor is loaded: pass it what was held for it
COALESCE_S = 0.005  # results of other buses arriving this soon after go into one commit


class Pipeline(threading.Thread):
    """Turns poll results into readings and commits them to the outbox.

    A commit follows each bus tick (plus ``COALESCE_S`` for other buses), bounded by
    ``commit_interval`` and ``commit_batch``: a kill loses at most the polls in flight,
    and a restart reports those and the downtime as gap records (daq/downtime.py).
    """

    def __init__(self, cfg: Config, outbox: Outbox, on_commit: Any = None) -> None:
        super().__init__(name="pipeline", daemon=True)
        self.cfg = cfg
        self.outbox = outbox
        self.queue: queue.Queue[PollResult | str | None] = queue.Queue()
        self.on_commit = on_commit
        self.heartbeat = time.monotonic()
        self.accepted = 0
        self.commits = 0
        self.dropped_uncommitted = 0
        self.downtime_gaps = 0
        self.commit_error: str | None = None  # while commits fail: why, since when, held
        self.failing_since: str | None = None
        self.held = 0
        self.sensors: Any = None
        self.processor: Any = None  # daq.processing.Processor when chains are configured
        # readings of chained channels wait here (in order, bounded) while the processor
        # loads in the background (Daemon._load_processing); the others go on at once
        self.chained: frozenset[str] = frozenset()
        self.processing_failed = False  # it did not load: chained readings pass untouched
        self._held: list[tuple[str, Reading]] = []
        self.held_for_chains = 0  # most readings held at once (status)
        self.last: dict[str, dict[str, Any]] = {}
        self._last_slot = dict(outbox.slots)  # each device's last committed poll instant
        self._slots: dict[str, float] = {}
        self._slot_updates: dict[str, float] = {}
        self._skip: dict[str, int] = {}
        if cfg.sensors:
            from .sensors import SensorSet

            channels = {f"{d.name}/{c.name}" for d in cfg.devices
                        for c in instantiate(d, cfg.drivers).channels}
            self.sensors = SensorSet.build(dict(cfg.sensors), channels)
        self._done = threading.Event()

    def submit(self, result: PollResult) -> None:
        self.queue.put(result)

    def tick_end(self) -> None:
        self.queue.put(_TICK)

    def readings(self, res: PollResult) -> list[tuple[str, Reading]]:
        """A poll's readings and the sensor values derived from them, before any
        processing chain (``daq read`` shows these too: daq/readout.py)."""
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
        return [(t, r if r.sensor is not None else sanitize(r)) for t, r in out]

    def _chains(self, out: list[tuple[str, Reading]], device: str
                ) -> list[tuple[str, Reading]]:
        """Through the processing chains; held while they load (see ``_hold``)."""
        processor = self.processor
        if processor is None:
            if not self.chained or self.processing_failed:
                return out
            return self._hold(out)
        if self._held:
            out = self._held + out
            self._held = []
        return self._process(processor, out, device)

    MAX_HELD_FOR_CHAINS = 100_000  # beyond, chained readings pass unprocessed (counted)

    def _hold(self, items: list[tuple[str, Reading]]) -> list[tuple[str, Reading]]:
        """While the processor loads: readings of chained channels are held, in order;
        the rest go to the outbox at once."""
        now = [it for it in items if it[1].channel not in self.chained]
        later = [it for it in items if it[1].channel in self.chained]
        if len(self._held) + len(later) > self.MAX_HELD_FOR_CHAINS:
            self.outbox.bump("processing_not_ready_passed", len(later))
            return items
        self._held.extend(later)
        self.held_for_chains = max(self.held_for_chains, len(self._held))
        return now

    def _release(self) -> list[tuple[str, Reading]]:
        """What was held: through the processor once it is there, or as it is (it failed
        to load, or the daemon stops before it did)."""
        held, self._held = self._held, []
        if not held or self.processor is None:
            return held
        return self._process(self.processor, held, "held")

    def _process(self, processor: Any, items: list[tuple[str, Reading]],
                 device: str) -> list[tuple[str, Reading]]:
        try:
            return list(processor.feed(items))
        except Exception as err:  # a processing bug costs summaries, never the raw readings
            log.error("processing_error", device=device,
                      error=f"{type(err).__name__}: {err}")
            self.outbox.bump("processing_errors")
            return items

    def _accept(self, res: PollResult) -> list[tuple[str, Reading]]:
        """A poll's readings, preceded after a start by the device's downtime gaps."""
        name = res.device.name
        converted = self.readings(res)
        items = self._chains(converted, name)
        if name not in self._slots:  # the first poll of this device since the start
            # every channel of the poll gets its range gap, a chained one too (its reading
            # may be held or delayed by the chain)
            gaps, skip = downtime_gaps(self._last_slot.get(name), res.ts,
                                       res.device.interval, converted)
            if name in self._last_slot:  # the slots' skip is exact for these channels
                self._skip.update({r.channel: 0 for _, r in converted})  # (none: restart_skip)
            if gaps:
                log.warning("downtime_gap", device=name, **gaps[0][1].extra["gap"])
                self.downtime_gaps += 1
                self._skip.update(skip)
                items = gaps + items
        self._slots[name] = self._slot_updates[name] = res.ts.timestamp()
        return items

    def _gather(self, stopping: bool) -> tuple[list[tuple[str, Reading]], bool]:
        """Readings until a bus tick ends (and ``COALESCE_S`` more), ``commit_batch``
        readings or ``commit_interval`` seconds, whichever comes first."""
        interval, batch = self.cfg.outbox.commit_interval, self.cfg.outbox.commit_batch
        items: list[tuple[str, Reading]] = []
        deadline = time.monotonic() + interval
        while len(items) < batch and not stopping:
            try:
                res = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if res is None:
                stopping = True
                items.extend(self._release())
            elif res is _READY:
                items.extend(self._release())
            elif res is _TICK:
                deadline = min(deadline, time.monotonic() + COALESCE_S)
            elif isinstance(res, PollResult):
                try:
                    items.extend(self._accept(res))
                except Exception as err:  # a sensor bug must not stop acquisition
                    log.error("pipeline_error", device=res.device.name,
                              error=f"{type(err).__name__}: {err}")
                    self.outbox.bump("pipeline_errors")
            self.queue.task_done()  # queue.join(): every poll so far went through the chains
        return items, stopping

    def run(self) -> None:
        stopping = False
        pending: list[tuple[str, Reading]] = []
        tries_at_stop = 3  # commits tried once stopping before what is held is given up
        while not stopping or pending:
            self.heartbeat = time.monotonic()
            items, stopping = self._gather(stopping)
            pending.extend(items)
            if self.processor is not None:  # reports due with no chained poll to carry
                pending.extend(self.processor.take_queued())  # them (the next scan 4 h away)
            if not pending:
                self._sync()
                continue
            try:
                self.outbox.add(pending, slots=self._slot_updates, skip=self._skip)
            except (sqlite3.Error, OSError) as err:  # disk full, I/O error: keep, retry
                self._failed(err, pending)
                pending = self._bounded(pending)
                self.held = len(pending)
                if stopping:
                    tries_at_stop -= 1
                    if tries_at_stop <= 0:
                        log.error("readings_not_committed", count=len(pending))
                        break
                time.sleep(1.0)
                continue
            if self.commit_error is not None:
                log.info("outbox_commit_recovered", committed=len(pending),
                         failing_since=self.failing_since)
                self.commit_error = self.failing_since = None
            self.accepted += len(pending)
            self.commits += 1
            self.held = 0
            self._skip, self._slot_updates = {}, {}
            pending = []
            if self.on_commit is not None:
                self.on_commit()
        self._sync(force=True)
        self._done.set()

    def _sync(self, force: bool = False) -> None:
        """The last commits onto the disk when ``sync_interval`` has passed: only then
        may the publisher send them (daq/outbox.py)."""
        try:
            if force:
                self.outbox.sync()
            else:
                self.outbox.sync_if_due()
        except OSError as err:
            self._failed(err, [])
            return
        if self.on_commit is not None:
            self.on_commit()

    def _failed(self, err: Exception, pending: list[tuple[str, Reading]]) -> None:
        text = f"{type(err).__name__}: {err}"
        if text != self.commit_error:  # once per distinct failure, not every second
            log.error("outbox_commit_failed", error=text, held=len(pending))
            self.commit_error = text
        if self.failing_since is None:
            self.failing_since = format_ts(utcnow())

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

    def processing_ready(self) -> None:
        self.queue.put(_READY)

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
    """``clock``: None for the system clock; a simulated one (``time()``,
    ``wait_until(event, when, at_most)``, see tests/simclock.py) drives the polls and the
    processing's day roll-over, so tests run simulated days in seconds."""

    def __init__(self, cfg: Config, *, state_dir: str | None = None,
                 clock: Any = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state_dir = Path(state_dir or cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_state_dir(self.state_dir)  # before the outbox is opened
        # under systemd the status file goes to the runtime directory (tmpfs) every 2 s;
        # in the state directory (the RTU's flash) only on a change of state or each
        # minute (`daq status` looks in the runtime directory first)
        runtime = os.environ.get("RUNTIME_DIRECTORY")
        self.status_dir = Path(runtime) if runtime else status_in_memory(self.state_dir)
        self.status_every = 2.0 if runtime or self.status_dir != self.state_dir \
            else STATUS_ON_FLASH_S
        self.status_dir.mkdir(parents=True, exist_ok=True)
        self._status_key: Any = None
        self._status_at = 0.0
        try:  # a damaged file is set aside inside; what is left (locked, I/O) is reported
            self.outbox = Outbox(self.state_dir / "outbox.sqlite3", max_rows=outbox_cap(cfg),
                                 sync_interval=cfg.outbox.sync_interval)
        except sqlite3.Error as err:
            raise OSError(f"cannot open the outbox in {self.state_dir}: {err}") from err
        self.publisher: Publisher | None = None
        self.pipeline = Pipeline(cfg, self.outbox, on_commit=self._wake_publisher)
        self.processor: Any = None
        self._loader: threading.Thread | None = None
        # `daq status` while the kernels load, after they failed to (error), once loaded
        self.processing_state: dict[str, Any] | None = None
        if cfg.processing:  # only then are NumPy and Numba imported, in the background
            self.processing_state = {"state": "loading", "since": format_ts(utcnow())}
            self.pipeline.chained = frozenset(cfg.processing.get("chains") or {})
            self._loader = threading.Thread(target=self._load_processing,
                                            name="processing-load", daemon=True)
            if clock is not None:  # a simulated clock: loaded before any poll, at its time
                self._load_processing()
                self._loader = None
        # a device whose current slot has no committed poll (a start) is polled at once
        self.workers = [BusWorker(bus, {d.name: instantiate(d, cfg.drivers)
                                        for d in bus.devices}, self.pipeline.submit,
                                  on_tick_end=self.pipeline.tick_end, clock=clock,
                                  polled=self.outbox.slots)
                        for bus in cfg.buses]
        if cfg.mqtt is not None:
            self.publisher = Publisher(cfg.mqtt, self.outbox, site=cfg.site, rtu=cfg.rtu,
                                       health=self.health,
                                       ack_interval=ACK_INTERVAL_S)
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

    def _load_processing(self) -> None:
        """NumPy, Numba and the kernels (from the cache when warm), then the processor;
        while this runs, readings of chained channels wait in the pipeline."""
        self.processing_state = {"state": "loading", "since": format_ts(utcnow())}
        try:
            from .processing.loader import load

            processor, seconds = load(self.cfg, self.state_dir,
                                      now=None if self.clock is None else self.clock.time())
        except Exception as err:  # never the acquisition: chained readings pass as they are
            error = f"{type(err).__name__}: {err}"
            log.error("processing_unavailable", error=error,
                      hint="readings are published unprocessed; see daq check")
            self.processing_state = {"state": "failed", "since": format_ts(utcnow()),
                                     "error": error}
            self.pipeline.processing_failed = True
            self.pipeline.processing_ready()
            return
        held = len(self.pipeline._held)
        self.processor = self.pipeline.processor = processor
        self.processing_state = {"state": "ready", "since": format_ts(utcnow()),
                                 "load_s": round(seconds, 3)}
        self.pipeline.processing_ready()
        log.info("processing_kernels_ready", seconds=round(seconds, 3), held=held)

    def wait_processing(self, timeout: float) -> bool:
        """True once the processor is loaded (or there is none to load)."""
        if self._loader is not None and self._loader.is_alive():
            self._loader.join(timeout)
        return self._loader is None or not self._loader.is_alive()

    def _wake_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.wakeup.set()

    # -- state ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        devices = [s for w in self.workers for s in w.states.values()]
        return {
            "uptime_s": round((utcnow() - self.started).total_seconds()),
            "outbox": self.backlog(),
            "counters": self.outbox.counters(),
            "outbox_fault": self.outbox_fault(),
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
            "outbox": {"depth": self.backlog(), "cap_rows": self.outbox.max_rows,
                       "counters": self.outbox.counters(),
                       "accepted": self.pipeline.accepted,
                       "dropped_uncommitted": self.pipeline.dropped_uncommitted,
                       "downtime_gaps": self.pipeline.downtime_gaps,
                       "fault": self.outbox_fault(), "set_aside": self.outbox.set_aside},
            "broker": link,
            "sensors": dict(getattr(self.pipeline.sensors, "counters", {}) or {}),
            "sensor_values": dict(self.pipeline.last),
            "driver_counters": {n: c for w in self.workers for n, d in w.drivers.items()
                                if (c := d.counters())},
            "clock_synchronised": clock_synchronised(),
            "gnss": None if self.gnss is None else self.gnss.status(),
            "alarms": None if self.alarms is None else self.alarms.health(),
            **self.control.status(),
            "processing": self.processing_status(),
        }

    def processing_status(self) -> dict[str, Any] | None:
        """None without chains; ``state`` loading (since when), failed (since when, the
        error: chained readings pass unprocessed) or ready (the chains' windows, today)."""
        state, processor = self.processing_state, self.processor
        if state is None:
            return None
        if processor is None or state["state"] != "ready":
            return dict(state)
        return {**state, **processor.status()}

    def backlog(self) -> dict[str, int]:
        """Readings per lane not yet acknowledged by the broker (the outbox still holds
        the acknowledged ones until its next range delete)."""
        depth = self.outbox.depth()
        if self.publisher is not None:
            for lane, n in self.publisher.acked_waiting().items():
                depth[lane] = max(depth[lane] - n, 0)
        return depth

    def outbox_fault(self) -> dict[str, Any] | None:
        """Failing commits (disk full, I/O error): why, since when, readings held."""
        p = self.pipeline
        if p.commit_error is None:
            return None
        return {"error": p.commit_error, "since": p.failing_since,
                "held_in_memory": p.held, "dropped_uncommitted": p.dropped_uncommitted}

    def _status_state(self, st: dict[str, Any]) -> Any:
        """What a technician must see at once: links, devices up, faults (not counters)."""
        return (st["broker"].get("connected"), st["broker"].get("last_error"),
                st["broker"].get("extra", {}).get("ack_error"), st["outbox"]["fault"],
                tuple((b["open"], b["error"], tuple((d["up"], d["last_error"])
                                                    for d in b["devices"]))
                      for b in st["buses"]))

    def write_status(self, force: bool = False) -> None:
        """Rewrite the status file when due or when the state changed; a failure (full
        or broken directory) is logged once per distinct error and never stops the
        supervisor or its orderly shutdown."""
        path = self.status_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        status = self.status()
        status["status_interval_s"] = self.status_every
        key = self._status_state(status)
        now = time.monotonic()
        if not force and key == self._status_key and now - self._status_at < self.status_every:
            return
        try:
            tmp.write_text(json.dumps(status, separators=(",", ":"), default=str),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError as err:
            text = f"{type(err).__name__}: {err}"
            if text != self._status_error:
                log.error("status_write_failed", path=str(path), error=text)
            self._status_error = text
            return
        self._status_error = None
        self._status_key, self._status_at = key, now

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._loader is not None:
            self._loader.start()  # first: the longest part of a start with chains
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
                if self.processor is not None:  # unit states, the day roll-over
                    self.processor.tick({s.name: s.up for w in self.workers
                                         for s in w.states.values()},
                                        now=None if self.clock is None else self.clock.time())
                self.write_status()
                next_status = now + 1.0
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
        if self._loader is not None and self._loader.ident is not None:
            self.wait_processing(60.0)  # what it holds goes through the chains
        self.pipeline.stop()  # commits what was polled: accepted before we go
        if self.processor is not None:  # what the despikers hold; window state saved
            try:
                self.outbox.add(self.processor.flush())
            except (sqlite3.Error, OSError) as err:
                log.error("processing_flush_failed", error=str(err))
        if self.publisher is not None:
            deadline = time.monotonic() + 3.0  # a short grace to send what is buffered
            while (self.publisher.state.connected and time.monotonic() < deadline
                   and any(self.backlog().values())):
                time.sleep(0.05)
            self.publisher.stop()
            self.publisher.join(5.0)
        self.write_status(force=True)
        if self.alarms is not None:
            self.alarms.stop()
        if self.manual is not None:
            self.manual.close()
        self.fieldcal.close()
        self.outbox.close()
        os.close(self._lock_fd)  # the kernel would release it anyway, even on kill -9
        log.info("daemon_stopped")


def status_in_memory(state_dir: Path) -> Path:
    """Outside systemd: a directory on tmpfs for the status file (XDG_RUNTIME_DIR or
    /dev/shm), linked from ``state_dir/status.json`` so that `daq status --state-dir`
    finds it; the state directory itself when there is none (written less often then)."""
    import hashlib

    link = state_dir / "status.json"
    for base in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if not base or not os.access(base, os.W_OK):
            continue
        tag = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]
        target = Path(base) / f"daq-{tag}"
        try:
            target.mkdir(mode=0o755, exist_ok=True)
            if not (link.is_symlink() and Path(os.readlink(link)) == target / "status.json"):
                tmp = state_dir / "status.json.link"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target / "status.json")
                os.replace(tmp, link)
        except OSError:
            continue
        return target
    return state_dir


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

