"""Two conventions from instrument sheets: the 90° triangular weir's coefficient and
exponent (SL 551 1.4·H^2.5; vendor tables 1.38·H^2.5, 1.343·H^2.47), and level from
pressure with the transducer's linear factor (2.31 ft of water per psi) in place of ρ, g."""

from __future__ import annotations

import pytest

from daq.convert import level_from_pressure_factor, v_notch_sl_90
from daq.errors import ConfigError
from daq.model import ChannelValue
from daq.schema import load_yaml
from daq.sensors import SensorSet

from .test_sensors_level import CHANNELS, LEVEL, one, weir


@pytest.mark.parametrize(("c", "n", "h", "lps"), [
    (1.4, 2.5, 0.10, 1400 * 0.1**2.5),   # D10 (4.4272 L/s): the default, SL 551
    (1.38, 2.5, 0.10, 1380 * 0.1**2.5),
    (1.343, 2.47, 0.20, 1343 * 0.2**2.47),
])
def test_triangular_weir_coefficient_and_exponent_are_configuration(c, n, h, lps):
    assert v_notch_sl_90(h, coefficient=c, exponent=n).flow * 1000 == pytest.approx(lps)
    extra = f"    coefficient: {c}\n    exponent: {n}\n"
    out = one(weir("sl_90", extra), "wl", [ChannelValue("level_mm", 100.0 + 1000 * h, "mm")])
    assert out["W1.flow"].value == pytest.approx(lps, rel=1e-9)


def test_weir_coefficient_outside_plausible_or_on_another_formula_is_reported():
    text = weir("sl_90", "    coefficient: 14\n") + weir(
        "usbr_v90", "    exponent: 2.5\n", unit="ft").replace("sensors:\n  W1", "  W2")
    with pytest.raises(ConfigError) as info:
        SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    paths = {p.path for p in info.value.problems}
    assert {"sensors.W1.coefficient", "sensors.W2.exponent"} <= paths


def test_level_from_pressure_with_the_sheets_linear_factor():
    # 10 psi × 2.31 ft/psi = 23.1 ft = 7.04088 m above the sensor
    assert level_from_pressure_factor(10.0, 2.31, 60.0, 0.0, 0.3048) == pytest.approx(
        67.04088)
    text = LEVEL + """    method: vented
    inputs: {pressure: lvl/p}
    pressure_unit: psi
    sensor_elevation: 60.0
    head_factor: {value: 2.31, unit: ft, per: psi}
    offset: 0.01
"""
    out = one(text, "lvl", [ChannelValue("p", 10.0)])
    assert out["L1.level"].value == pytest.approx(67.05088, abs=1e-9)


def test_head_factor_and_density_together_is_an_error():
    text = LEVEL + """    method: vented
    inputs: {pressure: lvl/p}
    pressure_unit: psi
    sensor_elevation: 60.0
    head_factor: {value: 2.31, unit: ft, per: psi}
    density: {model: fixed, value: 1000}
    gravity: 9.80665
"""
    with pytest.raises(ConfigError) as info:
        SensorSet.build(load_yaml(text)["sensors"], CHANNELS)
    assert {"sensors.L1.density", "sensors.L1.gravity"} <= {p.path for p in info.value.problems}
