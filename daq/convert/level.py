"""Water level from pressure, distance, echo time or encoder counts; 4–20 mA scaling.

Levels and elevations are in metres on the site datum; pressures in kPa; temperatures in
°C; density in kg/m³; ``g`` in m/s² (always passed in).

- Vented transducer: ``level = sensor elevation + P/(ρ·g) + offset``.
- Unvented (absolute) transducer: the barometric pressure at the same time is subtracted
  first: ``P = P_abs − P_baro``.
- Radar / ultrasonic: ``level = zero elevation − distance + offset``; ultrasonic distance
  ``d = c·t/2`` with the speed of sound in air ``c = 331.45 + 0.607·T`` m/s (T in °C,
  the linearised ideal-gas law around 0 °C) and ``t`` the round-trip echo time in s.
- Float / shaft encoder: ``level = reference + (counts − counts0)·circumference/ppr``.
- ``offset``: the staff-gauge correction, ``staff reading − instrument level`` at a check.
- 4–20 mA (NAMUR NE 43): 3.8–20.5 mA carries a measurement (linear in 4–20 mA, so
  3.8–4 and 20–20.5 mA extrapolate slightly beyond the range); below 3.6 mA is a failure
  (wire break); above 20.5 mA is over range (NE 43 signals failure at ≥ 21 mA);
  3.6–3.8 mA is under range.
"""

from __future__ import annotations

from typing import NamedTuple

from ._check import finite, positive
from .water import head_from_pressure


def level_from_pressure(pressure_kpa: float, sensor_elevation: float, density: float,
                        gravity: float, offset: float = 0.0) -> float:
    """Vented pressure transducer: ``sensor elevation + P/(ρ·g) + offset`` (m)."""
    head = head_from_pressure(pressure_kpa, density, gravity)
    return finite(sensor_elevation, "sensor elevation") + head + finite(offset, "offset")


def level_from_pressure_factor(pressure: float, factor: float, sensor_elevation: float,
                               offset: float = 0.0, length_unit_m: float = 1.0) -> float:
    """Level from a transducer sheet's linear factor in place of ρ and g: ``sensor
    elevation + P·factor + offset`` (m), e.g. 2.31 ft of water per psi (``length_unit_m``
    0.3048 converts the factor's feet to metres; P in the factor's pressure unit)."""
    head = finite(pressure, "pressure") * positive(factor, "head factor") \
        * positive(length_unit_m, "length unit")
    return finite(sensor_elevation, "sensor elevation") + head + finite(offset, "offset")


def level_unvented(absolute_kpa: float, barometric_kpa: float, sensor_elevation: float,
                   density: float, gravity: float, offset: float = 0.0) -> float:
    """Unvented transducer: the barometric pressure (kPa, same time) is subtracted first."""
    p = finite(absolute_kpa, "absolute pressure") - positive(barometric_kpa,
                                                              "barometric pressure")
    return level_from_pressure(p, sensor_elevation, density, gravity, offset)


def speed_of_sound_air(temperature_c: float) -> float:
    """Speed of sound in air in m/s: ``331.45 + 0.607·T`` (T in °C)."""
    t = finite(temperature_c, "air temperature (°C)")
    if t < -273.15:
        raise ValueError(f"air temperature {t} °C is below absolute zero")
    return 331.45 + 0.607 * t


def ultrasonic_distance(echo_time_s: float, air_temperature_c: float) -> float:
    """Distance in m to the water from a round-trip echo time in s: ``c·t/2``."""
    return speed_of_sound_air(air_temperature_c) * positive(echo_time_s, "echo time (s)") / 2.0


def level_from_distance(zero_elevation: float, distance: float, offset: float = 0.0) -> float:
    """Radar / ultrasonic: ``zero elevation − distance + offset`` (m)."""
    d = finite(distance, "distance")
    if d < 0:
        raise ValueError(f"distance must not be negative, got {d}")
    return finite(zero_elevation, "zero elevation") - d + finite(offset, "offset")


def level_from_encoder(counts: float, counts0: float, reference: float, circumference: float,
                       pulses_per_rev: float, offset: float = 0.0) -> float:
    """Float/shaft encoder: ``reference + (counts − counts0)·circumference/ppr + offset``.

    ``reference`` (m) is the level when the encoder read ``counts0``; ``circumference`` of
    the float pulley in m; ``pulses_per_rev`` pulses per revolution.
    """
    step = positive(circumference, "circumference") / positive(pulses_per_rev,
                                                                "pulses per revolution")
    delta = finite(counts, "counts") - finite(counts0, "counts0")
    return finite(reference, "reference") + delta * step + finite(offset, "offset")


def staff_gauge_offset(staff_reading: float, instrument_level: float) -> float:
    """The offset to configure: staff-gauge reading − instrument level at that time (m)."""
    return finite(staff_reading, "staff reading") - finite(instrument_level, "instrument level")


class CurrentScaled(NamedTuple):
    """A 4–20 mA input scaled to engineering units, with its NAMUR NE 43 status.

    ``status``: ``ok`` (3.8–20.5 mA), ``under_range`` (3.6–3.8 mA), ``wire_break``
    (< 3.6 mA) or ``over_range`` (> 20.5 mA). ``value`` is always the linear scaling.
    """

    value: float
    status: str
    current_ma: float


NAMUR_WIRE_BREAK_MA = 3.6
NAMUR_UNDER_RANGE_MA = 3.8
NAMUR_OVER_RANGE_MA = 20.5


def scale_4_20ma(current_ma: float, low: float, high: float, *,
                 zero_ma: float = 4.0,
                 wire_break_below: float = NAMUR_WIRE_BREAK_MA,
                 under_range_below: float = NAMUR_UNDER_RANGE_MA,
                 over_range_above: float = NAMUR_OVER_RANGE_MA) -> CurrentScaled:
    """``low + (I − I0)/16·(high − low)`` with ``I`` in mA, and the NE 43 status.

    ``zero_ma`` (I0) is the current at ``low``: 4 mA, or a field zero (the 16 mA span
    kept); the NE 43 status is always judged on the current itself."""
    i = finite(current_ma, "current (mA)")
    lo, hi = finite(low, "low"), finite(high, "high")
    if lo == hi:
        raise ValueError("the 4 mA and 20 mA values must differ")
    value = lo + (i - finite(zero_ma, "zero_ma")) / 16.0 * (hi - lo)
    if i < wire_break_below:
        status = "wire_break"
    elif i < under_range_below:
        status = "under_range"
    elif i > over_range_above:
        status = "over_range"
    else:
        status = "ok"
    return CurrentScaled(value, status, i)
