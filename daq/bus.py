"""One worker thread per physical bus: it owns the line and the schedule of its devices.

Only this thread talks on its line, so two transactions never interleave. Each device has
its own interval, aligned to the wall clock (a 10-minute scan fires at :00, :10 …) and
waited for on the monotonic clock, with every wait bounded by one interval, so a clock step
neither fires a burst of polls nor stalls the schedule. A silent device costs its own
timeout and no more; after repeated failures it is probed less often (exponential backoff),
and every poll that was due but not acquired yields a gap record (quality ``missing``),
including slots skipped because the bus fell behind (flag ``skipped``; a jump of more than
:data:`MAX_SKIPPED_GAPS` slots is a clock step, counted but not filled in).

Modbus buses get the daemon's own masters (:mod:`daq.modbus_link`), which check every
reply against its request; what went wrong is counted per device by kind in
``DeviceState.errors`` (timeout, crc, garbled, exception, gateway_no_response,
gateway_path, late_reply, bus_error), shown by ``daq status``.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from .config import BusConfig, DeviceConfig
from .driver import Driver
from .errors import DeviceError, NoResponse, ProtocolError
from .model import ChannelValue, Quality, format_ts

log = structlog.get_logger("daq.bus")

MAX_SKIPPED_GAPS = 1000  # more skipped slots at once come from a clock step, not a slow bus


@dataclass
class PollResult:
    device: DeviceConfig
    ts: datetime
    values: list[ChannelValue]
    ok: bool


@dataclass
class DeviceState:
    """Per-device health, shown by ``daq status``."""

    name: str
    driver: str
    interval: float
    up: bool | None = None  # None: not polled yet
    polls: int = 0
    failures: int = 0
    no_response: int = 0
    protocol_errors: int = 0
    driver_errors: int = 0
    gaps: int = 0
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by kind, see the module doc
    consecutive_failures: int = 0
    last_ok: str | None = None
    last_error: str | None = None
    last_values: dict[str, Any] = field(default_factory=dict)
    backoff: float = 0.0


def open_link(bus: BusConfig) -> Any:
    """Open the bus's transport; the returned object is what drivers' ``poll`` receives."""
    if bus.url.startswith("sim://"):
        import daq.sim  # noqa: F401  registers the sim:// pyserial URL handler
    if bus.protocol == "modbus_tcp":
        from .modbus_link import TcpMaster

        host, _, port = bus.url.removeprefix("tcp://").rpartition(":")
        tcp = TcpMaster(host.strip("[]"), int(port), timeout=bus.timeout)
        tcp.retries = bus.retries
        return tcp
    import serial

    port_ = serial.serial_for_url(bus.url, baudrate=bus.baudrate, bytesize=bus.bytesize,
                                  parity=bus.parity, stopbits=bus.stopbits,
                                  timeout=bus.timeout)
    if bus.protocol == "modbus_rtu":
        from .budget import char_bits
        from .modbus_link import RtuMaster

        rtu = RtuMaster(port_, baudrate=bus.baudrate, char_bits=char_bits(bus),
                        timeout=bus.timeout, settle=bus.settle, gap=bus.frame_gap)
        rtu.retries = bus.retries
        return rtu
    return port_


def close_link(link: Any) -> None:
    try:
        link.close()
    except Exception:  # closing a broken transport may fail in many ways; it is gone anyway
        pass


def next_slot(now_wall: float, interval: float) -> float:
    """The next wall-clock instant aligned to ``interval`` strictly after ``now_wall``."""
    return (math.floor(now_wall / interval) + 1) * interval


def _checked(values: Any) -> list[ChannelValue]:
    """A driver's result, checked inside the poll's guard: a plugin returning anything but
    a list of ChannelValue (with a Quality) is a driver error, not a dead bus thread."""
    if not isinstance(values, list) or not all(
            isinstance(v, ChannelValue) and isinstance(v.quality, Quality) for v in values):
        raise TypeError(f"poll() returned {type(values).__name__}, not a list of "
                        "ChannelValue")
    return values


class BusWorker(threading.Thread):
    def __init__(self, bus: BusConfig, drivers: dict[str, Driver],
                 sink: Callable[[PollResult], None], *,
                 opener: Callable[[BusConfig], Any] = open_link,
                 wall: Callable[[], float] = time.time,
                 on_tick_end: Callable[[], None] | None = None,
                 clock: Any = None) -> None:
        super().__init__(name=f"bus-{bus.name}", daemon=True)
        self.bus = bus
        self.devices = {d.name: d for d in bus.devices}
        self.drivers = drivers
        self.sink = sink
        self._opener = opener
        self._wall = wall  # the system clock; replaceable to test clock steps
        # a simulated clock (``time()``, ``wait_until(event, when, at_most)``) runs days of
        # acquisition in seconds in tests (tests/simclock.py); None: the system clock
        self._clock = clock
        if clock is not None:
            self._wall = wall = clock.time
        self._halt = threading.Event()
        self.link: Any = None
        self.link_error: str | None = None
        self.heartbeat = time.monotonic()
        self.states = {d.name: DeviceState(d.name, d.driver, d.interval) for d in bus.devices}
        self.log = log.bind(bus=bus.name, url=bus.url)
        now = wall()
        self._due = {d.name: next_slot(now, d.interval) for d in bus.devices}
        self._probe = dict.fromkeys(self.devices, 0.0)  # backoff: earliest wall time to poll
        self._requests: queue.SimpleQueue[tuple[Callable[[BusWorker], Any], Future[Any]]] = (
            queue.SimpleQueue())
        self._kick = threading.Event()
        # called when the polls due now are done, before the bus waits: the pipeline
        # commits then, so a kill loses at most the polls in flight
        self.on_tick_end = on_tick_end
        self._ticked = False

    def stop(self) -> None:
        self._halt.set()
        self._kick.set()

    # -- requests (daq read over the control socket): run on this thread, between polls --

    def request(self, fn: Callable[[BusWorker], Any]) -> Future[Any]:
        """Run ``fn(self)`` on this worker's thread between two scheduled polls, so a
        technician's poll never shares the line with the daemon's own transactions."""
        fut: Future[Any] = Future()
        self._requests.put((fn, fut))
        self._kick.set()
        return fut

    def _serve_requests(self) -> bool:
        try:
            fn, fut = self._requests.get_nowait()
        except queue.Empty:
            return False
        if fut.set_running_or_notify_cancel():  # False: the client gave up waiting
            try:
                fut.set_result(fn(self))
            except Exception as err:  # the requester gets it; the worker carries on
                fut.set_exception(err)
        return True

    def _check_budget(self) -> None:
        from .budget import bus_load

        load = bus_load(self.bus, self.drivers)
        if load > 1.0:
            self.log.warning("bus_over_budget", load=round(load, 3),
                             hint="polls will be skipped (gap records flagged skipped); "
                                  "see daq check")

    def run(self) -> None:
        try:
            self._check_budget()
        except Exception as err:  # a driver whose transactions() fails must not stop the bus
            self.log.warning("bus_budget_unknown", error=f"{type(err).__name__}: {err}")
        try:
            while not self._halt.is_set():
                self.heartbeat = time.monotonic()
                name = min(self._due, key=self._due.__getitem__)
                due = self._due[name]
                now = self._wall()
                wait = due - now
                interval = self.devices[name].interval
                if wait > interval:
                    # the clock went back: the slot is further away than one interval,
                    # which no schedule produces; resync instead of stalling
                    self._due[name] = next_slot(now, interval)
                    continue
                if wait > 0:
                    if self._ticked and self.on_tick_end is not None:
                        self.on_tick_end()
                    self._ticked = False
                    self._kick.clear()
                    if self._serve_requests():  # after serving one, look at the clock
                        continue
                    if self._clock is not None:
                        self._clock.wait_until(self._kick, due, 1.0)
                    else:
                        self._kick.wait(min(wait, 1.0))
                    continue
                self._poll_due(name, due)
        finally:
            if self.link is not None:
                close_link(self.link)

    def _poll_due(self, name: str, due: float) -> None:
        dev = self.devices[name]
        self._ticked = True
        now = self._wall()
        if now - due >= dev.interval:
            # slots lost to a busy bus or a forward clock step: counted, then resync (no
            # burst of polls); a slow bus's slots get gap records, a clock step's do not
            lost = int((now - due) // dev.interval)
            self.states[name].skipped += lost
            if lost <= MAX_SKIPPED_GAPS:
                for k in range(lost):
                    self._emit_gap(dev, datetime.fromtimestamp(due + k * dev.interval, UTC),
                                   "skipped")
        self._due[name] = next_slot(now, dev.interval)
        ts = datetime.fromtimestamp(now, UTC)
        # a probe time further away than backoff_max comes from a backward clock step:
        # probe now rather than stay silent for the length of the step
        if now < self._probe[name] <= now + dev.backoff_max:
            self._emit_gap(dev, ts, "backoff")
            return
        self._poll(dev, ts)

    def _ensure_link(self) -> bool:
        if self.link is not None:
            return True
        try:
            self.link = self._opener(self.bus)
        except Exception as err:  # pyserial/pymodbus raise many kinds; all mean "no line"
            text = f"{type(err).__name__}: {err}"
            if self.link_error is None:  # logged once per outage, however its text changes
                self.log.error("bus_unavailable", error=text)
            self.link_error = text
            return False
        if self.link_error is not None:
            self.log.info("bus_available")
        self.link_error = None
        return True

    def _poll(self, dev: DeviceConfig, ts: datetime) -> None:
        st = self.states[dev.name]
        if not self._ensure_link():
            self._fail(dev, ts, "bus_unavailable", self.link_error or "")
            return
        drv = self.drivers[dev.name]
        if hasattr(self.link, "timeout"):
            self.link.timeout = dev.timeout or self.bus.timeout
        if hasattr(self.link, "pause"):
            self.link.pause = dev.pause
        st.polls += 1
        try:
            values = _checked(drv.poll(self.link))
        except NoResponse as err:
            st.no_response += 1
            self._count(st, getattr(err, "kind", "timeout"))
            self._fail(dev, ts, "no_response", str(err))
            return
        except ProtocolError as err:
            st.protocol_errors += 1
            self._count(st, getattr(err, "kind", "garbled"))
            self._fail(dev, ts, "protocol_error", str(err))
            return
        except DeviceError as err:
            self._count(st, None)
            self._fail(dev, ts, "device_error", str(err))
            return
        except OSError as err:  # the line itself failed (adapter unplugged): reopen later
            close_link(self.link)
            self.link = None
            text = f"{type(err).__name__}: {err}"
            if self.link_error is None:
                self.log.error("bus_unavailable", error=text)
            self.link_error = text  # daq status shows the bus closed, with the reason
            self._count(st, "bus_error")
            self._fail(dev, ts, "bus_error", text)
            return
        except Exception as err:  # a driver bug must not take the bus down
            st.driver_errors += 1
            self._count(st, None)
            self._fail(dev, ts, "driver_error", f"{type(err).__name__}: {err}")
            return
        self._count(st, None)
        self._ok(dev, ts, values)

    def _count(self, st: DeviceState, kind: str | None) -> None:
        """Count a failure's kind and what the link saw on the way (late replies)."""
        take = getattr(self.link, "take_events", None)
        seen = dict(take()) if take is not None else {}
        if kind is not None:
            seen[kind] = seen.get(kind, 0) + 1
        if seen:
            # a new dict, never mutated: the status writer copies it from another thread
            st.errors = {k: st.errors.get(k, 0) + seen.get(k, 0)
                         for k in {*st.errors, *seen}}

    def _ok(self, dev: DeviceConfig, ts: datetime, values: list[ChannelValue]) -> None:
        st = self.states[dev.name]
        if st.up is False:
            self.log.info("device_up", device=dev.name, after_failures=st.consecutive_failures)
        st.up = True
        st.consecutive_failures = 0
        st.backoff = 0.0
        self._probe[dev.name] = 0.0
        st.last_ok = format_ts(ts)
        st.last_values = {v.channel: {"value": v.value, "unit": v.unit,
                                      "quality": v.quality.value} for v in values}
        self.sink(PollResult(dev, ts, values, True))

    def _fail(self, dev: DeviceConfig, ts: datetime, kind: str, text: str) -> None:
        st = self.states[dev.name]
        st.failures += 1
        st.consecutive_failures += 1
        st.last_error = f"{kind}: {text}"
        if st.up is not False:  # log the transition once, not every poll
            self.log.warning("device_down", device=dev.name, reason=kind, error=text)
        st.up = False
        if st.consecutive_failures >= 3:
            st.backoff = min(max(st.backoff * 2, dev.interval * 2), dev.backoff_max)
            self._probe[dev.name] = self._wall() + st.backoff - dev.interval / 2
        self._emit_gap(dev, ts, kind)

    def _emit_gap(self, dev: DeviceConfig, ts: datetime, reason: str) -> None:
        st = self.states[dev.name]
        st.gaps += 1
        gaps = [ChannelValue(c.name, None, c.unit, Quality.MISSING, c.quantity, (reason,))
                for c in self.drivers[dev.name].channels]
        self.sink(PollResult(dev, ts, gaps, False))
