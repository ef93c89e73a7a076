"""A sensor's own zero, in its native unit: what ``daq calibrate zero`` changes.

A vibrating-wire piezometer is zeroed to a zero *reading* R0 in its sheet's
``reading_unit`` (digits f²/1000, or LC-2 f²·10⁻⁶), with the thermistor's T0 (°C) when the
sheet has a temperature correction and the barometer's S0 for an open standpipe; a 4–20 mA
current loop (``water_level`` with ``method: current``) to the current at its low end, I0
in mA. A re-zero takes them from the sensor's latest poll and puts them in the sensor's
configuration (``zero_reading``, ``temperature_correction.zero_temperature``,
``barometric_correction.zero``, ``current.zero_ma``; a polynomial's C then follows from the
new R0), so a re-zeroed value *is* the conversion with the new zero: every output
(pressure, head, elevation, level) follows it exactly, with no correction on top.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..convert import reading_from_input
from ..model import Quality
from .common import Events, Sample
from .kinds_vw import VW_PRIMARY, vw_temperature

_USABLE = (Quality.GOOD, Quality.SUSPECT)


def has_native_zero(cfg: Mapping[str, Any]) -> bool:
    return cfg.get("kind") == "vw_piezometer" or (
        cfg.get("kind") == "water_level" and cfg.get("method") == "current")


def configured_zero(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The native zero a sensor's configuration holds (what a first re-zero replaces)."""
    if cfg.get("kind") == "vw_piezometer":
        out: dict[str, Any] = {"zero_reading": cfg.get("zero_reading"),
                               "reading_unit": cfg["reading_unit"]}
        if cfg.get("method") == "polynomial" and cfg.get("c") is not None:
            out["c"] = cfg["c"]
        if cfg.get("temperature_correction"):
            out["zero_temperature"] = cfg["temperature_correction"]["zero_temperature"]
        if cfg.get("barometric_correction"):
            bc = cfg["barometric_correction"]
            out.update(barometer_zero=bc["zero"], barometer_unit=bc["unit"])
        return out
    return {"zero_ma": cfg["current"].get("zero_ma", 4.0)}


def take_zero(cfg: Mapping[str, Any], samples: Mapping[str, Sample]) -> dict[str, Any]:
    """The native zero of one poll's samples; ``ValueError`` when they cannot give one."""
    if cfg.get("kind") == "water_level":
        i = _usable(samples, "current")
        if not 3.8 <= i <= 12.0:
            raise ValueError(f"the loop carries {i:g} mA: not a zero (3.8 to 12 mA)")
        return {"zero_ma": i}
    role = next(r for r in VW_PRIMARY if r in samples)
    out: dict[str, Any] = {
        "zero_reading": reading_from_input(_usable(samples, role), role, cfg["reading_unit"]),
        "reading_unit": cfg["reading_unit"]}
    if cfg.get("temperature_correction"):
        t = vw_temperature(cfg, samples, Events())
        if t is None or t.value is None or t.quality not in _USABLE:
            raise ValueError("no usable temperature now: T0 cannot be taken")
        out["zero_temperature"] = t.value
    if cfg.get("barometric_correction"):
        out.update(barometer_zero=_usable(samples, "barometer"),
                   barometer_unit=cfg["barometric_correction"]["unit"])
    return out


def apply_zero(cfg: Mapping[str, Any], zero: Mapping[str, Any]) -> Any:
    """A copy of ``cfg`` converting with the native zero ``zero``."""
    out: Any = copy.copy(cfg)  # keeps the CheckedSensor type
    if "zero_ma" in zero:
        out["current"] = {**cfg["current"], "zero_ma": zero["zero_ma"]}
        return out
    if zero.get("zero_reading") is not None:
        out["zero_reading"] = zero["zero_reading"]
        if cfg.get("method") == "polynomial":  # C = −(A·R0² + B·R0) from the new R0
            out.pop("c", None)
    if zero.get("c") is not None:
        out["c"] = zero["c"]
    if "zero_temperature" in zero and cfg.get("temperature_correction"):
        out["temperature_correction"] = {**cfg["temperature_correction"],
                                         "zero_temperature": zero["zero_temperature"]}
    if "barometer_zero" in zero and cfg.get("barometric_correction"):
        out["barometric_correction"] = {**cfg["barometric_correction"],
                                        "zero": zero["barometer_zero"]}
    return out


def describe(zero: Mapping[str, Any]) -> str:
    """``R0 7840 digits, T0 24.99 °C`` / ``I0 4.4 mA``: for ``daq calibrate history``."""
    if "zero_ma" in zero:
        return f"I0 {zero['zero_ma']:.6g} mA"
    parts = []
    if zero.get("zero_reading") is not None:
        parts.append(f"R0 {zero['zero_reading']:.8g} {zero['reading_unit']}")
    if zero.get("c") is not None:
        parts.append(f"C {zero['c']:.8g}")
    if zero.get("zero_temperature") is not None:
        parts.append(f"T0 {zero['zero_temperature']:.6g} °C")
    if zero.get("barometer_zero") is not None:
        parts.append(f"S0 {zero['barometer_zero']:.6g} {zero['barometer_unit']}")
    return ", ".join(parts)


def _usable(samples: Mapping[str, Sample], role: str) -> float:
    s = samples.get(role)
    if s is None or s.value is None or s.quality not in _USABLE:
        raise ValueError(f"no usable {role} now (quality "
                         f"{s.quality.value if s is not None else 'absent'})")
    return float(s.value)
