"""``daq calibrate`` against a running daemon: a field zero and a two-point calibration
change later readings, which carry the new id; the history (who, when, before, after)
survives a restart and still applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .conftest import Broker, Subscriber, validator, wait_for
from .test_daemon_e2e import write_config

pytestmark = pytest.mark.slow


def daq_cal(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "calibrate", *args, "--state-dir",
                           str(state), "--json"], capture_output=True, text=True, timeout=60)


def polled_by(d: Any, n: int) -> bool:
    """The daemon process ``d`` itself (not a killed one's status file) accepted ``n``."""
    s = d.status() or {}
    return s.get("pid") == d.proc.pid and s.get("outbox", {}).get("accepted", 0) >= n


def test_zero_and_two_point_with_history_across_a_restart(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.5, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.5})
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: len(subscriber.readings()) >= 3, 60, "readings")
        early = daq_cal(state, "zero", "unit1/nothing")
        assert early.returncode == 2 and "nothing to calibrate" in early.stderr
        z = daq_cal(state, "zero", "unit1/level", "--reference", "10", "--by", "tech")
        assert z.returncode == 0, z.stderr
        zero = json.loads(z.stdout)
        assert zero["before"]["value"] == pytest.approx(12.5)
        assert zero["after"]["offset"] == pytest.approx(-2.5) and zero["by"] == "tech"

        def carrying(cal_id: str) -> list[dict[str, Any]]:
            return [r for r in subscriber.readings()
                    if (r.get("calibration") or {}).get("field", {}).get("id") == cal_id]

        got = wait_for(lambda: carrying(zero["id"]), 30, "readings with the new id")
        assert got[0]["value"] == pytest.approx(10.0)
        assert got[0]["calibration"]["field"]["uncorrected"] == pytest.approx(12.5)
        d.kill()
        d2 = run_daemon(cfg, broker.url, state)
        # polled by the new daemon (not resent by it): seqs above any the killed one gave
        top = max(r["seq"] for r in subscriber.readings() if r["channel"] == "unit1/level")
        wait_for(lambda: polled_by(d2, 5) and
                 len([r for r in carrying(zero["id"]) if r["seq"] > top]) > 2, 60,
                 "still applied after restart")
        two = daq_cal(state, "two-point", "unit1/level", "--point", "10=0", "--point",
                      "20=100", "--by", "lab")
        assert two.returncode == 0, two.stderr
        tp = json.loads(two.stdout)
        assert tp["after"]["gain"] == pytest.approx(10.0)
        assert tp["after"]["value"] == pytest.approx(25.0)  # 10 · 12.5 − 100
        wait_for(lambda: carrying(tp["id"]), 30, "two-point readings")
        hist = json.loads(daq_cal(state, "history", "unit1/level").stdout)["history"]
        assert [(h["id"], h["by"], h["method"]) for h in hist] == [
            (zero["id"], "tech", "zero"), (tp["id"], "lab", "two-point")]
        assert hist[1]["before"]["id"] == zero["id"]
        assert d2.stop() == 0
    assert all(r["value"] == pytest.approx(25.0) for r in carrying(tp["id"]))
    # every later reading carries the newest id: per seq, never back to an older one
    order = [None, zero["id"], tp["id"]]
    ranks = [order.index(((r.get("calibration") or {}).get("field") or {}).get("id"))
             for r in sorted(subscriber.readings(), key=lambda r: r["seq"])
             if r["channel"] == "unit1/level" and r["value"] is not None]
    assert ranks == sorted(ranks) and ranks[-1] == 2


def every_later_carries(readings: list[dict[str, Any]], cal_id: str) -> int:
    """Per channel in seq order: once a reading carries ``cal_id``, every later one does.
    Returns how many carried it."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(readings, key=lambda r: (r["channel"], r["seq"])):
        by.setdefault(r["channel"], []).append(r)
    n = 0
    for rs in by.values():
        ids = [((r.get("calibration") or {}).get("field") or {}).get("id") for r in rs]
        if cal_id in ids:
            first = ids.index(cal_id)
            assert set(ids[first:]) == {cal_id}, (rs[0]["channel"], ids[first:])
            n += len(ids) - first
    return n


SH = {"a": 1.4051e-3, "b": 2.369e-4, "c": 1.019e-7, "kelvin_offset": 273.15}


def native_config(path: Path, url: str) -> Path:
    import yaml

    vw = {"driver": "vw_logger", "address": 2, "interval": "250ms", "options": {
        "kind": "holding", "count": 1, "base": 0, "stride": 4, "map": {
            "wire": {"offset": 0, "form": "frequency", "type": "float32"},
            "therm": {"offset": 2, "type": "float32"}}}}
    gauge = {"driver": "modbus", "address": 1, "interval": "250ms", "options": {"registers": [
        {"name": "i", "address": 0, "type": "float32", "unit": "mA", "quantity": "current"}]}}
    sensors = {
        "P1": {"kind": "vw_piezometer", "calibration": {"id": "GK-1"},
               "inputs": {"frequency": "vw/ch01.freq", "thermistor": "vw/ch01.therm"},
               "reading_unit": "digits", "pressure_unit": "kPa", "method": "linear",
               "gauge_factor": -0.1795, "sign": "r1_minus_r0", "zero_reading": 9082.0,
               "temperature_correction": {"convention": "geokon", "factor": 0.1319,
                                          "zero_temperature": 22.0},
               "steinhart_hart": SH, "density": {"model": "tanaka2001"},
               "gravity": 9.80665, "tip_elevation": 40.0},
        "L1": {"kind": "water_level", "calibration": {"id": "PT-1"}, "method": "current",
               "inputs": {"current": "gauge/i"},
               "current": {"low": 0.0, "high": 10.0, "measures": "depth"},
               "sensor_elevation": 100.0}}
    cfg = {"site": "test-site", "rtu": "rtu-7",
           "mqtt": {"reconnect_min": "200ms", "reconnect_max": "1s"},
           "outbox": {"commit_interval": "200ms"},
           "buses": {"tcp": {"protocol": "modbus_tcp", "url": url.removeprefix("tcp://"),
                             "timeout": "300ms", "devices": {"vw": vw, "gauge": gauge}}},
           "sensors": sensors}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_native_rezero_is_the_conversion_with_the_new_raw_zero(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    """``daq calibrate zero`` of a VW piezometer stores its new zero reading R0 (digits)
    and T0 (°C), of a 4–20 mA loop its I0 (mA), beside the engineering before/after; every
    later reading of every output is the conversion code's value with that raw zero (to
    1e-9) and carries the new id, also after a kill -9 and restart."""
    from daq.convert import (
        digits_from_frequency,
        head_from_pressure,
        linear_pressure,
        piezometric_elevation,
        scale_4_20ma,
        steinhart_hart,
        temperature_correction,
        to_kpa,
        water_density_tanaka,
    )

    state = tmp_path / "state"

    def channel(name: str, cal_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in subscriber.readings() if r["channel"] == name and (
            cal_id is None or ((r.get("calibration") or {}).get("field") or {}).get("id")
            == cal_id)]

    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(2, 0, 2800.0, "float32")   # 7840 digits
        srv.set_value(2, 2, 3000.0, "float32")   # 25.0 °C
        srv.set_value(1, 0, 4.4, "float32")      # the loop's zero, 0.4 mA off
        cfg = native_config(tmp_path / "n.yaml", srv.url)
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: channel("P1.pressure") and channel("L1.level"), 60, "readings")
        z = daq_cal(state, "zero", "P1", "--by", "tech")
        assert z.returncode == 0, z.stderr
        vw = json.loads(z.stdout)
        assert vw["native"]["zero_reading"] == pytest.approx(7840.0, abs=1e-6)
        assert vw["native"]["reading_unit"] == "digits"
        assert vw["native"]["zero_temperature"] == pytest.approx(25.0, abs=0.01)
        assert vw["before"]["zero"]["zero_reading"] == 9082.0  # the configured R0, T0
        assert vw["before"]["zero"]["zero_temperature"] == 22.0
        assert vw["before"]["values"]["pressure"] == pytest.approx(
            -0.1795 * (7840 - 9082) + 0.1319 * (vw["native"]["zero_temperature"] - 22))
        assert vw["after"]["values"]["pressure"] == pytest.approx(0.0, abs=1e-9)
        assert vw["after"]["values"]["elevation"] == pytest.approx(40.0, abs=1e-9)
        lz = daq_cal(state, "zero", "L1", "--by", "tech")
        assert lz.returncode == 0, lz.stderr
        loop = json.loads(lz.stdout)
        assert loop["native"]["zero_ma"] == pytest.approx(4.4, abs=1e-6)
        assert loop["before"]["values"]["level"] == pytest.approx(100.25, abs=1e-5)
        assert loop["after"]["values"]["level"] == pytest.approx(100.0, abs=1e-9)
        srv.set_value(2, 0, 2750.0, "float32")  # later: another pressure and temperature
        srv.set_value(2, 2, 3100.0, "float32")
        srv.set_value(1, 0, 8.4, "float32")
        wait_for(lambda: [r for r in channel("P1.elevation", vw["id"])
                          if r["raw"]["frequency"] == 2750.0]
                 and [r for r in channel("L1.level", loop["id"])
                      if r["raw"]["current"] > 8.0], 30, "re-zeroed readings")
        d.kill()
        d2 = run_daemon(cfg, broker.url, state)
        top = max(r["seq"] for r in channel("P1.pressure"))
        wait_for(lambda: polled_by(d2, 5) and
                 len([r for r in channel("P1.pressure", vw["id"]) if r["seq"] > top]) > 2, 60,
                 "the zero still applied after the restart (new polls, not resends)")
        hist = daq_cal(state, "history", "P1")
        text = subprocess.run([sys.executable, "-m", "daq", "calibrate", "history", "P1",
                               "--state-dir", str(state)], capture_output=True, text=True,
                              timeout=60).stdout
        assert d2.stop() == 0
    assert "R0 7840 digits, T0 24.99" in text, text
    (h,) = json.loads(hist.stdout)["history"]
    assert h["id"] == vw["id"] and h["native"] == vw["native"] and h["method"] == "zero"
    r0, t0, i0 = (vw["native"]["zero_reading"], vw["native"]["zero_temperature"],
                  loop["native"]["zero_ma"])
    checked = 0
    for r in subscriber.readings():
        if r["value"] is None:  # the restart's downtime gap records: no value, no zero
            continue
        if r.get("sensor") == "P1" and r["quantity"] != "temperature" and (
                r["calibration"].get("field") or {}).get("id") == vw["id"]:
            t = steinhart_hart(r["raw"]["thermistor"], SH["a"], SH["b"], SH["c"],
                               kelvin_offset=273.15)
            p = to_kpa(linear_pressure(digits_from_frequency(r["raw"]["frequency"]), r0,
                                       -0.1795, "r1_minus_r0")
                       + temperature_correction(t, t0, 0.1319, "geokon"), "kPa")
            head = head_from_pressure(p, water_density_tanaka(t), 9.80665)
            expected = {"pore_pressure": p, "head": head,
                        "piezometric_elevation": piezometric_elevation(40.0, head)}
            assert r["value"] == pytest.approx(expected[r["quantity"]], abs=1e-9), r
            assert r["calibration"]["field"]["zero"] == vw["native"]
            checked += 1
        elif r.get("sensor") == "L1" and (r["calibration"].get("field") or {}).get(
                "id") == loop["id"]:
            level = 100.0 + scale_4_20ma(r["raw"]["current"], 0.0, 10.0, zero_ma=i0).value
            assert r["value"] == pytest.approx(level, abs=1e-9), r
            checked += 1
    assert checked > 10
    check = validator("reading.json")
    for r in subscriber.readings():
        check.validate(r)
    values = [r for r in subscriber.readings() if r["value"] is not None]
    # pressure, head, elevation, temperature: all of the sensor's outputs
    assert every_later_carries([r for r in values if r.get("sensor") == "P1"], vw["id"]) > 6
    assert every_later_carries([r for r in values if r.get("sensor") == "L1"],
                               loop["id"]) > 2
