"""The sensor layer: VW piezometers and thermistors from YAML config, quality and config errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from daq.errors import ConfigError
from daq.model import ChannelValue, Lane, Quality, Reading
from daq.schema import load_yaml
from daq.sensors import SensorSet

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
CHANNELS = {"vw1/ch07.freq", "vw1/ch07.temp", "vw1/ch07.therm", "vw1/ch08.lc2",
            "baro/pressure", "vw1/ch09.freq"}

P07 = """
sensors:
  P07:
    kind: vw_piezometer
    calibration: {id: GK-4500S-12345, date: 2024-03-01}
    inputs: {frequency: vw1/ch07.freq, temperature: vw1/ch07.temp}
    reading_unit: digits
    pressure_unit: kPa
    method: linear
    gauge_factor: -0.1795
    sign: r1_minus_r0
    zero_reading: 9082
    temperature_correction: {convention: geokon, factor: 0.1319, zero_temperature: 22}
    density: {model: fixed, value: 1000}
    gravity: 9.80665
    tip_elevation: 40.0
    limits: {elevation: {min: 30.0, max: 90.0}}
"""


TEMPERATURE_CORRECTION = (
    "    temperature_correction: {convention: geokon, factor: 0.1319, zero_temperature: 22}\n")


def build(text: str, channels: set[str] = CHANNELS) -> SensorSet:
    return SensorSet.build(load_yaml(text)["sensors"], channels)


def by_channel(readings: list[Reading]) -> dict[str, Reading]:
    return {r.channel: r for r in readings}


def freq_for_digits(digits: float) -> float:
    return math.sqrt(digits * 1000.0)


def test_vw_piezometer_gives_pressure_head_elevation_with_calibration() -> None:
    """D3 + D5 + D7 chained: R1 6749 at 15 °C → 418.7735 − 0.9233 kPa, head and elevation."""
    sensors = build(P07)
    out = by_channel(sensors.process("vw1", [
        ChannelValue("ch07.freq", freq_for_digits(6749), "Hz"),
        ChannelValue("ch07.temp", 15.0, "degC")], T0))
    assert set(out) == {"P07.pressure", "P07.head", "P07.elevation", "P07.temperature"}
    p = 418.7735 - 0.9233
    assert out["P07.pressure"].value == pytest.approx(p, abs=0.0005)
    assert out["P07.head"].value == pytest.approx(p * 1000 / (1000 * 9.80665), abs=0.0005)
    assert out["P07.elevation"].value == pytest.approx(40.0 + p / 9.80665, abs=0.0005)
    el = out["P07.elevation"]
    assert (el.unit, el.quality, el.ts, el.lane, el.sensor, el.device) == (
        "m", Quality.GOOD, T0, Lane.RAW, "P07", "vw1")
    assert el.calibration == {"id": "GK-4500S-12345", "date": "2024-03-01"}
    assert out["P07.pressure"].unit == "kPa" and out["P07.temperature"].value == 15.0
    assert sensors.counters == {}


def test_thermistor_input_and_tanaka_density_use_the_measured_temperature() -> None:
    """A 10 kΩ 103JL1A thermistor (D8) reads 24.95 °C; ρ(24.95 °C) of Tanaka sets the head."""
    text = P07.replace("temperature: vw1/ch07.temp", "thermistor: vw1/ch07.therm").replace(
        "density: {model: fixed, value: 1000}", """density: {model: tanaka2001}
    steinhart_hart: {a: 1.12766979300187e-3, b: 2.34444184128213e-4,
                     c: 8.47692130592308e-8, d: 1.17512193579615e-11, kelvin_offset: 273.2}""")
    out = by_channel(build(text).process("vw1", [
        ChannelValue("ch07.freq", freq_for_digits(6749)),
        ChannelValue("ch07.therm", 10000.0, "Ω")], T0))
    t = out["P07.temperature"].value
    assert t is not None and t == pytest.approx(24.95, abs=0.05)
    rho = 999.974950 * (1 - (t - 3.983035) ** 2 * (t + 301.797) / (522528.9 * (t + 69.34881)))
    p = -0.1795 * (6749 - 9082) + 0.1319 * (t - 22)
    assert out["P07.pressure"].value == pytest.approx(p, abs=1e-6)
    assert out["P07.head"].value == pytest.approx(p * 1000 / (rho * 9.80665), abs=1e-6)


def test_lc2_logger_with_a_digits_sheet_gives_the_same_pressure_as_frequency() -> None:
    """An LC-2 reading (f²·10⁻⁶) is reduced with the digits sheet unchanged in meaning."""
    lc2 = P07.replace("frequency: vw1/ch07.freq", "lc2: vw1/ch08.lc2")
    by_f = by_channel(build(P07).process("vw1", [
        ChannelValue("ch07.freq", 2700.0), ChannelValue("ch07.temp", 22.0)], T0))
    by_lc2 = by_channel(build(lc2).process("vw1", [
        ChannelValue("ch08.lc2", 2700.0**2 * 1e-6), ChannelValue("ch07.temp", 22.0)], T0))
    assert by_lc2["P07.pressure"].value == pytest.approx(by_f["P07.pressure"].value, rel=1e-12)


def test_polynomial_sheet_takes_c_from_the_field_zero() -> None:
    """method polynomial without c: pressure is 0 at R0 and A·R²+B·R+C elsewhere."""
    text = P07.replace("""    method: linear
    gauge_factor: -0.1795
    sign: r1_minus_r0
""", """    method: polynomial
    a: 1.2e-8
    b: -0.18
""").replace(TEMPERATURE_CORRECTION, "")
    sensors = build(text)
    at_zero = by_channel(sensors.process("vw1", [ChannelValue("ch07.freq",
                                                              freq_for_digits(9082))], T0))
    assert at_zero["P07.pressure"].value == pytest.approx(0.0, abs=1e-9)
    out = by_channel(sensors.process("vw1", [ChannelValue("ch07.freq",
                                                          freq_for_digits(6749))], T0))
    c = -(1.2e-8 * 9082**2 - 0.18 * 9082)
    assert out["P07.pressure"].value == pytest.approx(1.2e-8 * 6749**2 - 0.18 * 6749 + c)


STANDPIPE = P07.replace(
    "inputs: {frequency: vw1/ch07.freq, temperature: vw1/ch07.temp}",
    "inputs: {frequency: vw1/ch07.freq, temperature: vw1/ch07.temp, barometer: baro/pressure}"
) + """    installation: standpipe
    barometric_correction: {unit: hPa, zero: 1000.0}
"""


def test_standpipe_barometer_is_interpolated_between_its_two_nearest_readings() -> None:
    """Barometer 1000 hPa at t, 1010 hPa at t+10 min; a poll at t+5 min subtracts 0.5 kPa."""
    sensors = build(STANDPIPE)
    assert sensors.process("baro", [ChannelValue("pressure", 1000.0, "hPa")], T0) == []
    sensors.process("baro", [ChannelValue("pressure", 1010.0, "hPa")], T0 + timedelta(minutes=10))
    values = [ChannelValue("ch07.freq", freq_for_digits(6749)), ChannelValue("ch07.temp", 22.0)]
    out = by_channel(sensors.process("vw1", values, T0 + timedelta(minutes=5)))
    assert out["P07.pressure"].value == pytest.approx(418.7735 - 0.5, abs=1e-6)
    assert out["P07.pressure"].raw == {"frequency": pytest.approx(freq_for_digits(6749)),
                                       "temperature": 22.0, "barometer": pytest.approx(1005.0)}
    later = by_channel(sensors.process("vw1", values, T0 + timedelta(minutes=30)))
    assert later["P07.pressure"].value == pytest.approx(418.7735 - 1.0, abs=1e-6)


def test_stale_barometer_makes_the_pressure_missing_and_is_counted() -> None:
    """A barometer older than input_max_age is not used: outputs missing, counter input_stale."""
    sensors = build(STANDPIPE + "    input_max_age: 20min\n")
    sensors.process("baro", [ChannelValue("pressure", 1000.0, "hPa")], T0)
    out = by_channel(sensors.process("vw1", [
        ChannelValue("ch07.freq", 2700.0), ChannelValue("ch07.temp", 22.0)],
        T0 + timedelta(hours=2)))
    assert out["P07.pressure"].value is None
    assert out["P07.pressure"].quality is Quality.MISSING
    assert out["P07.temperature"].quality is Quality.GOOD
    assert sensors.counters["input_stale"] == 1


def test_gap_records_and_impossible_inputs_give_missing_and_bad_outputs() -> None:
    """A missing poll → outputs missing; 0 Hz flagged bad → outputs bad; never an exception."""
    sensors = build(P07)
    gap = sensors.process("vw1", [ChannelValue("ch07.freq", None, quality=Quality.MISSING),
                                  ChannelValue("ch07.temp", None, quality=Quality.MISSING)], T0)
    assert len(gap) == 4 and all(r.quality is Quality.MISSING and r.value is None for r in gap)
    bad = by_channel(sensors.process("vw1", [
        ChannelValue("ch07.freq", 0.0, quality=Quality.BAD, flags=("no_signal",)),
        ChannelValue("ch07.temp", 21.0)], T0))
    assert bad["P07.pressure"].quality is Quality.BAD and bad["P07.pressure"].value is None
    assert "no_signal" in bad["P07.elevation"].flags
    assert bad["P07.temperature"].quality is Quality.GOOD
    absent = sensors.process("vw1", [], T0)  # the driver returned nothing for the channels
    assert all(r.quality is Quality.MISSING for r in absent)
    assert sensors.counters["input_missing"] == 2
    assert sensors.counters["conversion_error"] == 1
    assert sensors.process("elsewhere", [ChannelValue("x", 1.0)], T0) == []


def test_physical_limits_flag_bad_but_keep_the_value() -> None:
    """An elevation above the sensor's max is kept, quality bad, flagged and counted."""
    sensors = build(P07)
    out = by_channel(sensors.process("vw1", [ChannelValue("ch07.freq", freq_for_digits(1000)),
                                             ChannelValue("ch07.temp", 22.0)], T0))
    el = out["P07.elevation"]
    assert el.value == pytest.approx(40.0 + 0.1795 * 8082 / 9.80665, abs=1e-6)
    assert el.quality is Quality.BAD and "out_of_range" in el.flags
    assert out["P07.head"].quality is Quality.GOOD
    assert sensors.counters["out_of_range"] == 1


def test_thermistor_sensor_converts_ohms_with_the_configured_kelvin_offset() -> None:
    """kind thermistor: 32650 Ω → −0.05 °C with offset 273.2 (D8), 0.00 °C with 273.15."""
    text = """
sensors:
  T1:
    kind: thermistor
    calibration: {id: 103JL1A}
    inputs: {resistance: vw1/ch07.therm}
    steinhart_hart: {a: 1.12766979300187e-3, b: 2.34444184128213e-4,
                     c: 8.47692130592308e-8, d: 1.17512193579615e-11, kelvin_offset: 273.2}
"""
    for offset, expected in ((273.2, -0.05), (273.15, 0.0)):
        sensors = build(text.replace("273.2", str(offset)))
        (r,) = sensors.process("vw1", [ChannelValue("ch07.therm", 32650.0)], T0)
        assert (r.channel, r.unit) == ("T1.temperature", "degC")
        assert r.value == pytest.approx(expected, abs=0.001)
    (neg,) = sensors.process("vw1", [ChannelValue("ch07.therm", -5.0)], T0)
    assert neg.quality is Quality.BAD and "conversion_error" in neg.flags


BROKEN = """
sensors:
  P07:
    kind: vw_piezometer
    calibration: {id: GK-1}
    inputs: {frequency: vw1/ch07.frq, barometer: baro/pressure}
    reading_unit: digits
    pressure_unit: kPa
    method: linear
    sign: r1_minus_r0
    zero_reading: 9082
    a: 1.0e-8
    density: {model: tanaka2001}
    gravity: 9.80665
    tip_elevaton: 40.0
    limits: {elevaton: {max: 90}}
  P08:
    kind: vw_piezometr
  T1:
    kind: thermistor
    calibration: {id: X}
    inputs: {resistance: vw1/ch07.therm}
    steinhart_hart: {a: 1.0e-3, b: 2.0e-4, c: 1.0e-7, kelvin_offset: 273}
"""


def test_config_errors_are_all_listed_at_once_with_paths_lines_and_hints() -> None:
    """Unknown channel, misspelt key, missing gauge factor, sealed+barometer, unknown kind ...
    are all reported by one build, each with its dotted path."""
    with pytest.raises(ConfigError) as info:
        build(BROKEN)
    problems = {p.path: p for p in info.value.problems}
    expected = {
        "sensors.P07.inputs.frequency",      # no such channel, did you mean vw1/ch07.freq
        "sensors.P07.inputs.barometer",      # sealed piezometer with a barometer
        "sensors.P07.barometric_correction",  # barometer without its zero
        "sensors.P07.gauge_factor",          # linear without G
        "sensors.P07.a",                     # polynomial coefficient on a linear sheet
        "sensors.P07.density.temperature",   # tanaka2001 without any temperature
        "sensors.P07.tip_elevaton",          # misspelt
        "sensors.P07.limits.elevaton",       # not an output
        "sensors.P08.kind",                  # unknown kind
        "sensors.T1.steinhart_hart.kelvin_offset",  # 273 is neither 273.15 nor 273.2
    }
    assert expected <= set(problems), sorted(problems)
    assert problems["sensors.P07.inputs.frequency"].hint == "did you mean 'vw1/ch07.freq'?"
    assert problems["sensors.P07.tip_elevaton"].hint == "did you mean 'tip_elevation'?"
    assert problems["sensors.P08.kind"].hint == "did you mean 'vw_piezometer'?"
    assert problems["sensors.P07.tip_elevaton"].line == 15


def test_a_checked_config_is_not_reported_twice() -> None:
    """Entries already checked by SENSORS_FIELD are not re-reported by build (channels are)."""
    from daq.schema import Ctx
    from daq.sensors import SENSORS_FIELD

    ctx = Ctx()
    checked = SENSORS_FIELD.check(load_yaml(BROKEN)["sensors"], "sensors", 1, ctx)
    with pytest.raises(ConfigError) as info:
        SensorSet.build(checked, CHANNELS)
    paths = [p.path for p in info.value.problems]
    assert paths == ["sensors.P07.inputs.frequency"]
    assert "sensors.P07.gauge_factor" in {p.path for p in ctx.problems}


def test_every_reading_validates_against_the_published_reading_schema() -> None:
    """Good, bad, missing and out-of-range sensor readings all fit schemas/reading.json."""
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("daq").joinpath("schemas/reading.json").read_text())
    sensors = build(P07)
    polls = [
        [ChannelValue("ch07.freq", freq_for_digits(6749)), ChannelValue("ch07.temp", 15.0)],
        [ChannelValue("ch07.freq", freq_for_digits(1000)), ChannelValue("ch07.temp", 15.0)],
        [ChannelValue("ch07.freq", 0.0, quality=Quality.BAD), ChannelValue("ch07.temp", 15.0)],
        [ChannelValue("ch07.freq", 2700.0, quality=Quality.MISSING)],
    ]
    readings = [r for values in polls for r in sensors.process("vw1", values, T0)]
    assert {r.quality for r in readings} == {Quality.GOOD, Quality.BAD, Quality.MISSING}
    for r in readings:
        jsonschema.validate(r.to_payload(seq=1), schema)
    el = by_channel(readings)["P07.elevation"]
    assert el.quantity == "piezometric_elevation"
