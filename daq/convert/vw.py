"""Vibrating-wire (VW) sensor data reduction.

Conventions (Geokon 4500 / 4580 manuals, data-reduction chapters; Roctest FOP manual):

- *digits* ``R = f² / 1000`` with ``f`` the resonant frequency in Hz; the period readouts
  show is ``T = 1/f`` in microseconds, so ``R = 10⁹ / T²``.
- *LC-2 units* (Geokon LC-2 loggers): ``f² · 10⁻⁶`` = digits / 1000. A calibration sheet
  written for digits is used on LC-2 units by scaling ``A × 10⁶`` and ``B × 10³`` (``C``
  unchanged), or equivalently by converting the LC-2 reading back to digits.
- Linear: ``P = G · (R1 − R0)`` (Geokon; its ``G`` is usually negative) or
  ``P = G · (R0 − R1)`` (some other vendors). ``P`` comes out in the unit of ``G``.
- Polynomial: ``P = A·R1² + B·R1 + C`` with ``C = −(A·R0² + B·R0)`` from the field zero.
- Temperature: Geokon adds ``K · (T1 − T0)``; Roctest subtracts ``CT · (T1 − T0)``
  (°C, factor in pressure unit per °C).
- Barometric: subtract ``(S1 − S0)`` (same pressure unit), only for sensors open to the
  atmosphere (standpipes), never for a piezometer sealed at depth.
"""

from __future__ import annotations

from ._check import choice, finite, positive

SIGN_CONVENTIONS = ("r1_minus_r0", "r0_minus_r1")
TEMPERATURE_CONVENTIONS = ("geokon", "roctest")
READING_UNITS = ("digits", "lc2")


def digits_from_frequency(frequency_hz: float) -> float:
    """Digits ``R = f²/1000`` from a frequency in Hz (``ValueError`` if ``f ≤ 0`` or NaN)."""
    f = positive(frequency_hz, "frequency (Hz)")
    return f * f / 1000.0


def period_us_from_frequency(frequency_hz: float) -> float:
    """Period in microseconds from a frequency in Hz."""
    return 1e6 / positive(frequency_hz, "frequency (Hz)")


def frequency_from_period_us(period_us: float) -> float:
    """Frequency in Hz from a period in microseconds."""
    return 1e6 / positive(period_us, "period (µs)")


def digits_from_period_us(period_us: float) -> float:
    """Digits ``R = 10⁹/T²`` from a period ``T`` in microseconds."""
    t = positive(period_us, "period (µs)")
    return 1e9 / (t * t)


def lc2_from_frequency(frequency_hz: float) -> float:
    """Geokon LC-2 logger units ``f²·10⁻⁶`` from a frequency in Hz."""
    f = positive(frequency_hz, "frequency (Hz)")
    return f * f * 1e-6


def digits_from_lc2(lc2: float) -> float:
    """Digits (``f²/1000``) from LC-2 units (``f²·10⁻⁶``): multiply by 1000."""
    return positive(lc2, "LC-2 reading") * 1000.0


def lc2_from_digits(digits: float) -> float:
    """LC-2 units (``f²·10⁻⁶``) from digits (``f²/1000``): divide by 1000."""
    return positive(digits, "digits") / 1000.0


def reading_from_input(value: float, input_kind: str, reading_unit: str) -> float:
    """Convert a VW input to the reading unit the calibration sheet is written in.

    ``input_kind``: ``frequency`` (Hz), ``period`` (µs), ``digits`` (f²/1000) or ``lc2``
    (f²·10⁻⁶); ``reading_unit``: ``digits`` or ``lc2``.
    """
    choice(reading_unit, "reading unit", READING_UNITS)
    if input_kind == "frequency":
        digits = digits_from_frequency(value)
    elif input_kind == "period":
        digits = digits_from_period_us(value)
    elif input_kind == "digits":
        digits = positive(value, "digits")
    elif input_kind == "lc2":
        digits = digits_from_lc2(value)
    else:
        raise ValueError(f"unknown VW input kind {input_kind!r}")
    return digits if reading_unit == "digits" else digits / 1000.0


def scale_coefficients_to_lc2(a: float, b: float, c: float = 0.0) -> tuple[float, float, float]:
    """Polynomial coefficients for digits → the same for LC-2 units: ``(A·10⁶, B·10³, C)``."""
    return finite(a, "A") * 1e6, finite(b, "B") * 1e3, finite(c, "C")


def linear_pressure(r1: float, r0: float, gauge_factor: float,
                    sign: str = "r1_minus_r0") -> float:
    """Linear reduction: ``G·(R1 − R0)`` (``sign="r1_minus_r0"``) or ``G·(R0 − R1)``.

    ``R1``, ``R0`` in the sheet's reading unit; the result is in the unit of ``G``.
    """
    choice(sign, "sign convention", SIGN_CONVENTIONS)
    r1, r0 = finite(r1, "R1"), finite(r0, "R0")
    g = finite(gauge_factor, "gauge factor G")
    return g * (r1 - r0) if sign == "r1_minus_r0" else g * (r0 - r1)


def polynomial_zero_offset(a: float, b: float, r0: float) -> float:
    """``C = −(A·R0² + B·R0)``: the constant that makes the polynomial zero at the field zero."""
    a, b, r0 = finite(a, "A"), finite(b, "B"), finite(r0, "R0")
    return -(a * r0 * r0 + b * r0)


def polynomial_pressure(r1: float, a: float, b: float, c: float) -> float:
    """Polynomial reduction ``A·R1² + B·R1 + C`` (units of the calibration sheet)."""
    r1 = finite(r1, "R1")
    return finite(a, "A") * r1 * r1 + finite(b, "B") * r1 + finite(c, "C")


def temperature_correction(t1: float, t0: float, factor: float,
                           convention: str = "geokon") -> float:
    """The term added to the pressure for temperature (°C).

    ``geokon``: ``+K·(T1 − T0)``; ``roctest``: ``−CT·(T1 − T0)``. ``factor`` is ``K`` or
    ``CT`` in pressure unit per °C, as printed on the sheet.
    """
    choice(convention, "temperature convention", TEMPERATURE_CONVENTIONS)
    delta = finite(t1, "T1") - finite(t0, "T0")
    k = finite(factor, "temperature factor")
    return k * delta if convention == "geokon" else -k * delta


def barometric_correction(s1: float, s0: float) -> float:
    """The term added for barometric pressure: ``−(S1 − S0)`` (same unit as the pressure).

    Only for sensors open to the atmosphere (standpipe piezometers, unvented level
    transducers); never for a piezometer sealed at depth.
    """
    return -(finite(s1, "S1") - finite(s0, "S0"))
