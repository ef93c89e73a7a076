"""The sensor layer: weirs, water level (every method), rain and barometer from YAML config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daq.errors import ConfigError
from daq.model import ChannelValue, Quality, Reading
from daq.schema import load_yaml
from daq.sensors import SensorSet

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
CHANNELS = {"wl/level_mm", "wl/level_ft", "lvl/p", "lvl/t", "lvl/dist", "lvl/echo", "lvl/air",
            "lvl/enc", "lvl/ma", "baro/p", "rg/tips"}
CAL = "calibration: {id: C1, date: 2025-01-10}"


def one(text: str, device: str, values: list[ChannelValue], ts: datetime = T0,
        channels: set[str] = CHANNELS) -> dict[str, Reading]:
    sensors = SensorSet.build(load_yaml(text)["sensors"], channels)
    return {r.channel: r for r in sensors.process(device, values, ts)}


def weir(formula: str, extra: str = "", unit: str = "m", level: str = "wl/level_mm",
         level_unit: str = "mm", crest: float = 0.100) -> str:
    return f"""
sensors:
  W1:
    kind: weir
    {CAL}
    inputs: {{level: {level}}}
    formula: {formula}
    unit: {unit}
    level_unit: {level_unit}
    crest_zero: {crest}
{extra}"""


@pytest.mark.parametrize(("formula", "extra", "level_mm", "flow_lps"), [
    ("sl_90", "", 200.0, 4.4272),                                   # D10, H 0.10 m
    ("kindsvater_shen", "    angle: 90\n    ce: 0.578\n    kh: 0.00085\n    gravity: 9.81\n",
     300.0, 24.686),                                                # D11, h 0.20 m
    ("francis", "    crest_length: 0.5\n    contractions: 2\n", 200.0, 27.90),  # D12 SI
    ("usbr_v90", "", 100.0 + 152.4, 0.4463 * 28.316846592),         # D9, 0.5 ft
    ("cipolletti", "    crest_length: 0.5\n", 200.0, 1000 * 1.86 * 0.5 * 0.1**1.5),
    ("kindsvater_carter",
     "    crest_length: 0.5\n    ce: 0.602\n    kb: -0.0009\n    kh: 0.001\n    gravity: 9.81\n",
     200.0, 1000 * 0.602 * 2 / 3 * (2 * 9.81) ** 0.5 * 0.4991 * 0.101**1.5),
])
def test_weir_flow_from_a_level_in_mm_minus_the_crest_zero(formula: str, extra: str,
                                                           level_mm: float,
                                                           flow_lps: float) -> None:
    """Level (mm) − crest zero (m) is the head; each formula gives its flow in L/s."""
    out = one(weir(formula, extra), "wl", [ChannelValue("level_mm", level_mm, "mm")])
    assert out["W1.head"].value == pytest.approx(level_mm / 1000 - 0.1, abs=1e-9)
    assert out["W1.flow"].unit == "L/s"
    assert out["W1.flow"].value == pytest.approx(flow_lps, rel=1e-3)
    assert out["W1.flow"].quality is Quality.GOOD


def test_us_units_weir_gives_cfs_and_flags_heads_below_the_valid_range_suspect() -> None:
    """USBR 90° in ft: 1.00 ft → 2.490 cfs good; 0.10 ft → computed, suspect, counted."""
    text = weir("usbr_v90", unit="ft", level="wl/level_ft", level_unit="ft", crest=2.0)
    sensors = SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    good = {r.channel: r for r in sensors.process("wl", [ChannelValue("level_ft", 3.0)], T0)}
    assert good["W1.flow"].value == pytest.approx(2.490, rel=1e-3)
    assert (good["W1.flow"].unit, good["W1.head"].unit) == ("cfs", "ft")
    low = {r.channel: r for r in sensors.process("wl", [ChannelValue("level_ft", 2.1)], T0)}
    assert low["W1.flow"].value == pytest.approx(2.49 * 0.1**2.48)
    assert low["W1.flow"].quality is Quality.SUSPECT
    assert "head_out_of_range" in low["W1.flow"].flags
    dry = {r.channel: r for r in sensors.process("wl", [ChannelValue("level_ft", 1.9)], T0)}
    assert dry["W1.flow"].value == 0.0 and dry["W1.flow"].quality is Quality.SUSPECT
    assert sensors.counters["weir_head_out_of_range"] == 2


def test_weir_config_problems_name_the_missing_and_misplaced_keys() -> None:
    """francis without crest_length, SL in ft, ce without kh: each reported with its path."""
    text = weir("francis", "    angle: 90\n") + weir("sl_90", unit="ft").replace(
        "sensors:\n  W1", "  W2") + weir("kindsvater_shen", "    angle: 90\n    gravity: 9.81\n"
                                         "    ce: 0.58\n").replace("sensors:\n  W1", "  W3")
    with pytest.raises(ConfigError) as info:
        SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    paths = {p.path for p in info.value.problems}
    assert {"sensors.W1.crest_length", "sensors.W1.contractions", "sensors.W1.angle",
            "sensors.W2.unit", "sensors.W3.kh"} <= paths


LEVEL = f"""
sensors:
  L1:
    kind: water_level
    {CAL}
"""


def test_vented_pressure_level_with_tanaka_density_and_staff_offset() -> None:
    """level = sensor elevation + P/(ρ(T)·g) + offset; ρ(20 °C) = 998.2067 kg/m³."""
    p = 21.99 * 998.2067 * 9.80665 / 1000
    text = LEVEL + """    method: vented
    inputs: {pressure: lvl/p, temperature: lvl/t}
    pressure_unit: kPa
    sensor_elevation: 60.0
    density: {model: tanaka2001}
    gravity: 9.80665
    offset: 0.004
"""
    out = one(text, "lvl", [ChannelValue("p", p), ChannelValue("t", 20.0)])
    assert out["L1.level"].value == pytest.approx(81.994, abs=1e-4)
    assert out["L1.level"].calibration == {"id": "C1", "date": "2025-01-10"}


def test_unvented_level_subtracts_the_barometer_interpolated_in_time() -> None:
    """Absolute 101.3 kPa + water; barometer 1012 → 1014 hPa over 10 min, polled at +2.5 min."""
    text = LEVEL + """    method: unvented
    inputs: {pressure: lvl/p, barometer: baro/p}
    pressure_unit: kPa
    barometer_unit: hPa
    sensor_elevation: 60.0
    density: {model: fixed, value: 1000}
    gravity: 9.80665
"""
    sensors = SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    sensors.process("baro", [ChannelValue("p", 1012.0)], T0)
    sensors.process("baro", [ChannelValue("p", 1014.0)], T0 + timedelta(minutes=10))
    water = 21.99 * 1000 * 9.80665 / 1000
    (r,) = sensors.process("lvl", [ChannelValue("p", 101.25 + water)],
                           T0 + timedelta(minutes=2, seconds=30))
    assert r.value == pytest.approx(81.99, abs=1e-6)


@pytest.mark.parametrize(("body", "values", "expected"), [
    ("    method: radar\n    inputs: {distance: lvl/dist}\n    distance_unit: m\n"
     "    zero_elevation: 95.0\n", [ChannelValue("dist", 13.010)], 81.990),          # D13
    ("    method: radar\n    inputs: {distance: lvl/dist}\n    distance_unit: mm\n"
     "    zero_elevation: 95.0\n", [ChannelValue("dist", 13010.0)], 81.990),
    ("    method: ultrasonic\n    inputs: {echo_time: lvl/echo, air_temperature: lvl/air}\n"
     "    echo_time_unit: ms\n    zero_elevation: 85.0\n",
     [ChannelValue("echo", 20.0), ChannelValue("air", 20.0)], 85.0 - 343.59 * 0.010),
    ("    method: ultrasonic\n    inputs: {echo_time: lvl/echo}\n    air_temperature: 0.0\n"
     "    echo_time_unit: s\n    zero_elevation: 85.0\n",
     [ChannelValue("echo", 0.02)], 85.0 - 331.45 * 0.010),
    ("    method: encoder\n    inputs: {counts: lvl/enc}\n    encoder: {reference: 81.0, "
     "counts0: 1000, circumference: 0.5, pulses_per_rev: 100}\n",
     [ChannelValue("enc", 1198.0)], 81.99),
    ("    method: current\n    inputs: {current: lvl/ma}\n    sensor_elevation: 70.0\n"
     "    current: {low: 0.0, high: 20.0, measures: depth}\n", [ChannelValue("ma", 13.592)],
     81.99),
    ("    method: current\n    inputs: {current: lvl/ma}\n    zero_elevation: 95.0\n"
     "    current: {low: 0.0, high: 40.0, measures: distance}\n", [ChannelValue("ma", 9.204)],
     81.99),
], ids=["radar-m", "radar-mm", "ultrasonic-air-input", "ultrasonic-fixed-air", "encoder",
        "current-depth", "current-distance"])
def test_each_level_method_gives_the_site_level(body: str, values: list[ChannelValue],
                                                expected: float) -> None:
    """Radar, ultrasonic, encoder and 4–20 mA levels on the site datum (m)."""
    out = one(LEVEL + body, "lvl", values)
    assert out["L1.level"].value == pytest.approx(expected, abs=1e-6)
    assert out["L1.level"].quality is Quality.GOOD


def test_4_20ma_wire_break_and_over_range_are_bad_and_counted() -> None:
    """< 3.6 mA is a wire break, > 20.5 mA over range: value kept, quality bad, counted."""
    text = LEVEL + ("    method: current\n    inputs: {current: lvl/ma}\n"
                    "    sensor_elevation: 70.0\n"
                    "    current: {low: 0.0, high: 20.0, measures: depth}\n")
    sensors = SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    (brk,) = sensors.process("lvl", [ChannelValue("ma", 0.4)], T0)
    (over,) = sensors.process("lvl", [ChannelValue("ma", 21.0)], T0)
    (under,) = sensors.process("lvl", [ChannelValue("ma", 3.7)], T0)
    assert brk.quality is Quality.BAD and "wire_break" in brk.flags
    assert brk.value == pytest.approx(70.0 + (0.4 - 4) / 16 * 20)
    assert over.quality is Quality.BAD and "over_range" in over.flags
    assert under.quality is Quality.SUSPECT
    assert sensors.counters == {"wire_break": 1, "over_range": 1, "under_range": 1}


def test_level_config_rejects_inputs_and_keys_the_method_does_not_use() -> None:
    """radar with a pressure input and a density, ultrasonic without air temperature."""
    text = LEVEL + ("    method: radar\n    inputs: {distance: lvl/dist, pressure: lvl/p}\n"
                    "    zero_elevation: 95.0\n    density: {model: fixed, value: 1000}\n") + \
        f"""  L2:
    kind: water_level
    {CAL}
    method: ultrasonic
    inputs: {{echo_time: lvl/echo}}
    echo_time_unit: s
    zero_elevation: 85.0
"""
    with pytest.raises(ConfigError) as info:
        SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    paths = {p.path for p in info.value.problems}
    assert {"sensors.L1.inputs.pressure", "sensors.L1.density", "sensors.L1.distance_unit",
            "sensors.L2.air_temperature"} <= paths


def test_rain_passes_mm_through_or_scales_tips_and_barometer_converts_to_kpa() -> None:
    """Rain: 7 tips × 0.2 mm = 1.4 mm; barometer 1013.25 hPa = 101.325 kPa."""
    text = f"""
sensors:
  R1:
    kind: rain
    {CAL}
    inputs: {{rain: rg/tips}}
    mm_per_count: 0.2
  B1:
    kind: barometer
    {CAL}
    inputs: {{pressure: baro/p}}
    unit: hPa
"""
    sensors = SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    (rain,) = sensors.process("rg", [ChannelValue("tips", 7)], T0)
    assert (rain.channel, rain.value, rain.unit) == ("R1.rainfall", pytest.approx(1.4), "mm")
    (baro,) = sensors.process("baro", [ChannelValue("p", 1013.25)], T0)
    assert (baro.channel, baro.value, baro.unit) == ("B1.pressure", pytest.approx(101.325),
                                                     "kPa")
    (neg,) = sensors.process("rg", [ChannelValue("tips", -3)], T0)
    assert neg.quality is Quality.BAD
