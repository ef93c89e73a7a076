"""Water density, pressure → head, and pressure units.

- Head ``h = P / (ρ·g)``: ``P`` in kPa (converted to Pa), ``ρ`` in kg/m³, ``g`` in m/s²,
  ``h`` in metres of water. Piezometric elevation = tip elevation + ``h`` (m).
- ``ρ(T)`` of air-free pure water at 101 325 Pa, 0–40 °C: Tanaka, Girard, Davis, Peuto and
  Bignell (2001), *Recommended table for the density of water between 0 °C and 40 °C
  based on recent experimental reports*, Metrologia 38, 301–309 (the CIPM table):

      ρ(t) = a5 · [1 − (t + a1)² (t + a2) / (a3 (t + a4))]

  a1 = −3.983035 °C, a2 = 301.797 °C, a3 = 522528.9 °C², a4 = 69.34881 °C,
  a5 = 999.974950 kg/m³ (ρ(20 °C) = 998.2067 kg/m³). Dissolved air lowers ρ by about
  0.003 kg/m³ and the pressure of the water column raises it by ~0.46 kg/m³ per MPa; both
  are below the mm grade at dam depths and are not modelled.
- ``g`` is always passed in (local gravity; standard gravity is 9.80665 m/s²).
"""

from __future__ import annotations

from ._check import finite, positive

STANDARD_GRAVITY = 9.80665  # m/s², CGPM 1901; pass it explicitly, it is never assumed

# kPa per unit (exact where the unit is defined exactly)
PRESSURE_UNITS_KPA: dict[str, float] = {
    "kPa": 1.0,
    "Pa": 1e-3,
    "hPa": 0.1,
    "mbar": 0.1,
    "bar": 100.0,
    "MPa": 1000.0,
    "psi": 6.894757293168361,   # 0.45359237 kg·9.80665 / 0.0254² m²
    "mmHg": 0.133322387415,     # conventional millimetre of mercury
    "inHg": 3.386388640341,     # conventional inch of mercury (0 °C)
    "mH2O": 9.80665,            # conventional metre of water (1000 kg/m³, g_n)
}

_TANAKA = (-3.983035, 301.797, 522528.9, 69.34881, 999.974950)
TANAKA_RANGE_C = (0.0, 40.0)


def to_kpa(value: float, unit: str) -> float:
    """A pressure in ``unit`` (a key of :data:`PRESSURE_UNITS_KPA`) converted to kPa."""
    try:
        factor = PRESSURE_UNITS_KPA[unit]
    except KeyError as err:
        raise ValueError(f"unknown pressure unit {unit!r} "
                         f"(known: {', '.join(PRESSURE_UNITS_KPA)})") from err
    return finite(value, "pressure") * factor


def water_density_tanaka(temperature_c: float) -> float:
    """Density of pure air-free water in kg/m³ at ``temperature_c`` (°C, 0–40; Tanaka 2001)."""
    t = finite(temperature_c, "water temperature (°C)")
    lo, hi = TANAKA_RANGE_C
    if not lo <= t <= hi:
        raise ValueError(f"water temperature {t} °C is outside the Tanaka 2001 range "
                         f"{lo:g}–{hi:g} °C")
    a1, a2, a3, a4, a5 = _TANAKA
    return a5 * (1.0 - (t + a1) ** 2 * (t + a2) / (a3 * (t + a4)))


def head_from_pressure(pressure_kpa: float, density: float, gravity: float) -> float:
    """Head of water in m from a pressure in kPa: ``h = 1000·P / (ρ·g)``.

    ``density`` in kg/m³ and ``gravity`` in m/s², both > 0. A negative pressure gives a
    negative head (suction), which is physically possible and returned as such.
    """
    p = finite(pressure_kpa, "pressure (kPa)")
    rho = positive(density, "water density (kg/m³)")
    g = positive(gravity, "gravity (m/s²)")
    return p * 1000.0 / (rho * g)


def pressure_from_head(head_m: float, density: float, gravity: float) -> float:
    """Pressure in kPa of a column of ``head_m`` metres of water: ``ρ·g·h / 1000``."""
    h = finite(head_m, "head (m)")
    return h * positive(density, "water density (kg/m³)") * positive(gravity,
                                                                      "gravity (m/s²)") / 1000.0


def piezometric_elevation(tip_elevation_m: float, head_m: float) -> float:
    """Piezometric elevation in m (same datum as the tip): tip elevation + head."""
    return finite(tip_elevation_m, "tip elevation (m)") + finite(head_m, "head (m)")
