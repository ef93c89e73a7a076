"""Sharp-crested weirs: discharge from the head over the crest.

Every function takes the head ``h`` (m when ``unit="m"``, ft when ``unit="ft"``) and
returns a :class:`WeirFlow`: the flow (m³/s or ft³/s = cfs) and whether ``h`` lies inside
the formula's valid range. Outside the range the flow is still computed (so it can be
kept and flagged *suspect*), never silently trusted. A head ≤ 0 (water below the crest)
gives a flow of 0 and ``in_range=False``. NaN or infinite input raises ``ValueError``.

Formulas (``g`` in m/s² or ft/s² to match ``unit``; lengths in that unit):

- USBR 90° V-notch (USBR Water Measurement Manual, ch. 7): ``Q = 2.49·h^2.48`` (cfs, ft),
  valid 0.2–1.25 ft; in metres the same curve is evaluated through ft.
- Kindsvater–Shen, any angle 25–100° (ISO 1438; USBR WMM eq. 7-3):
  ``Q = Ce·(8/15)·√(2g)·tan(θ/2)·(h + kh)^2.5``; 90°: Ce 0.578, kh 0.85 mm. Default valid
  range 0.05–0.38 m (ISO 1438 fully contracted limits).
- Chinese dam-monitoring codes (SL/DL) 90° triangular weir: ``Q = 1.4·H^2.5`` (m³/s, m),
  default valid range 0.05–0.30 m (≈ the 1–70 L/s these codes assign to it).
- Rectangular, Francis (contracted): ``Q = C·(L − 0.1·n·h)·h^1.5`` with ``C`` 1.838 (SI) or
  3.33 (US), ``n`` end contractions (2: ``L − 0.2h``); valid 0.06 m (0.2 ft) ≤ h ≤ L/3.
- Rectangular, Kindsvater–Carter (ISO 1438): ``Q = Ce·(2/3)·√(2g)·(L + kb)·(h + kh)^1.5``,
  Ce, kb, kh from ISO 1438 / USBR WMM for the weir's L/B and h/P; default valid h ≥ 0.03 m.
- Cipolletti (trapezoidal, 1H:4V sides): ``Q = 1.86·L·h^1.5`` (SI) or ``3.367·L·h^1.5``
  (US); valid 0.06 m (0.2 ft) ≤ h ≤ L/3.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._check import choice, finite, positive

FT = 0.3048  # m per international foot
UNITS = ("m", "ft")


class WeirFlow(NamedTuple):
    """A weir's discharge (m³/s or cfs) and whether the head was inside the valid range."""

    flow: float
    in_range: bool
    h_min: float
    h_max: float


def _head(h: float, unit: str) -> float:
    choice(unit, "unit", UNITS)
    return finite(h, "head")


def _result(flow: float, h: float, h_min: float, h_max: float) -> WeirFlow:
    if h <= 0.0:
        return WeirFlow(0.0, False, h_min, h_max)
    return WeirFlow(flow, h_min <= h <= h_max, h_min, h_max)


def _range(unit: str, metric: tuple[float, float], feet: tuple[float, float],
           h_min: float | None, h_max: float | None) -> tuple[float, float]:
    """The valid head range in ``unit``: the caller's override, else the formula's own."""
    lo, hi = metric if unit == "m" else feet
    return (lo if h_min is None else finite(h_min, "h_min"),
            hi if h_max is None else finite(h_max, "h_max"))


def v_notch_usbr_90(h: float, unit: str = "ft", *, h_min: float | None = None,
                    h_max: float | None = None) -> WeirFlow:
    """USBR 90° V-notch ``Q = 2.49·h^2.48`` (cfs, ft); ``unit="m"``: m in, m³/s out."""
    h = _head(h, unit)
    h_ft = h if unit == "ft" else h / FT
    q_cfs = 2.49 * h_ft**2.48 if h_ft > 0 else 0.0
    flow = q_cfs if unit == "ft" else q_cfs * FT**3
    lo, hi = _range(unit, (0.2 * FT, 1.25 * FT), (0.2, 1.25), h_min, h_max)
    return _result(flow, h, lo, hi)


def kindsvater_shen_coefficients(angle_deg: float, unit: str = "m") -> tuple[float, float]:
    """``(Ce, kh)`` for a fully contracted V-notch of ``angle_deg`` (25–100°).

    Polynomial fits of the Kulin & Compton (1975) curves reproduced in USBR WMM figures
    7-6a/b (θ in degrees, kh fitted in ft): Ce = 0.607165052 − 8.74466963e-4·θ +
    6.10393334e-6·θ²; kh = 0.0144902648 − 3.3955535e-4·θ + 3.29819003e-6·θ² −
    1.06215442e-8·θ³. At 90° they give Ce 0.5779, kh 0.0029 ft (0.88 mm; the figure and
    ISO 1438 read 0.85 mm). Prefer the values of your standard when you have them.
    """
    choice(unit, "unit", UNITS)
    t = finite(angle_deg, "notch angle (°)")
    if not 25.0 <= t <= 100.0:
        raise ValueError(f"Kindsvater–Shen coefficients are defined for 25–100°, got {t}°")
    ce = 0.607165052 - 0.000874466963 * t + 6.10393334e-6 * t * t
    kh_ft = 0.0144902648 - 0.00033955535 * t + 3.29819003e-6 * t * t - 1.06215442e-8 * t**3
    return ce, kh_ft if unit == "ft" else kh_ft * FT


def v_notch_kindsvater_shen(h: float, angle_deg: float = 90.0, *, gravity: float,
                            ce: float | None = None, kh: float | None = None,
                            unit: str = "m", h_min: float | None = None,
                            h_max: float | None = None) -> WeirFlow:
    """Kindsvater–Shen V-notch ``Ce·(8/15)·√(2g)·tan(θ/2)·(h + kh)^2.5``.

    ``ce``/``kh`` default to :func:`kindsvater_shen_coefficients` of the angle; ``kh`` and
    ``h`` in ``unit``; ``gravity`` in m/s² (ft/s² for ``unit="ft"``).
    """
    h = _head(h, unit)
    theta = finite(angle_deg, "notch angle (°)")
    if not 0.0 < theta < 180.0:
        raise ValueError(f"notch angle must be between 0 and 180°, got {theta}")
    if ce is None or kh is None:
        ce_fit, kh_fit = kindsvater_shen_coefficients(theta, unit)
        ce = ce_fit if ce is None else ce
        kh = kh_fit if kh is None else kh
    ce = positive(ce, "Ce")
    kh = finite(kh, "kh")
    g = positive(gravity, "gravity")
    he = h + kh
    flow = (ce * 8.0 / 15.0 * math.sqrt(2.0 * g) * math.tan(math.radians(theta) / 2.0)
            * he**2.5) if he > 0 else 0.0
    lo, hi = _range(unit, (0.05, 0.38), (0.05 / FT, 0.38 / FT), h_min, h_max)
    return _result(flow, h, lo, hi)


def v_notch_sl_90(h: float, *, coefficient: float = 1.4, exponent: float = 2.5,
                  h_min: float | None = None, h_max: float | None = None) -> WeirFlow:
    """90° triangular weir ``Q = C·H^n`` (m³/s, H in m): SL 551's C 1.4, n 2.5 by default;
    instrument vendors print tables from 1.38·H^2.5 or 1.343·H^2.47."""
    h = _head(h, "m")
    c = positive(coefficient, "coefficient C")
    n = positive(exponent, "exponent n")
    flow = c * h**n if h > 0 else 0.0
    lo, hi = _range("m", (0.05, 0.30), (0.05, 0.30), h_min, h_max)
    return _result(flow, h, lo, hi)


def rectangular_francis(h: float, length: float, *, unit: str = "m", contractions: int = 2,
                        h_min: float | None = None, h_max: float | None = None) -> WeirFlow:
    """Francis ``C·(L − 0.1·n·h)·h^1.5``; C = 1.838 (m, m³/s) or 3.33 (ft, cfs)."""
    h = _head(h, unit)
    length = positive(length, "crest length L")
    if contractions not in (0, 1, 2):
        raise ValueError(f"end contractions must be 0, 1 or 2, got {contractions}")
    coeff = 1.838 if unit == "m" else 3.33
    if h > 0:
        effective = length - 0.1 * contractions * h
        if effective <= 0:
            raise ValueError(f"head {h} is too large for crest length {length}")
        flow = coeff * effective * h**1.5
    else:
        flow = 0.0
    lo = (0.06 if unit == "m" else 0.2) if h_min is None else finite(h_min, "h_min")
    hi = length / 3.0 if h_max is None else finite(h_max, "h_max")
    return _result(flow, h, lo, hi)


def rectangular_kindsvater_carter(h: float, length: float, *, ce: float, kb: float, kh: float,
                                  gravity: float, unit: str = "m",
                                  h_min: float | None = None,
                                  h_max: float | None = None) -> WeirFlow:
    """Kindsvater–Carter ``Ce·(2/3)·√(2g)·(L + kb)·(h + kh)^1.5`` (ISO 1438).

    ``kb``, ``kh``, ``L``, ``h`` in ``unit``; ``gravity`` in m/s² or ft/s². ISO 1438 gives
    kh = 0.001 m; Ce and kb depend on L/B and h/P (read them from the standard).
    """
    h = _head(h, unit)
    length = positive(length, "crest length L")
    ce = positive(ce, "Ce")
    kb, kh = finite(kb, "kb"), finite(kh, "kh")
    g = positive(gravity, "gravity")
    he = h + kh
    flow = ce * 2.0 / 3.0 * math.sqrt(2.0 * g) * (length + kb) * he**1.5 if he > 0 else 0.0
    lo, hi = _range(unit, (0.03, math.inf), (0.1, math.inf), h_min, h_max)
    return _result(flow, h, lo, hi)


def cipolletti(h: float, length: float, *, unit: str = "m", h_min: float | None = None,
               h_max: float | None = None) -> WeirFlow:
    """Cipolletti ``1.86·L·h^1.5`` (m, m³/s) or ``3.367·L·h^1.5`` (ft, cfs)."""
    h = _head(h, unit)
    length = positive(length, "crest length L")
    coeff = 1.86 if unit == "m" else 3.367
    flow = coeff * length * h**1.5 if h > 0 else 0.0
    lo = (0.06 if unit == "m" else 0.2) if h_min is None else finite(h_min, "h_min")
    hi = length / 3.0 if h_max is None else finite(h_max, "h_max")
    return _result(flow, h, lo, hi)
