"""Issue 3, end to end: raw sensor signals over Modbus become engineering values on MQTT.

Both tests run the daemon as its own process (``python -m daq run``) with the real drivers
and sensor layer, publishing to a real mosquitto:

* the simulated VW loggers of ``sim://`` serve frequencies and digits; the published
  piezometric elevations must equal the reservoir model's truth within 1 mm. The daemon's
  clock runs free: the truth is recomputed in this process from (seed, the reading's
  measurement second), which is what the simulator served (it samples the model at
  floor(t)); piezometric elevations move by µm per second, so a poll that crosses a
  second boundary stays far inside 1 mm;
* a pymodbus TCP server whose registers hold bad sensor data (NaN, open-circuit
  thermistor, 0 Hz, 4-20 mA wire break, counter rollover and jump): each becomes a flagged
  reading and a counted event in ``status.json``, the daemon keeps running and the good
  channels keep arriving.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.model import parse_ts
from daq.sim import Reservoir
from daq.testing import ModbusTestServer

from .conftest import REPO, Broker, Subscriber, validator, wait_for

pytestmark = pytest.mark.slow

SEED = 7


def vw_config(path: Path) -> Path:
    """The demo's two VW loggers and its 17 piezometer sensors (same calibrations), alone
    on a private sim:// line (no dropouts, no spikes) polled every second."""
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    devices = demo["buses"]["rs485_sim"]["devices"]
    cfg = {
        "site": "e2e", "rtu": "rtu-vw",
        "mqtt": {"reconnect_min": "200ms", "reconnect_max": "1s"},
        "outbox": {"commit_interval": "200ms"},
        "buses": {"sim": {
            "protocol": "modbus_rtu", "url": f"sim://e2e-vw?seed={SEED}&units=2,3",
            "timeout": "200ms",
            "devices": {name: {**devices[name], "interval": "1s"} for name in ("vw_a", "vw_b")},
        }},
        "sensors": {k: v for k, v in demo["sensors"].items() if v["kind"] == "vw_piezometer"},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_piezometric_elevations_equal_the_truth_within_1mm(
        broker: Broker, subscriber: Subscriber, run_daemon: Any, tmp_path: Path) -> None:
    """Every published elevation of P01-P17 (linear and polynomial sheets; frequencies
    from one logger, digits from the other) equals the model's truth at its measurement
    second within 1 mm, with quality good and the sensor's calibration id."""
    d = run_daemon(vw_config(tmp_path / "vw.yaml"), broker.url)
    pids = [f"P{n:02d}" for n in range(1, 18)]

    def elevations() -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in subscriber.readings():
            if r["channel"].endswith(".elevation"):
                out[r["sensor"]].append(r)
        return out

    wait_for(lambda: all(len(elevations()[p]) >= 3 for p in pids), 30,
             "three elevations of every piezometer")
    assert d.stop() == 0
    model = Reservoir(SEED)
    reading_v = validator("reading.json")
    worst = 0.0
    for pid, rs in elevations().items():
        for r in rs:
            reading_v.validate(r)
            assert r["quality"] == "good" and r.get("flags", []) == [], r
            assert r["unit"] == "m" and r["quantity"] == "piezometric_elevation"
            assert r["calibration"]["id"] == f"SIM-VW-{pid}"
            t = parse_ts(r["ts"]).timestamp()
            truth = model.truth(math.floor(t)).piezometers[pid]
            err = abs(r["value"] - truth.elevation)
            worst = max(worst, err)
            assert err <= 0.001, f"{pid} at {r['ts']}: {r['value']} vs {truth.elevation}"
    assert worst <= 0.001
    print(f"worst |elevation − truth| over {sum(map(len, elevations().values()))} "
          f"readings: {worst * 1000:.4f} mm")


# ---- bad sensor data -----------------------------------------------------------------------

VW_UNIT, ANALOG_UNIT, RAIN_UNIT = 2, 4, 5


def bad_data_config(path: Path, url: str) -> Path:
    vw = {"driver": "vw_logger", "address": VW_UNIT, "interval": "1s", "options": {
        "kind": "holding", "count": 4, "base": 0, "stride": 8, "map": {
            "wire": {"offset": 0, "form": "frequency", "type": "float32"},
            "therm": {"offset": 2, "type": "float32"},
            "amplitude": {"offset": 4, "type": "float32", "min": 0.2},
            "snr": {"offset": 6, "type": "float32", "min": 20.0}}}}
    analog = {"driver": "level_gauge", "address": ANALOG_UNIT, "interval": "1s", "options": {
        "sensor": "analog", "kind": "input", "inputs": [
            {"name": f"W{i}.head", "address": i - 1, "encoding": "ua", "low": 0.0,
             "high": 500.0, "unit": "mm", "quantity": "weir_head"} for i in (1, 2)]}}
    rain = {"driver": "rain_gauge", "address": RAIN_UNIT, "interval": "1s", "options": {
        "counter": {"address": 0, "kind": "input", "type": "uint16"},
        "mm_per_tip": 0.2, "max_tips_per_poll": 1000}}
    piezo = {"kind": "vw_piezometer", "reading_unit": "digits", "pressure_unit": "kPa",
             "method": "linear", "gauge_factor": -0.18, "sign": "r1_minus_r0",
             "zero_reading": 9000.0,
             "steinhart_hart": {"a": 1.4051e-3, "b": 2.369e-4, "c": 1.019e-7,
                                "kelvin_offset": 273.15},
             "density": {"model": "fixed", "value": 1000.0}, "gravity": 9.80665,
             "tip_elevation": 40.0}
    sensors: dict[str, Any] = {
        f"P{ch}": {**piezo, "calibration": {"id": f"TEST-P{ch}"},
                   "inputs": {"frequency": f"vw/ch0{ch}.freq", "thermistor": f"vw/ch0{ch}.therm"}}
        for ch in (1, 2, 3, 4)}
    for i in (1, 2):
        sensors[f"W{i}"] = {"kind": "weir", "calibration": {"id": f"TEST-W{i}"},
                            "inputs": {"level": f"weirs/W{i}.head"}, "formula": "sl_90",
                            "unit": "m", "level_unit": "mm", "crest_zero": 0.0}
    sensors["RAIN"] = {"kind": "rain", "calibration": {"id": "TEST-RAIN"},
                       "inputs": {"rain": "rain/rain_interval"}}
    cfg = {"site": "e2e", "rtu": "rtu-bad",
           "mqtt": {"reconnect_min": "200ms", "reconnect_max": "1s"},
           "outbox": {"commit_interval": "200ms"},
           "buses": {"tcp": {"protocol": "modbus_tcp", "url": url.removeprefix("tcp://"),
                             "timeout": "300ms",
                             "devices": {"vw": vw, "weirs": analog, "rain": rain}}},
           "sensors": sensors}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def set_channel(srv: ModbusTestServer, ch: int, freq: float, ohm: float) -> None:
    base = 8 * (ch - 1)
    for offset, value in ((0, freq), (2, ohm), (4, 1.0), (6, 40.0)):
        srv.set_value(VW_UNIT, base + offset, value, "float32")


def test_bad_sensor_data_is_flagged_counted_and_never_fatal(
        broker: Broker, subscriber: Subscriber, run_daemon: Any, tmp_path: Path) -> None:
    """NaN frequency, open-circuit thermistor, 0 Hz, a 4-20 mA wire break, a counter
    rollover and an implausible counter jump each arrive as flagged readings (bad or
    suspect; the rollover good with its flag and the right tip count), the sensor
    counters in status.json count them, and the daemon keeps publishing the good
    channels."""
    with ModbusTestServer.tcp(units=(VW_UNIT, ANALOG_UNIT, RAIN_UNIT)) as srv:
        set_channel(srv, 1, 2800.0, 3000.0)          # good
        set_channel(srv, 2, math.nan, 3000.0)        # NaN frequency
        set_channel(srv, 3, 2800.0, math.inf)        # open-circuit thermistor
        set_channel(srv, 4, 0.0, 3000.0)             # 0 Hz: no signal
        srv.set_value(ANALOG_UNIT, 0, 6000, kind="input")   # 6 mA: 62.5 mm, good
        srv.set_value(ANALOG_UNIT, 1, 2000, kind="input")   # 2 mA: wire break
        srv.set_value(RAIN_UNIT, 0, 65530, kind="input")    # near the uint16 top
        d = run_daemon(bad_data_config(tmp_path / "bad.yaml", srv.url), broker.url)

        def latest(channel: str, flag: str | None = None) -> dict[str, Any] | None:
            rs = [r for r in subscriber.readings() if r["channel"] == channel
                  and (flag is None or flag in r.get("flags", []))]
            return rs[-1] if rs else None

        wait_for(lambda: latest("RAIN.rainfall", "baseline"), 20, "the rain baseline")
        srv.set_value(RAIN_UNIT, 0, 4, kind="input")        # wrapped: 65530 → 4 is 10 tips
        wait_for(lambda: latest("RAIN.rainfall", "rollover"), 20, "the rollover")
        srv.set_value(RAIN_UNIT, 0, 3004, kind="input")     # +3000 tips in a second
        wait_for(lambda: latest("RAIN.rainfall", "implausible"), 20, "the jump")
        wait_for(lambda: all(latest(f"{s}.flow") for s in ("W1", "W2")) and
                 all(latest(f"P{c}.elevation") for c in (1, 2, 3, 4)), 20, "every sensor")
        good_before = len([r for r in subscriber.readings() if r["channel"] == "P1.elevation"])
        status = wait_for(lambda: (s := d.status()) and s["sensors"].get("input_bad", 0) >= 4
                          and s["sensors"].get("conversion_error", 0) >= 1 and s, 10,
                          "sensor counters in status.json")
        # repaired in the field: the NaN channel answers again and comes back good
        set_channel(srv, 2, 2750.0, 3000.0)
        wait_for(lambda: (r := latest("P2.elevation")) and r["quality"] == "good", 20,
                 "P2 to recover")
        wait_for(lambda: len([r for r in subscriber.readings()
                              if r["channel"] == "P1.elevation"]) >= good_before + 2, 20,
                 "good channels to keep arriving")
        assert d.proc.poll() is None, "the daemon died"
        assert d.stop() == 0

    reading_v = validator("reading.json")
    for r in subscriber.readings():
        reading_v.validate(r)

    def first(channel: str, flag: str) -> dict[str, Any]:
        return next(r for r in subscriber.readings()
                    if r["channel"] == channel and flag in r.get("flags", []))

    # good channel: 2800 Hz → 7840 digits → −0.18·(7840 − 9000) = 208.8 kPa
    p1 = next(r for r in subscriber.readings() if r["channel"] == "P1.pressure")
    assert p1["quality"] == "good" and p1["value"] == pytest.approx(208.8, abs=1e-3)
    # NaN frequency: the driver's channel is bad with no value, so is every output
    nan_freq = first("vw/ch02.freq", "no_signal")
    assert nan_freq["quality"] == "bad" and nan_freq["value"] is None
    p2 = first("P2.elevation", "frequency_bad")
    assert p2["quality"] == "bad" and p2["value"] is None
    # open-circuit thermistor: temperature bad, pressure unaffected (no K correction)
    assert first("vw/ch03.therm", "open_circuit")["quality"] == "bad"
    t3 = first("P3.temperature", "open_circuit")
    assert t3["quality"] == "bad" and t3["value"] is None
    p3 = next(r for r in subscriber.readings() if r["channel"] == "P3.pressure")
    assert p3["quality"] == "good" and p3["value"] == pytest.approx(208.8, abs=1e-3)
    # 0 Hz: bad, and the conversion refuses it rather than inventing a pressure
    assert first("vw/ch04.freq", "no_signal")["value"] == 0.0
    p4 = first("P4.pressure", "conversion_error")
    assert p4["quality"] == "bad" and p4["value"] is None
    assert "no_signal" in p4.get("flags", [])
    # 4-20 mA wire break: the weir head and flow are bad; the good loop is untouched
    w2 = first("W2.flow", "wire_break")
    assert w2["quality"] == "bad" and w2["value"] is None
    w1 = next(r for r in subscriber.readings() if r["channel"] == "W1.head")
    assert w1["quality"] == "good" and w1["value"] == pytest.approx(0.0625, abs=1e-9)
    # counter: the rollover is accounted for (10 tips = 2.0 mm), the jump is suspect
    roll = first("RAIN.rainfall", "rollover")
    assert roll["quality"] == "good" and roll["value"] == pytest.approx(2.0, abs=1e-9)
    jump = first("RAIN.rainfall", "implausible")
    assert jump["quality"] == "suspect" and jump["value"] == pytest.approx(600.0, abs=1e-6)
    # counted: every bad input and every refused conversion
    counters = status["sensors"]
    assert counters["input_bad"] >= 4, counters        # P2, P3, P4, W2 at least once each
    assert counters["conversion_error"] >= 1, counters  # P4
    assert "sensor_failed" not in counters
    rain_counts = next(iter(status["driver_counters"].values()))
    assert rain_counts["rollovers"] == 1, status["driver_counters"]
    print(f"sensor counters: {counters}")
