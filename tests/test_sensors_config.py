"""The sensor layer inside a whole configuration: the lead's loader, the real vw_logger driver."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daq import config
from daq.errors import ConfigError
from daq.model import ChannelValue, Quality
from daq.sensors import SensorSet

HEAD = """
site: test
rtu: rtu-01
buses:
  rs485_1:
    protocol: modbus_rtu
    url: loop://
    devices:
      vw1:
        driver: vw_logger
        address: 2
        interval: 10s
        options:
          kind: holding
          count: 9
          base: 0
          stride: 8
          map:
            wire: {offset: 0, form: frequency, type: float32}
            therm: {offset: 2, type: float32}
sensors:
  P07:
    kind: vw_piezometer
    calibration: {id: GK-4500S-17C2231, date: 2024-05-01}
    inputs: {frequency: vw1/ch07.freq, thermistor: vw1/ch07.therm}
    reading_unit: digits
    pressure_unit: kPa
    method: linear
    gauge_factor: -0.1795
    sign: r1_minus_r0
    zero_reading: 9082
    steinhart_hart: {a: 1.4051e-3, b: 2.369e-4, c: 1.019e-7, kelvin_offset: 273.15}
    density: {model: tanaka2001}
    gravity: 9.7985
    tip_elevation: 40.0
"""


def test_a_whole_config_builds_sensors_fed_by_the_vw_logger_channels() -> None:
    """config.loads accepts the sensors; SensorSet.build on its checked sensors works and
    turns the driver's channel values into readings."""
    cfg = config.loads(HEAD)
    channels = {"vw1/ch07.freq", "vw1/ch07.therm"}
    sensors = SensorSet.build(dict(cfg.sensors), channels)
    out = {r.channel: r for r in sensors.process("vw1", [
        ChannelValue("ch07.freq", (6749 * 1000) ** 0.5, "Hz"),
        ChannelValue("ch07.therm", 3000.0, "ohm")], datetime(2026, 11, 23, tzinfo=UTC))}
    assert out["P07.temperature"].value == pytest.approx(25.0, abs=0.1)  # Geokon 3 kΩ
    assert out["P07.pressure"].value == pytest.approx(418.7735, abs=1e-3)
    assert out["P07.elevation"].quality is Quality.GOOD


def test_sensor_problems_come_out_of_config_check_once_each_with_lines() -> None:
    """A misspelt channel and a missing gauge factor: each reported once, with path (and a
    line for the schema problem)."""
    text = HEAD.replace("vw1/ch07.freq", "vw1/ch7.freq").replace("    gauge_factor: -0.1795\n",
                                                                "")
    with pytest.raises(ConfigError) as info:
        config.loads(text)
    paths = [p.path for p in info.value.problems]
    assert paths.count("sensors.P07.inputs.frequency") == 1
    assert paths.count("sensors.P07.gauge_factor") == 1
    gf = next(p for p in info.value.problems if p.path == "sensors.P07.gauge_factor")
    assert gf.line is not None
    freq = next(p for p in info.value.problems if p.path == "sensors.P07.inputs.frequency")
    assert freq.hint == "did you mean 'vw1/ch07.freq'?"


def test_the_documented_sensors_example_is_valid() -> None:
    """The YAML example in docs/conversions.md builds (a doc that drifts fails here)."""
    import re
    from pathlib import Path

    from daq.schema import load_yaml

    doc = (Path(__file__).parent.parent / "docs" / "conversions.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "sensors:" in b)
    sensors_cfg = load_yaml(block)["sensors"]
    channels = {"vw1/ch07.freq", "vw1/ch07.therm", "weirbox/level", "lvl/pressure",
                "baro/pressure"}
    sensors = SensorSet.build(sensors_cfg, channels)
    assert sensors.ids == ["P07", "W1", "L1"]
