"""The zero a field re-zero solves (``daq/sensors/zero.py``), in process: whatever the
kind, the sensor's conversion with the new zero gives the reference to 1e-9, including
the cases that are not affine in their zero (a VW polynomial's R0, a weir's flow); and a
zero that cannot be is refused. ``tests/test_fieldcal.py`` runs the daemon's side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from daq.convert import (
    digits_from_frequency,
    polynomial_pressure,
    polynomial_zero_offset,
    steinhart_hart,
    temperature_correction,
    v_notch_kindsvater_shen,
)
from daq.model import ChannelValue
from daq.sensors import SensorSet

SH = {"a": 1.4051e-3, "b": 2.369e-4, "c": 1.019e-7, "kelvin_offset": 273.15}
SENSORS: dict[str, dict[str, Any]] = {
    "P2": {"kind": "vw_piezometer", "calibration": {"id": "GK-2"},
           "inputs": {"frequency": "g/f", "thermistor": "g/th"}, "reading_unit": "digits",
           "pressure_unit": "kPa", "method": "polynomial", "a": 1e-6, "b": -0.18,
           "c": 1500.0, "temperature_correction": {"convention": "geokon", "factor": 0.1319,
                                                   "zero_temperature": 22.0},
           "steinhart_hart": SH, "density": {"model": "fixed", "value": 1000.0},
           "gravity": 9.80665, "tip_elevation": 40.0},
    "W1": {"kind": "weir", "calibration": {"id": "W"}, "inputs": {"level": "g/lvl"},
           "formula": "kindsvater_shen", "unit": "m", "level_unit": "mm", "crest_zero": 0.1032,
           "angle": 90.0, "ce": 0.578, "kh": 0.00085, "gravity": 9.7985},
    "L1": {"kind": "water_level", "calibration": {"id": "L"}, "method": "current",
           "inputs": {"current": "g/i"}, "current": {"low": 0.0, "high": 10.0,
                                                      "measures": "depth"},
           "sensor_elevation": 100.0},
    "B1": {"kind": "barometer", "calibration": {"id": "B"}, "inputs": {"pressure": "g/baro"},
           "unit": "hPa"},
    "V1": {"kind": "water_level", "calibration": {"id": "V"}, "method": "vented",
           "inputs": {"pressure": "g/p"}, "pressure_unit": "kPa", "sensor_elevation": 50.0,
           "density": {"model": "fixed", "value": 1000.0}, "gravity": 9.80665},
}


def polled(values: dict[str, float]) -> SensorSet:
    s = SensorSet.build(SENSORS, {f"g/{k}" for k in ("f", "th", "lvl", "i", "baro", "p")})
    s.process("g", [ChannelValue(k, v) for k, v in values.items()], datetime.now(UTC))
    return s


POLL = {"f": 2800.0, "th": 3000.0, "lvl": 180.0, "i": 15.0, "baro": 1013.0, "p": 20.0}


@pytest.mark.parametrize("quantity, output, v", [
    (None, "pressure", 12.345), ("piezometric_elevation", "elevation", 81.92),
    ("head", "head", -0.5)])
def test_a_vw_polynomial_zero_solved_for_a_reference(quantity: str | None, output: str,
                                                     v: float) -> None:
    s = polled(POLL)
    _, before, zero, _, after, main = s.take_zero("P2", quantity, v)
    assert before["c"] == 1500.0 and "c" not in zero  # C follows the new R0 from now on
    assert main == output
    assert {o.quantity: o.value for o in after}[output] == pytest.approx(v, abs=1e-9)
    t = steinhart_hart(3000.0, SH["a"], SH["b"], SH["c"], kelvin_offset=273.15)
    assert zero["zero_temperature"] == pytest.approx(t)  # T0 taken now, as in a zero
    r1, r0 = digits_from_frequency(2800.0), zero["zero_reading"]
    p = polynomial_pressure(r1, 1e-6, -0.18, polynomial_zero_offset(1e-6, -0.18, r0)) \
        + temperature_correction(t, t, 0.1319, "geokon")
    assert {o.quantity: o.value for o in after}["pressure"] == pytest.approx(p, abs=1e-9)
    # the root on the reading's branch of the sheet's parabola, not the far one
    assert (2e-6 * r0 - 0.18) * (2e-6 * r1 - 0.18) > 0


def test_a_weir_flow_reference_and_refusals() -> None:
    s = polled(POLL)
    _, _, zero, _, after, main = s.take_zero("W1", "seepage_flow", 2.0)
    head = 0.18 - zero["crest_zero"]
    assert main == "flow" and v_notch_kindsvater_shen(
        head, 90.0, gravity=9.7985, ce=0.578, kh=0.00085).flow * 1000 == pytest.approx(
            2.0, abs=1e-9)
    at_crest = polled({**POLL, "lvl": 100.0})  # below the crest: no flow to solve on
    with pytest.raises(ValueError, match="does not change with crest_zero"):
        at_crest.take_zero("W1", "seepage_flow", 2.0)
    with pytest.raises(ValueError, match=r"outside 3\.8 to 12 mA"):
        s.take_zero("L1", None, 140.0)  # 15 mA reading 140 m needs I0 below 3.8 mA
    with pytest.raises(ValueError, match="not a zero"):
        s.take_zero("L1")  # 15 mA is no loop at its low end
    _, _, zero, _, after, _ = s.take_zero("L1", None, 104.5)
    assert zero["zero_ma"] == pytest.approx(7.8)  # 15 − 4.5·16/10
    assert after[0].value == pytest.approx(104.5, abs=1e-9)
    assert [sid for sid in SENSORS if s.native_zero(sid)] == ["P2", "W1", "L1"]
    assert not s.native_zero("P2", "temperature") and s.kind("V1") == "water_level (vented)"
