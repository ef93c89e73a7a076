"""The Modbus bus: unit addresses, the wire budget's truth, skipped slots, bus recovery.

Peers are real (a scripted RTU slave on a pty behind a symlink that vanishes, a TCP
server that goes away and comes back on its port); the bus worker is the daemon's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daq import config
from daq.budget import transaction_seconds
from daq.bus import BusWorker, PollResult
from daq.config import BusConfig, DeviceConfig
from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError
from daq.model import ChannelValue
from daq.testing import build_driver
from daq.testing_modbus import ScriptedRtuSlave, ScriptedTcpSlave
from daq_drivers.modbus import ModbusDriver

from .conftest import wait_for


def cfg_text(protocol: str, address: int, baud: int = 9600, devices: int = 1,
             interval: str = "1s") -> str:
    url = "tcp://127.0.0.1:502" if protocol == "modbus_tcp" else "/dev/ttyUSB0"
    devs = "\n".join(
        f"      d{i}: {{driver: modbus, address: {address}, interval: {interval}, "
        "options: {registers: [{name: x, address: 0, type: float32}]}}"
        for i in range(devices))
    return textwrap.dedent(f"""\
        site: s
        rtu: r
        buses:
          b:
            protocol: {protocol}
            url: {url}
            baudrate: {baud}
            devices:
        """) + devs + "\n"


@pytest.mark.parametrize("protocol,address,ok", [
    ("modbus_rtu", 0, False), ("modbus_rtu", 1, True), ("modbus_rtu", 247, True),
    ("modbus_rtu", 248, False), ("modbus_tcp", 0, True), ("modbus_tcp", 255, True),
    ("modbus_tcp", 256, False)])
def test_unit_addresses_per_protocol(protocol: str, address: int, ok: bool) -> None:
    """RTU: 1-247 (0 is broadcast and never answers); TCP: 0-255 (255 as the spec
    recommends for a device addressed by its IP)."""
    text = cfg_text(protocol, address)
    if ok:
        assert config.loads(text).devices[0].address == address
        return
    with pytest.raises(ConfigError) as err:
        config.loads(text)
    assert [p.path for p in err.value.problems] == ["buses.b.devices.d0.address"]


def test_gaps_are_three_and_a_half_characters_up_to_19200_baud() -> None:
    """10 registers at 19200 8N1: 33 characters plus two gaps of 3.5 characters."""
    bus = BusConfig("b", "modbus_rtu", "/dev/null", 19200, 8, "N", 1, 0.5, 0, ())
    assert transaction_seconds(bus, 10) == pytest.approx((33 + 7) * 10 / 19200)
    fast = BusConfig("b", "modbus_rtu", "/dev/null", 38400, 8, "N", 1, 0.5, 0, ())
    assert transaction_seconds(fast, 10) == pytest.approx(33 * 10 / 38400 + 3.5e-3)


def test_daq_check_fails_a_bus_over_budget(tmp_path: Path) -> None:
    over = tmp_path / "over.yaml"
    over.write_text(cfg_text("modbus_rtu", 1, 9600, devices=40))  # 40 × 9 regs at 1 Hz
    res = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(over)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "over budget" in res.stdout and "OVER BUDGET" in res.stdout
    fine = tmp_path / "fine.yaml"
    fine.write_text(cfg_text("modbus_rtu", 1, 9600, devices=2))
    res = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(fine)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and ": OK" in res.stdout


class Slow(Driver):
    """Each poll holds the bus for ``hold`` seconds (a slow device on a busy line)."""

    link_kind = "modbus"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        self.hold = float(options.get("hold", 0.0))
        self.regs = int(options.get("regs", 2))

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec("x", "", "1")]

    def transactions(self) -> list[int]:
        return [self.regs]

    def poll(self, link: Any) -> list[ChannelValue]:
        time.sleep(self.hold)
        return [ChannelValue("x", 1.0, "1")]


def _dev(name: str, interval: float, **options: Any) -> DeviceConfig:
    return DeviceConfig(name, "b", "slow", 1, interval, None, "raw", options, 300.0)


def _worker(devs: list[DeviceConfig], bus_kw: dict[str, Any] | None = None
            ) -> tuple[BusWorker, list[PollResult], threading.Lock]:
    kw = {"protocol": "modbus_rtu", "url": "loop://", "baudrate": 9600, **(bus_kw or {})}
    bus = BusConfig("b", kw["protocol"], kw["url"], kw["baudrate"], 8, "N", 1, 0.2, 0,
                    tuple(devs))
    drivers = {d.name: Slow(d.name, 1, dict(d.options)) for d in devs}
    results: list[PollResult] = []
    lock = threading.Lock()

    def sink(r: PollResult) -> None:
        with lock:
            results.append(r)

    return BusWorker(bus, dict(drivers), sink, opener=lambda b: object()), results, lock


def test_every_skipped_slot_gets_a_gap_record_and_over_budget_is_logged_once() -> None:
    """A device holding the bus for 0.9 s makes a 0.2 s neighbour miss slots: each one
    becomes a gap record (flag ``skipped``) at its own slot time, as many as counted."""
    w, results, lock = _worker([_dev("fast", 0.2, regs=200), _dev("hog", 1.0, hold=0.9)])
    with capture_logs() as logs:
        w.start()
        try:
            wait_for(lambda: w.states["fast"].skipped >= 5, 60, "skipped slots")
        finally:
            w.stop()
            w.join(10)
    with lock:
        skipped = [r for r in results if r.device.name == "fast" and not r.ok
                   and r.values[0].flags == ("skipped",)]
    assert len(skipped) == w.states["fast"].skipped
    stamps = [r.ts.timestamp() for r in skipped]
    assert all(abs(t / 0.2 - round(t / 0.2)) < 1e-3 for t in stamps)  # on the slot grid
    assert len(set(stamps)) == len(stamps)
    assert [e["event"] for e in logs].count("bus_over_budget") == 1


def test_a_vanishing_serial_device_shows_the_bus_closed_until_it_returns(tmp_path: Path
                                                                          ) -> None:
    """A USB adapter unplugged (its path disappears, reads fail) and plugged back: status
    shows the bus not open, with the error, meanwhile; the worker reopens it by itself;
    each transition is logged once."""
    link = tmp_path / "ttyUSB0"
    first = ScriptedRtuSlave(units=(1,)).__enter__()
    os.symlink(first.path, link)
    dev = DeviceConfig("lvl", "b", "modbus", 1, 0.2, 0.2, "raw", {}, 1.0)
    bus = BusConfig("b", "modbus_rtu", str(link), 115200, 8, "N", 1, 0.2, 0, (dev,))
    drv = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 3}]},
                       name="lvl")
    results: list[PollResult] = []
    w = BusWorker(bus, {"lvl": drv}, results.append)
    with capture_logs() as logs:
        w.start()
        try:
            wait_for(lambda: any(r.ok for r in results), 30, "a first good poll")
            first.close()
            link.unlink()
            wait_for(lambda: w.link is None and w.link_error, 30, "the bus shown closed")
            assert w.states["lvl"].up is False
            time.sleep(1.0)  # several failed reopen attempts: still one log line
            second = ScriptedRtuSlave(units=(1,)).__enter__()
            os.symlink(second.path, link)
            n = len(results)
            wait_for(lambda: any(r.ok for r in results[n:]), 30, "a good poll after replug")
            assert w.link is not None and w.link_error is None
        finally:
            w.stop()
            w.join(10)
    second.close()
    events = [e["event"] for e in logs]
    assert events.count("bus_unavailable") == 1 and events.count("bus_available") == 1
    assert w.states["lvl"].errors.get("bus_error", 0) >= 1


def test_a_restarting_tcp_gateway_is_reconnected_and_shown_down_meanwhile() -> None:
    peer = ScriptedTcpSlave(units=(1,)).__enter__()
    port = peer.port
    dev = DeviceConfig("gw", "b", "modbus", 1, 0.2, 0.2, "raw", {}, 1.0)
    bus = BusConfig("b", "modbus_tcp", peer.url, 9600, 8, "N", 1, 0.2, 0, (dev,))
    drv = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 3}]},
                       name="gw")
    results: list[PollResult] = []
    w = BusWorker(bus, {"gw": drv}, results.append)
    w.start()
    try:
        wait_for(lambda: any(r.ok for r in results), 30, "a first good poll")
        peer.close()
        wait_for(lambda: w.link is None and w.link_error, 30, "the bus shown closed")
        peer = ScriptedTcpSlave(units=(1,), port=port).__enter__()
        n = len(results)
        wait_for(lambda: any(r.ok for r in results[n:]), 30, "a good poll after restart")
        assert w.link_error is None
    finally:
        w.stop()
        w.join(10)
        peer.close()
    assert results[-1].values[0].value == 1003


def test_daq_status_shows_a_closed_bus_and_errors_by_kind() -> None:
    from daq.status_view import show_status

    st = {"running": True, "version": "x", "pid": 1, "site": "s", "rtu": "r",
          "started": "2026-01-01T00:00:00.000Z", "age_s": 0.1,
          "broker": {"configured": False},
          "outbox": {"depth": {"alarm": 0, "result": 0, "raw": 0}, "cap_rows": 1,
                     "counters": {}},
          "buses": [{"name": "rs485", "url": "/dev/ttyUSB0", "open": False,
                     "error": "SerialException: could not open port",
                     "devices": [{"name": "lvl", "driver": "modbus", "up": False,
                                  "polls": 9, "failures": 9, "gaps": 9,
                                  "errors": {"timeout": 4, "garbled": 2, "late_reply": 3},
                                  "last_ok": None, "last_error": "bus_error: x"}]}]}
    text = show_status(st)
    assert "bus rs485 (/dev/ttyUSB0): NOT OPEN — SerialException: could not open port" in text
    assert "garbled 2, late_reply 3, timeout 4" in text
