"""Modbus replies are checked against their request: never a wrong value marked good.

Peers are real: a scripted RTU slave on a pseudo-terminal and a scripted TCP server
(:mod:`daq.testing_modbus`) that answer late, with the wrong function code, byte count,
unit or transaction id, exception codes, garbage, truncated frames, or close mid-frame.
The masters are the daemon's own (:func:`daq.bus.open_link`).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from daq.bus import BusWorker, PollResult, open_link
from daq.config import BusConfig, DeviceConfig
from daq.errors import NoResponse, ProtocolError
from daq.model import Quality
from daq.testing import build_driver
from daq.testing_modbus import Behaviour, ScriptedRtuSlave, ScriptedTcpSlave
from daq_drivers.modbus import ModbusDriver


def rtu_bus(url: str, timeout: float = 0.3, settle: float = 0.1,
            devices: tuple[DeviceConfig, ...] = ()) -> BusConfig:
    return BusConfig("b", "modbus_rtu", url, 115200, 8, "N", 1, timeout, 0, devices,
                     settle=settle)


def tcp_bus(url: str, timeout: float = 0.3, devices: tuple[DeviceConfig, ...] = ()
            ) -> BusConfig:
    return BusConfig("b", "modbus_tcp", url, 9600, 8, "N", 1, timeout, 0, devices)


def block(first: int, n: int, unit: int = 6, name: str = "dev", **extra: Any) -> Any:
    return build_driver(ModbusDriver, {"registers": [
        {"name": f"r{first + i}", "address": first + i} for i in range(n)], **extra},
        address=unit, name=name)


def good_values(values: list[Any]) -> dict[str, float]:
    return {v.channel: v.value for v in values if v.quality is Quality.GOOD}


@pytest.mark.parametrize("settle", [0.25, 0.0])  # margins for a loaded machine
def test_a_late_reply_is_never_taken_for_the_next_request(settle: float) -> None:
    """The issue's case: timeout 300 ms; A (holding 0-5 of unit 6) answers after 350 ms,
    B (holding 20-23) after 150 ms. With the default settle time A times out every time
    (a reply after its timeout is not accepted), its late reply is waited out and counted,
    and B is good with B's own registers. Without settling, replies land on the wrong
    request; each is refused (byte count) or times out, and whatever is good is its own."""
    rules = {0: Behaviour(delay=0.35), 20: Behaviour(delay=0.15)}
    own = {"a": {f"r{i}": 1000 + i for i in range(6)},
           "b": {f"r{20 + i}": 1020 + i for i in range(4)}}
    outcome: dict[str, list[str]] = {"a": [], "b": []}
    with ScriptedRtuSlave(units=(6,), rules=rules) as slave:
        link = open_link(rtu_bus(slave.path, settle=settle))
        drivers = {"a": block(0, 6), "b": block(20, 4)}
        try:
            for _ in range(4):
                for name, drv in drivers.items():
                    try:
                        got = good_values(drv.poll(link))
                    except (NoResponse, ProtocolError) as err:
                        outcome[name].append(getattr(err, "kind", "?"))
                        continue
                    assert got == own[name], f"{name} published another request's values"
                    outcome[name].append("good")
        finally:
            events = link.take_events()
            link.close()
    if settle > 0:
        assert outcome == {"a": ["timeout"] * 4, "b": ["good"] * 4}
        assert events["late_reply"] == 4
    else:
        assert set(outcome["b"]) <= {"good", "garbled", "timeout"}
        assert "garbled" in outcome["a"] + outcome["b"]


@pytest.mark.parametrize("mode,error,kind", [
    ("wrong_fc", ProtocolError, "garbled"),       # an input reply to a holding request
    ("wrong_count", ProtocolError, "garbled"),    # a long reply is not cut to size
    ("wrong_unit", ProtocolError, "garbled"),
    ("bad_crc", ProtocolError, "crc"),
    ("garbage", ProtocolError, None),             # garbled or crc, never "silent"
    ("truncate", ProtocolError, "garbled"),
    ("silent", NoResponse, "timeout"),
])
def test_rtu_replies_that_do_not_answer_the_request_are_refused_by_kind(
        mode: str, error: type[Exception], kind: str | None) -> None:
    with ScriptedRtuSlave(units=(6,), rules={0: Behaviour(mode)}) as slave:
        link = open_link(rtu_bus(slave.path, timeout=0.2))
        try:
            with pytest.raises(error) as info:
                block(0, 4).poll(link)
            assert getattr(info.value, "kind", None) in ((kind,) if kind else
                                                          ("garbled", "crc"))
            # the line is usable right after: the next request gets its own answer
            assert good_values(block(20, 2).poll(link)) == {"r20": 1020, "r21": 1021}
        finally:
            link.close()


@pytest.mark.parametrize("mode,error,kind", [
    ("wrong_fc", ProtocolError, "garbled"),
    ("wrong_count", ProtocolError, "garbled"),
    ("wrong_unit", ProtocolError, "garbled"),
    ("wrong_tid", ProtocolError, "garbled"),
    ("absurd_length", ProtocolError, "garbled"),
    ("garbage", ProtocolError, "garbled"),
    ("truncate", ProtocolError, "garbled"),
    ("silent", NoResponse, "timeout"),
    ("close", OSError, None),                     # closed mid-frame: the link is lost
])
def test_tcp_replies_that_do_not_answer_the_request_are_refused_by_kind(
        mode: str, error: type[Exception], kind: str | None) -> None:
    with ScriptedTcpSlave(units=(6,), rules={0: Behaviour(mode)}) as peer:
        link = open_link(tcp_bus(peer.url, timeout=0.2))
        try:
            with pytest.raises(error) as info:
                block(0, 4).poll(link)
            assert getattr(info.value, "kind", None) == kind
            if mode != "close":
                assert good_values(block(20, 2).poll(link)) == {"r20": 1020, "r21": 1021}
        finally:
            link.close()


def test_tcp_late_reply_is_skipped_by_its_transaction_id() -> None:
    with ScriptedTcpSlave(units=(6,), rules={0: Behaviour(delay=0.3)}) as peer:
        link = open_link(tcp_bus(peer.url, timeout=0.2))
        try:
            with pytest.raises(NoResponse):
                block(0, 4).poll(link)
            assert good_values(block(20, 2).poll(link)) == {"r20": 1020, "r21": 1021}
            assert link.take_events()["late_reply"] == 1
        finally:
            link.close()


@pytest.mark.parametrize("peer_cls,bus", [(ScriptedRtuSlave, rtu_bus),
                                          (ScriptedTcpSlave, tcp_bus)])
@pytest.mark.parametrize("code,error,kind", [
    (2, ProtocolError, "exception"), (11, NoResponse, "gateway_no_response"),
    (10, NoResponse, "gateway_path")])
def test_exception_codes_are_classified(peer_cls: Any, bus: Any, code: int,
                                        error: type[Exception], kind: str) -> None:
    """0x0B is the unit behind a gateway not answering, 0x0A a gateway path problem:
    no-responses, not protocol errors."""
    with peer_cls(units=(6,), rules={0: Behaviour("exception", code=code)}) as peer:
        link = open_link(bus(getattr(peer, "url", None) or peer.path))
        try:
            with pytest.raises(error) as info:
                block(0, 2).poll(link)
            assert info.value.kind == kind  # type: ignore[attr-defined]
        finally:
            link.close()


def test_exception_02_on_one_block_flags_only_that_blocks_channels() -> None:
    with ScriptedRtuSlave(units=(6,), rules={100: Behaviour("exception", code=2)}) as slave:
        link = open_link(rtu_bus(slave.path))
        drv = build_driver(ModbusDriver, {"registers": [
            {"name": "ok", "address": 0, "type": "uint32"},
            {"name": "gone", "address": 100}, {"name": "also_ok", "kind": "input",
                                               "address": 5}]}, address=6)
        try:
            values = {v.channel: v for v in drv.poll(link)}
        finally:
            link.close()
    assert values["ok"].quality is Quality.GOOD and values["ok"].value == 1000 * 65536 + 1001
    assert values["also_ok"].value == 2005
    assert values["gone"].quality is Quality.MISSING and values["gone"].value is None
    assert values["gone"].flags == ("protocol_error", "exception_02")


def test_coils_discrete_inputs_and_one_request_per_register() -> None:
    with ScriptedRtuSlave(units=(3,)) as slave:
        link = open_link(rtu_bus(slave.path))
        drv = build_driver(ModbusDriver, {"one_request_per_register": True, "registers": [
            {"name": "c0", "kind": "coil", "address": 0},
            {"name": "c1", "kind": "coil", "address": 1, "type": "bool"},
            {"name": "d9", "kind": "discrete", "address": 9},
            {"name": "h1", "address": 1}, {"name": "h2", "address": 2}]}, address=3)
        try:
            got = good_values(drv.poll(link))
        finally:
            link.close()
        assert got == {"c0": 0, "c1": 1, "d9": 1, "h1": 1001, "h2": 1002}
        assert sorted(slave.requests) == [(3, 1, 0, 1), (3, 1, 1, 1), (3, 2, 9, 1),
                                          (3, 3, 1, 1), (3, 3, 2, 1)]


def _run_worker(bus: BusConfig, drivers: dict[str, Any], until: Any
                ) -> tuple[BusWorker, list[PollResult]]:
    """Run a real bus worker until ``until(worker, results)`` holds (generous bound)."""
    import threading

    results: list[PollResult] = []
    done = threading.Event()

    def sink(r: PollResult) -> None:
        results.append(r)
        if until(w, results):
            done.set()

    w = BusWorker(bus, drivers, sink)
    w.start()
    try:
        assert done.wait(60), "the worker never reached the expected state"
    finally:
        w.stop()
        w.join(10)
    return w, results


def _dev(name: str, unit: int = 6, interval: float = 0.2) -> DeviceConfig:
    return DeviceConfig(name, "b", "modbus", unit, interval, None, "raw", {}, 1.0)


def test_status_counts_each_failure_by_kind() -> None:
    """A technician sees garbled apart from silent: counts by kind per device, and the
    totals no_response / protocol_errors agree with them."""
    rules = {0: Behaviour("garbage"), 10: Behaviour("silent"), 20: Behaviour(delay=0.2),
             30: Behaviour("exception", code=11), 40: Behaviour("exception", code=2)}
    names = ("noise", "dead", "late", "gw", "refused")
    with ScriptedRtuSlave(units=(6,), rules=rules) as slave:
        bus = rtu_bus(slave.path, timeout=0.15, settle=0.3,
                      devices=tuple(_dev(n) for n in names))
        drivers = {n: block(10 * i, 2, name=n) for i, n in enumerate(names)}
        w, results = _run_worker(bus, drivers, lambda w, r: all(
            s.polls >= 2 for s in w.states.values()) and w.states["late"].errors.get(
            "late_reply", 0) >= 1)
    st = {n: asdict(s) for n, s in w.states.items()}  # what the status file shows
    assert set(st["noise"]["errors"]) <= {"garbled", "crc"} and st["noise"]["errors"]
    assert st["noise"]["protocol_errors"] == sum(st["noise"]["errors"].values())
    assert st["noise"]["no_response"] == 0
    assert st["dead"]["errors"] == {"timeout": st["dead"]["no_response"]}
    assert st["dead"]["protocol_errors"] == 0
    assert st["late"]["errors"]["timeout"] == st["late"]["no_response"]
    assert st["gw"]["errors"] == {"gateway_no_response": st["gw"]["no_response"]}
    assert st["refused"]["errors"] == {"exception": st["refused"]["protocol_errors"]}
    assert not any(v.quality is Quality.GOOD for r in results for v in r.values)


def test_bus_retries_repeat_a_timed_out_request_only() -> None:
    with ScriptedRtuSlave(units=(6,), rules={0: Behaviour("silent"),
                                             10: Behaviour("wrong_fc")}) as slave:
        bus = BusConfig("b", "modbus_rtu", slave.path, 115200, 8, "N", 1, 0.1, 2, (),
                        settle=0.0)
        link = open_link(bus)
        try:
            with pytest.raises(NoResponse):
                block(0, 1).poll(link)
            with pytest.raises(ProtocolError):
                block(10, 1).poll(link)
        finally:
            link.close()
    assert [r[2] for r in slave.requests] == [0, 0, 0, 10]


def test_a_device_pause_keeps_the_line_quiet_before_each_request() -> None:
    """``pause`` is extra quiet before every request of that device (lower bound only)."""
    dev = DeviceConfig("slow", "b", "modbus", 6, 1.0, None, "raw", {}, 300.0, pause=0.2)
    with ScriptedRtuSlave(units=(6,)) as slave:
        bus = rtu_bus(slave.path, devices=(dev,))
        worker = BusWorker(bus, {"slow": block(0, 1, one_request_per_register=True)},
                           lambda r: None)
        worker.link = open_link(bus)
        try:
            for _ in range(2):
                worker._poll(dev, datetime.now(UTC))
        finally:
            worker.link.close()
        assert len(slave.times) == 2 and slave.times[1] - slave.times[0] >= 0.2
