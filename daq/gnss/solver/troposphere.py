"""Tropospheric delay as RTKLIB applies it in relative positioning (``pos1-tropopt=saas``).

RTKLIB 2.4.3 (``rtkpos.c`` zdres) corrects each receiver's undifferenced range with the
**hydrostatic** zenith delay of the Saastamoinen model in a standard atmosphere (relative
humidity 0) mapped to the slant with the **Niell hydrostatic** mapping function (NMF,
including the height correction, ellipsoidal height used for height). We reproduce that
exactly so that a baseline agrees with RTKLIB's to well under a millimetre.

Units: latitude and elevation in radians, heights in metres, delays in metres.
``doy`` is the fractional day of year (1.0 = 1 January 00:00) of the observation time in
GPS time, as RTKLIB's ``time2doy``.
"""

from __future__ import annotations

import datetime as _dt
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Niell (1996) table 3: hydrostatic average a,b,c; amplitude a,b,c; wet a,b,c
# at |latitude| 15, 30, 45, 60, 75 degrees.
_NMF_COEF = np.array([
    [1.2769934E-3, 1.2683230E-3, 1.2465397E-3, 1.2196049E-3, 1.2045996E-3],
    [2.9153695E-3, 2.9152299E-3, 2.9288445E-3, 2.9022565E-3, 2.9024912E-3],
    [62.610505E-3, 62.837393E-3, 63.721774E-3, 63.824265E-3, 64.258455E-3],
    [0.0000000E-0, 1.2709626E-5, 2.6523662E-5, 3.4000452E-5, 4.1202191E-5],
    [0.0000000E-0, 2.1414979E-5, 3.0160779E-5, 7.2562722E-5, 11.723375E-5],
    [0.0000000E-0, 9.0128400E-5, 4.3497037E-5, 84.795348E-5, 170.37206E-5],
    [5.8021897E-4, 5.6794847E-4, 5.8118019E-4, 5.9727542E-4, 6.1641693E-4],
    [1.4275268E-3, 1.5138625E-3, 1.4572752E-3, 1.5007428E-3, 1.7599082E-3],
    [4.3472961E-2, 4.6729510E-2, 4.3908931E-2, 4.4626982E-2, 5.4736038E-2],
])
_NMF_HEIGHT = (2.53E-5, 5.49E-3, 1.14E-3)


def saastamoinen_zenith(lat: float, height: float, humidity: float = 0.0) -> float:
    """Zenith delay (m) of the Saastamoinen model in RTKLIB's standard atmosphere.

    ``humidity`` is relative (0..1); RTKLIB's relative mode uses 0 (hydrostatic only).
    Returns 0 outside −100 m … 10 km, as RTKLIB does.
    """
    if height < -100.0 or height > 1e4:
        return 0.0
    hgt = max(height, 0.0)
    pres = 1013.25 * (1.0 - 2.2557E-5 * hgt) ** 5.2568       # hPa
    temp = 15.0 - 6.5E-3 * hgt + 273.16                        # K
    e = 6.108 * humidity * math.exp((17.15 * temp - 4684.0) / (temp - 38.45))
    trph = 0.0022768 * pres / (1.0 - 0.00266 * math.cos(2.0 * lat) - 0.00028 * hgt / 1E3)
    trpw = 0.002277 * (1255.0 / temp + 0.05) * e
    return trph + trpw


def _interp_lat(coef: NDArray[np.float64], lat_deg: float) -> float:
    i = int(lat_deg / 15.0)
    if i < 1:
        return float(coef[0])
    if i > 4:
        return float(coef[4])
    return float(coef[i - 1] * (1.0 - lat_deg / 15.0 + i) + coef[i] * (lat_deg / 15.0 - i))


def _continued_fraction(sinel: NDArray[np.float64], a: NDArray[np.float64] | float,
                        b: NDArray[np.float64] | float, c: NDArray[np.float64] | float
                        ) -> NDArray[np.float64]:
    top = 1.0 + a / (1.0 + b / (1.0 + c))
    result: NDArray[np.float64] = top / (sinel + (a / (sinel + b / (sinel + c))))
    return result


def niell_hydrostatic(elevation: ArrayLike, lat: float, height: float, doy: ArrayLike
                      ) -> NDArray[np.float64]:
    """Niell hydrostatic mapping function for elevation(s) in radians (0 below horizon);
    ``doy`` a scalar or one day of year per elevation."""
    el = np.atleast_1d(np.asarray(elevation, dtype=float))
    if height < -1000.0 or height > 20000.0:
        return np.zeros_like(el)
    lat_deg = math.degrees(lat)
    y = (np.asarray(doy, dtype=float) - 28.0) / 365.25 + (0.5 if lat_deg < 0.0 else 0.0)
    cosy = np.cos(2.0 * math.pi * y)
    alat = abs(lat_deg)
    ah = [np.asarray(_interp_lat(_NMF_COEF[i], alat) - _interp_lat(_NMF_COEF[i + 3], alat)
                     * cosy, dtype=np.float64) for i in range(3)]
    sinel = np.sin(np.where(el > 0.0, el, 1.0))
    dm = (1.0 / sinel - _continued_fraction(sinel, *_NMF_HEIGHT)) * height / 1E3
    m = _continued_fraction(sinel, ah[0], ah[1], ah[2]) + dm
    return np.where(el > 0.0, m, 0.0)


def slant_hydrostatic_delay(elevation: ArrayLike, lat: float, height: float, doy: ArrayLike
                            ) -> NDArray[np.float64]:
    """Slant delay (m) = NMF hydrostatic × Saastamoinen zenith (humidity 0), RTKLIB-style."""
    return niell_hydrostatic(elevation, lat, height, doy) * saastamoinen_zenith(lat, height)


def day_of_year(gps_seconds: float) -> float:
    """Fractional day of year of a GPS time given as seconds since 1980-01-06 00:00.

    Computed on the GPS time scale itself (no leap seconds), as RTKLIB does.
    """
    t = _dt.datetime(1980, 1, 6) + _dt.timedelta(seconds=gps_seconds)
    start = _dt.datetime(t.year, 1, 1)
    return (t - start).total_seconds() / 86400.0 + 1.0
