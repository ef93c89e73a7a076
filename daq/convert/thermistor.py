"""Thermistor temperature by the Steinhart–Hart equation.

``T = 1 / (A + B·ln R + C·(ln R)³ + D·(ln R)⁵) − offset``

``R`` in ohms, ``T`` in °C. The three-term form has ``D = 0``. ``offset`` is the Kelvin
offset the sheet was fitted with: 273.15, or 273.2 on older Geokon sheets; it is always
passed explicitly. Geokon 3 kΩ thermistor (sheet): A 1.4051e-3, B 2.369e-4, C 1.019e-7.
"""

from __future__ import annotations

import math

from ._check import finite, positive

KELVIN_OFFSETS = (273.15, 273.2)


def steinhart_hart(resistance_ohm: float, a: float, b: float, c: float, d: float = 0.0, *,
                   kelvin_offset: float) -> float:
    """Temperature in °C of a thermistor reading ``resistance_ohm``.

    Raises ``ValueError`` for a non-positive or non-finite resistance (open/short
    circuit) or coefficients giving a non-positive absolute temperature.
    """
    r = positive(resistance_ohm, "resistance (Ω)")
    a, b, c, d = finite(a, "A"), finite(b, "B"), finite(c, "C"), finite(d, "D")
    offset = finite(kelvin_offset, "Kelvin offset")
    ln_r = math.log(r)
    inv_t = a + b * ln_r + c * ln_r**3 + d * ln_r**5
    if inv_t <= 0.0:
        raise ValueError(f"Steinhart–Hart gives no positive temperature at {r} Ω")
    return 1.0 / inv_t - offset
