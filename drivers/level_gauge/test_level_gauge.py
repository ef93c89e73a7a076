"""The level-gauge driver (4–20 mA, radar, ultrasonic, encoder) against a real TCP server."""

from __future__ import annotations

import math

import pytest

from daq.errors import ConfigError
from daq.model import Quality
from daq.testing import build_driver
from daq_drivers.level_gauge import LevelGaugeDriver, speed_of_sound


def _analog(encoding: str = "ua", **extra: object) -> dict:
    return {"sensor": "analog", "kind": "input", "inputs": [
        {"name": "head", "address": 0, "encoding": encoding, "low": 0.0, "high": 500.0,
         "unit": "mm", "quantity": "weir_head", **extra}]}


@pytest.mark.parametrize(("ua", "mm"), [(4000, 0.0), (12000, 250.0), (20000, 500.0),
                                        (4032, 1.0), (3700, -9.375), (20400, 512.5)])
def test_microamps_scale_linearly_onto_the_engineering_range(tcp_server, tcp_client, ua, mm):
    tcp_server.set_value(1, 0, ua, "uint16", kind="input")
    (v,) = build_driver(LevelGaugeDriver, _analog()).poll(tcp_client)
    assert v.value == pytest.approx(mm, abs=1e-9)
    assert v.quality is Quality.GOOD
    assert v.raw is not None and v.raw["mA"] == pytest.approx(ua / 1000)


def test_float_milliamps_are_accepted(tcp_server, tcp_client):
    tcp_server.set_value(1, 0, 8.0, "float32", kind="input")
    (v,) = build_driver(LevelGaugeDriver, _analog("ma_float", type="float32")).poll(tcp_client)
    assert v.value == pytest.approx(125.0, abs=1e-4)


def test_scaled_counts_map_from_raw_4ma_to_raw_20ma(tcp_server, tcp_client):
    tcp_server.set_value(1, 0, 16589, "uint16", kind="input")  # midway 5530 … 27648
    opts = _analog("scaled", raw_4ma=5530, raw_20ma=27648)
    (v,) = build_driver(LevelGaugeDriver, opts).poll(tcp_client)
    assert v.value == pytest.approx(250.0, abs=0.02)


@pytest.mark.parametrize(("ua", "flag", "value"), [(3500, "wire_break", None),
                                                   (0, "wire_break", None),
                                                   (21000, "over_range", 531.25)])
def test_loop_current_outside_namur_limits_is_bad(tcp_server, tcp_client, ua, flag, value):
    tcp_server.set_value(1, 0, ua, "uint16", kind="input")
    (v,) = build_driver(LevelGaugeDriver, _analog()).poll(tcp_client)
    assert (v.quality, v.flags, v.value) == (Quality.BAD, (flag,), value)


def test_radar_distance_gives_level_below_sensor_zero(tcp_server, tcp_client):
    tcp_server.set_value(1, 10, 13010, "uint32", kind="input")  # mm
    opts = {"sensor": "radar", "kind": "input", "zero_elevation": 95.0,
            "distance": {"address": 10, "type": "uint32", "scale": 0.001}}
    out = {v.channel: v for v in build_driver(LevelGaugeDriver, opts).poll(tcp_client)}
    assert out["distance"].value == pytest.approx(13.010)
    assert out["level"].value == pytest.approx(81.990, abs=1e-9)  # DOMAIN D13


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_radar_without_echo_is_bad_no_echo(tcp_server, tcp_client, bad):
    tcp_server.set_value(1, 0, bad, "float32")
    opts = {"sensor": "radar", "zero_elevation": 95.0, "distance": {"address": 0}}
    out = {v.channel: v for v in build_driver(LevelGaugeDriver, opts).poll(tcp_client)}
    assert out["distance"].flags == out["level"].flags == ("no_echo",)
    assert out["level"].value is None


def test_ultrasonic_time_of_flight_uses_speed_of_sound_at_air_temperature(tcp_server,
                                                                          tcp_client):
    t_air, dist = 25.0, 13.010
    tof_us = 2 * dist / speed_of_sound(t_air) * 1e6
    tcp_server.set_value(1, 0, t_air, "float32")
    tcp_server.set_value(1, 2, tof_us, "float32")
    opts = {"sensor": "ultrasonic", "zero_elevation": 95.0,
            "air_temperature": {"address": 0},
            "time_of_flight": {"address": 2, "type": "float32", "scale": 1e-6}}
    out = {v.channel: v for v in build_driver(LevelGaugeDriver, opts).poll(tcp_client)}
    assert out["air_temperature"].value == pytest.approx(25.0)
    assert out["distance"].value == pytest.approx(dist, abs=1e-5)
    assert out["level"].value == pytest.approx(81.990, abs=1e-5)
    assert speed_of_sound(20.0) == pytest.approx(343.59)


@pytest.mark.parametrize(("dtype", "counts"), [("int32", -2048), ("uint32", 4_000_000_000)])
def test_shaft_encoder_counts_give_level(tcp_server, tcp_client, dtype, counts):
    tcp_server.set_value(1, 0, counts, dtype, "little")
    opts = {"sensor": "encoder", "counts": {"address": 0, "type": dtype,
                                            "word_order": "little"},
            "reference": 81.0, "counts0": 0, "circumference": 0.5, "pulses_per_rev": 1024}
    out = {v.channel: v for v in build_driver(LevelGaugeDriver, opts).poll(tcp_client)}
    assert out["counts"].value == counts
    assert out["level"].value == pytest.approx(81.0 + counts * 0.5 / 1024)


def test_missing_sensor_registers_are_config_errors():
    with pytest.raises(ConfigError) as err:
        build_driver(LevelGaugeDriver, {"sensor": "encoder", "reference": 1.0})
    assert {p.path for p in err.value.problems} == {"counts", "reference"}


def test_scaled_encoding_without_raw_span_is_a_config_error():
    with pytest.raises(ConfigError, match="raw_4ma"):
        build_driver(LevelGaugeDriver, _analog("scaled"))


def test_sample_yaml_is_valid_and_builds(sample_driver):
    drv = sample_driver(LevelGaugeDriver, "level_gauge")
    assert [c.name for c in drv.channels] == ["W1.head", "W2.head", "W3.head"]
