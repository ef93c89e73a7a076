"""The bus scheduler under clock steps, slow devices and backoff (real threads, real time).

The wall clock is the one thing replaced: a function returning the system time plus an
offset the test moves, as an NTP step or a late RTC would.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from daq.bus import BusWorker, PollResult
from daq.config import BusConfig, DeviceConfig
from daq.driver import ChannelSpec, Driver
from daq.errors import NoResponse
from daq.model import ChannelValue


class Counter(Driver):
    """A test driver: answers with its poll count, or stays silent when told."""

    link_kind = "modbus"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        self.polls: list[float] = []
        self.silent = False

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec("n", "count", "1")]

    def poll(self, link: Any) -> list[ChannelValue]:
        self.polls.append(time.monotonic())
        if self.silent:
            raise NoResponse("silent")
        return [ChannelValue("n", float(len(self.polls)), "1")]


def device(name: str, interval: float, backoff_max: float = 300.0) -> DeviceConfig:
    return DeviceConfig(name, "b", "counter", 1, interval, None, "raw", {}, backoff_max)


def worker(devs: list[DeviceConfig], wall: Any = time.time
           ) -> tuple[BusWorker, dict[str, Counter], list[PollResult]]:
    bus = BusConfig("b", "modbus_tcp", "127.0.0.1:1", 9600, 8, "N", 1, 0.1, 0, tuple(devs))
    drivers = {d.name: Counter(d.name, 1, {}) for d in devs}
    results: list[PollResult] = []
    lock = threading.Lock()

    def sink(r: PollResult) -> None:
        with lock:
            results.append(r)

    w = BusWorker(bus, dict(drivers), sink, opener=lambda b: object(), wall=wall)
    return w, drivers, results


def test_clock_steps_neither_burst_nor_stall() -> None:
    """A forward step of one hour does not fire the 3600 missed polls; a backward step of
    two hours does not stall the schedule for two hours: polls stay at about 2 Hz."""
    offset = [0.0]
    w, drv, _ = worker([device("d", 0.5)], wall=lambda: time.time() + offset[0])
    w.start()
    try:
        time.sleep(1.6)
        before = len(drv["d"].polls)
        offset[0] += 3600
        time.sleep(2.0)
        after_forward = len(drv["d"].polls) - before
        offset[0] -= 7200
        mark = len(drv["d"].polls)
        time.sleep(2.5)
        after_backward = len(drv["d"].polls) - mark
    finally:
        w.stop()
        w.join(5)
    assert 1 <= after_forward <= 6, after_forward  # 2 s at 2 Hz: no burst of 7200
    assert w.states["d"].skipped >= 7000  # counted, not polled
    assert after_backward >= 1, "the schedule stalled after the clock went back"


def test_silent_device_backs_off_and_others_keep_their_schedule() -> None:
    """A device that stops answering is probed less and less often (gap records keep
    coming for its slots); its neighbour keeps every slot; it recovers when it answers."""
    w, drv, results = worker([device("ok", 0.2), device("dead", 0.2, backoff_max=1.0)])
    drv["dead"].silent = True
    w.start()
    try:
        time.sleep(4.0)
        probes_while_dead = len(drv["dead"].polls)
        drv["dead"].silent = False
        time.sleep(2.0)
    finally:
        w.stop()
        w.join(5)
    ok = [r for r in results if r.device.name == "ok"]
    assert all(r.ok for r in ok) and len(ok) >= 28  # 6 s at 5 Hz, nothing lost to "dead"
    dead = [r for r in results if r.device.name == "dead"]
    gaps = [r for r in dead if not r.ok]
    assert probes_while_dead <= 10, "backoff did not reduce the probing"
    assert len(gaps) >= 15 and all(v.quality.value == "missing" for r in gaps
                                   for v in r.values)
    assert dead[-1].ok and w.states["dead"].up is True


class Malformed(Counter):
    """A buggy third-party driver: returns None instead of a list of channel values."""

    def poll(self, link: Any) -> list[ChannelValue]:
        self.polls.append(time.monotonic())
        return None  # type: ignore[return-value]


def test_a_driver_returning_garbage_costs_its_own_values_not_the_bus() -> None:
    """A poll() that returns something other than a list of ChannelValue is a driver error:
    counted, a gap record for its slot, and the bus thread keeps polling its neighbours."""
    w, _, results = worker([device("ok", 0.2), device("bad", 0.2)])
    w.drivers["bad"] = Malformed("bad", 1, {})
    w.start()
    try:
        time.sleep(1.5)
    finally:
        w.stop()
        w.join(5)
    assert w.states["bad"].driver_errors >= 3
    bad = [r for r in results if r.device.name == "bad"]
    assert bad and not any(r.ok for r in bad)
    assert all(v.quality.value == "missing" for r in bad for v in r.values)
    ok = [r for r in results if r.device.name == "ok"]
    assert len(ok) >= 5 and all(r.ok for r in ok)


def test_backoff_survives_a_backward_clock_step() -> None:
    """A device in backoff when the clock steps back an hour is probed again within its
    backoff_max, not an hour later: the step must not stall its recovery."""
    offset = [0.0]
    w, drv, results = worker([device("dead", 0.2, backoff_max=1.0)],
                             wall=lambda: time.time() + offset[0])
    drv["dead"].silent = True
    w.start()
    try:
        time.sleep(1.5)  # three failures and more: the device is backing off
        assert w.states["dead"].backoff > 0
        offset[0] -= 3600
        drv["dead"].silent = False
        time.sleep(2.5)
    finally:
        w.stop()
        w.join(5)
    assert w.states["dead"].up is True, "still backing off after the clock went back"
    assert results[-1].ok


def test_a_start_polls_at_once_each_device_whose_slot_holds_no_poll() -> None:
    """``polled`` (each device's last committed poll, from the outbox): a device never
    polled, or last polled in an earlier slot, is polled as soon as the worker runs; one
    already polled in the current slot waits for its next aligned slot."""
    hour = 3600.0
    base = 500_000 * hour + 1234.5  # mid-slot: the next hourly slot is 2365.5 s away
    m0 = time.monotonic()

    def wall() -> float:
        return base + (time.monotonic() - m0)

    devs = [device("fresh", hour), device("earlier", hour), device("done", hour)]
    bus = BusConfig("b", "modbus_tcp", "127.0.0.1:1", 9600, 8, "N", 1, 0.1, 0, tuple(devs))
    drivers = {d.name: Counter(d.name, 1, {}) for d in devs}
    results: list[PollResult] = []
    two = threading.Event()

    def sink(r: PollResult) -> None:
        results.append(r)
        if len(results) >= 2:
            two.set()

    w = BusWorker(bus, dict(drivers), sink, opener=lambda b: object(), wall=wall,
                  polled={"earlier": base - hour, "done": base - 600.0})
    w.start()
    try:
        assert two.wait(30)
    finally:
        w.stop()
        w.join(5)
    assert sorted(r.device.name for r in results) == ["earlier", "fresh"]
    assert all(r.ok and r.ts.timestamp() // hour == base // hour for r in results)
    assert drivers["done"].polls == []
