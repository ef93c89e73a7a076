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
KS = {"angle": 90.0, "ce": 0.578, "kh": 0.00085, "gravity": 9.7985}  # the weir W1
ENC = {"reference": 81.0, "counts0": 1000.0, "circumference": 0.5, "pulses_per_rev": 1024.0}
# the gauge's registers (unit 1): name -> float32 address
GAUGE = {"i": 0, "lvl": 2, "dist": 4, "echo": 6, "cnt": 8, "baro": 10}


def native_config(path: Path, url: str) -> Path:
    import yaml

    vw = {"driver": "vw_logger", "address": 2, "interval": "250ms", "options": {
        "kind": "holding", "count": 1, "base": 0, "stride": 4, "map": {
            "wire": {"offset": 0, "form": "frequency", "type": "float32"},
            "therm": {"offset": 2, "type": "float32"}}}}
    gauge = {"driver": "modbus", "address": 1, "interval": "250ms", "options": {"registers": [
        {"name": name, "address": a, "type": "float32"} for name, a in GAUGE.items()]}}
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
               "sensor_elevation": 100.0},
        "W1": {"kind": "weir", "calibration": {"id": "WEIR-1"}, "inputs": {"level": "gauge/lvl"},
               "formula": "kindsvater_shen", "unit": "m", "level_unit": "mm",
               "crest_zero": 0.1032, **KS},
        "R1": {"kind": "water_level", "calibration": {"id": "RADAR-1"}, "method": "radar",
               "inputs": {"distance": "gauge/dist"}, "distance_unit": "m",
               "zero_elevation": 95.0, "offset": 0.004},
        "U1": {"kind": "water_level", "calibration": {"id": "US-1"}, "method": "ultrasonic",
               "inputs": {"echo_time": "gauge/echo"}, "echo_time_unit": "ms",
               "zero_elevation": 20.0, "air_temperature": 15.0},
        "E1": {"kind": "water_level", "calibration": {"id": "ENC-1"}, "method": "encoder",
               "inputs": {"counts": "gauge/cnt"}, "encoder": ENC},
        "B1": {"kind": "barometer", "calibration": {"id": "BARO-1"},
               "inputs": {"pressure": "gauge/baro"}, "unit": "hPa"}}
    cfg = {"site": "test-site", "rtu": "rtu-7",
           "mqtt": {"reconnect_min": "200ms", "reconnect_max": "1s"},
           "outbox": {"commit_interval": "200ms"},
           "buses": {"tcp": {"protocol": "modbus_tcp", "url": url.removeprefix("tcp://"),
                             "timeout": "300ms", "devices": {"vw": vw, "gauge": gauge}}},
           "sensors": sensors}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def converted(r: dict[str, Any], zero: dict[str, Any]) -> float:
    """What ``daq.convert`` makes of reading ``r``'s raw inputs with the native ``zero``."""
    from daq.convert import (
        digits_from_frequency,
        head_from_pressure,
        level_from_distance,
        level_from_encoder,
        linear_pressure,
        piezometric_elevation,
        scale_4_20ma,
        steinhart_hart,
        temperature_correction,
        to_kpa,
        ultrasonic_distance,
        v_notch_kindsvater_shen,
        water_density_tanaka,
    )

    raw, sensor = r["raw"], r["sensor"]
    if sensor == "P1":
        t = steinhart_hart(raw["thermistor"], SH["a"], SH["b"], SH["c"], kelvin_offset=273.15)
        p = to_kpa(linear_pressure(digits_from_frequency(raw["frequency"]),
                                   zero["zero_reading"], -0.1795, "r1_minus_r0")
                   + temperature_correction(t, zero["zero_temperature"], 0.1319, "geokon"),
                   "kPa")
        head = head_from_pressure(p, water_density_tanaka(t), 9.80665)
        return {"pore_pressure": p, "head": head,
                "piezometric_elevation": piezometric_elevation(40.0, head)}[r["quantity"]]
    if sensor == "L1":
        return 100.0 + scale_4_20ma(raw["current"], 0.0, 10.0, zero_ma=zero["zero_ma"]).value
    if sensor == "W1":
        head = raw["level"] * 0.001 - zero["crest_zero"]
        if r["quantity"] == "weir_head":
            return head
        return 1000.0 * v_notch_kindsvater_shen(head, KS["angle"], gravity=KS["gravity"],
                                                ce=KS["ce"], kh=KS["kh"]).flow
    if sensor == "R1":
        return level_from_distance(zero["zero_elevation"], raw["distance"], 0.004)
    if sensor == "U1":
        return level_from_distance(zero["zero_elevation"],
                                   ultrasonic_distance(raw["echo_time"] * 1e-3, 15.0))
    assert sensor == "E1", r
    return level_from_encoder(raw["counts"], zero["counts0"], ENC["reference"],
                              ENC["circumference"], ENC["pulses_per_rev"])


def test_native_rezero_is_the_conversion_with_the_new_raw_zero(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    """``daq calibrate zero`` of a sensor with a zero of its own stores that zero in its
    native unit (a VW piezometer's R0 in digits and T0 in °C, a 4–20 mA loop's I0 in mA, a
    weir's crest reading, a radar and an ultrasonic gauge's zero elevation, an encoder's
    counts0) beside the engineering before/after; after a kill -9 and restart, ``zero
    --reference V`` solves that zero so the output reads V. Every later reading of every
    output is the conversion code's value with the zero it carries (to 1e-9) and carries
    the newest id. A barometer, with no zero of its own, gets a linear offset and the
    command says so."""
    state = tmp_path / "state"

    def channel(name: str, cal_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in subscriber.readings() if r["channel"] == name and (
            cal_id is None or ((r.get("calibration") or {}).get("field") or {}).get("id")
            == cal_id)]

    def zero(*args: str) -> dict[str, Any]:
        z = daq_cal(state, "zero", *args, "--by", "tech")
        assert z.returncode == 0, z.stderr
        out: dict[str, Any] = json.loads(z.stdout)
        return out

    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(2, 0, 2800.0, "float32")   # 7840 digits
        srv.set_value(2, 2, 3000.0, "float32")   # 25.0 °C
        gauge = {"i": 4.4,            # the loop's zero, 0.4 mA off
                 "lvl": 180.0,        # mm in the weir box: water at the crest
                 "dist": 13.01, "echo": 30.0, "cnt": 5000.0, "baro": 1013.0}
        for name, v in gauge.items():
            srv.set_value(1, GAUGE[name], v, "float32")
        cfg = native_config(tmp_path / "n.yaml", srv.url)
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: channel("P1.pressure") and channel("B1.pressure"), 60, "readings")
        vw = zero("P1")
        assert vw["native"]["zero_reading"] == pytest.approx(7840.0, abs=1e-6)
        assert vw["native"]["reading_unit"] == "digits"
        assert vw["native"]["zero_temperature"] == pytest.approx(25.0, abs=0.01)
        assert vw["before"]["zero"]["zero_reading"] == 9082.0  # the configured R0, T0
        assert vw["before"]["zero"]["zero_temperature"] == 22.0
        assert vw["before"]["values"]["pressure"] == pytest.approx(
            -0.1795 * (7840 - 9082) + 0.1319 * (vw["native"]["zero_temperature"] - 22))
        assert vw["after"]["values"]["pressure"] == pytest.approx(0.0, abs=1e-9)
        assert vw["after"]["values"]["elevation"] == pytest.approx(40.0, abs=1e-9)
        loop = zero("L1")
        assert loop["native"]["zero_ma"] == pytest.approx(4.4, abs=1e-6)
        assert loop["before"]["values"]["level"] == pytest.approx(100.25, abs=1e-5)
        assert loop["after"]["values"]["level"] == pytest.approx(100.0, abs=1e-9)
        weir, radar, sonic, enc = zero("W1"), zero("R1"), zero("U1"), zero("E1")
        assert weir["native"] == {"crest_zero": pytest.approx(0.18, abs=1e-9), "unit": "m"}
        assert weir["before"]["zero"]["crest_zero"] == 0.1032
        assert weir["before"]["values"]["head"] == pytest.approx(0.0768, abs=1e-6)
        assert weir["after"]["values"]["head"] == pytest.approx(0.0, abs=1e-9)
        assert radar["before"]["zero"] == {"zero_elevation": 95.0}
        assert radar["native"]["zero_elevation"] == pytest.approx(13.006, abs=1e-6)
        assert radar["after"]["values"]["level"] == pytest.approx(0.0, abs=1e-9)
        assert sonic["after"]["values"]["level"] == pytest.approx(0.0, abs=1e-9)
        assert sonic["native"]["zero_elevation"] == pytest.approx(
            (331.45 + 0.607 * 15.0) * 0.030 / 2)
        assert enc["native"] == {"counts0": 5000.0}  # the level reads the reference now
        assert enc["after"]["values"]["level"] == pytest.approx(81.0, abs=1e-9)
        assert "re-zeroed in its own unit (crest 0.18 m): head reads 0 m now" in weir["note"]
        baro = subprocess.run([sys.executable, "-m", "daq", "calibrate", "zero", "B1",
                               "--reference", "101.3", "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=60)
        assert baro.returncode == 0, baro.stderr
        assert "B1 (barometer) has no zero of its own: re-zeroed as a linear offset on " \
               "barometric_pressure" in baro.stdout, baro.stdout
        first = {"P1": vw, "L1": loop, "W1": weir, "R1": radar, "U1": sonic, "E1": enc}
        srv.set_value(2, 0, 2750.0, "float32")  # later: other values on every sensor
        srv.set_value(2, 2, 3100.0, "float32")
        later = {"i": 8.4, "lvl": 250.0, "dist": 12.5, "echo": 25.0, "cnt": 6000.0}
        for name, v in later.items():
            srv.set_value(1, GAUGE[name], v, "float32")
        wait_for(lambda: [r for r in channel("P1.elevation", vw["id"])
                          if r["raw"]["frequency"] == 2750.0]
                 and [r for r in channel("L1.level", loop["id"])
                      if r["raw"]["current"] > 8.0]
                 and [r for r in channel("E1.level", enc["id"])
                      if r["raw"]["counts"] == 6000.0], 30, "re-zeroed readings")
        d.kill()
        d2 = run_daemon(cfg, broker.url, state)
        top = max(r["seq"] for r in channel("P1.pressure"))
        wait_for(lambda: polled_by(d2, 5) and
                 len([r for r in channel("P1.pressure", vw["id"]) if r["seq"] > top]) > 2, 60,
                 "the zero still applied after the restart (new polls, not resends)")
        # with a reference: the zero solved so that the output reads it now
        second = {"P1": zero("P1", "--quantity", "piezometric_elevation", "--reference",
                             "81.92"),
                  "L1": zero("L1", "--reference", "101.5"),
                  "W1": zero("W1", "--quantity", "seepage_flow", "--reference", "2.0"),
                  "R1": zero("R1", "--reference", "81.994"),
                  "U1": zero("U1", "--reference", "14.0"),
                  "E1": zero("E1", "--reference", "82.5")}
        wait_for(lambda: all(channel(f"{sid}.{'flow' if sid == 'W1' else 'level'}"
                                     if sid != "P1" else "P1.elevation", z["id"])
                             for sid, z in second.items()), 30, "readings with the references")
        hist = daq_cal(state, "history", "P1")
        text = subprocess.run([sys.executable, "-m", "daq", "calibrate", "history", "P1",
                               "--state-dir", str(state)], capture_output=True, text=True,
                              timeout=60).stdout
        assert d2.stop() == 0
    wanted = {"P1": ("elevation", 81.92), "L1": ("level", 101.5), "W1": ("flow", 2.0),
              "R1": ("level", 81.994), "U1": ("level", 14.0), "E1": ("level", 82.5)}
    for sid, (output, v) in wanted.items():
        z = second[sid]
        assert z["after"]["quantity"] == output and z["after"]["reference"] == v
        assert z["after"]["value"] == pytest.approx(v, abs=1e-9), (sid, z)
        assert z["before"]["id"] == first[sid]["id"]
    from daq.convert import steinhart_hart

    assert second["P1"]["native"]["zero_temperature"] == pytest.approx(  # T0 taken again
        steinhart_hart(3100.0, SH["a"], SH["b"], SH["c"], kelvin_offset=273.15), abs=1e-6)
    assert "R0 7840 digits, T0 24.99" in text, text
    h1, h2 = json.loads(hist.stdout)["history"]
    assert h1["id"] == vw["id"] and h1["native"] == vw["native"] and h1["method"] == "zero"
    assert h2["id"] == second["P1"]["id"] and h2["native"] == second["P1"]["native"]
    zeros = {z["id"]: z["native"] for z in [*first.values(), *second.values()]}
    checked: dict[str, int] = {}
    for r in subscriber.readings():
        field = (r.get("calibration") or {}).get("field") or {}
        if r["value"] is None or field.get("id") not in zeros or r["quantity"] == "temperature":
            continue  # the restart's downtime gap records: no value, no zero
        assert field["zero"] == zeros[field["id"]]
        assert r["value"] == pytest.approx(converted(r, field["zero"]), abs=1e-9), r
        checked[r["sensor"]] = checked.get(r["sensor"], 0) + 1
    assert checked.keys() == first.keys() and min(checked.values()) > 2, checked
    check = validator("reading.json")
    for r in subscriber.readings():
        check.validate(r)
    # every later reading carries the newest id: per channel in seq order, never back
    for sid in first:
        order = [None, first[sid]["id"], second[sid]["id"]]
        by: dict[str, list[int]] = {}
        for r in sorted(subscriber.readings(), key=lambda r: r["seq"]):
            if r.get("sensor") == sid and r["value"] is not None:
                by.setdefault(r["channel"], []).append(order.index(
                    ((r.get("calibration") or {}).get("field") or {}).get("id")))
        for ch, ranks in by.items():
            assert ranks == sorted(ranks) and ranks[-1] == 2, (ch, ranks)
