"""Coordinates: ECEF ↔ geodetic (WGS84), local ENU, and dam axes.

Conventions:
- ECEF in metres (WGS84 / ITRF-like, as broadcast orbits give it).
- Geodetic: latitude and longitude in **radians**, ellipsoidal height in metres.
- ENU: east, north, up in metres, at a stated origin (the reference station).
- Dam axes (metres or mm, as the caller scales them), from the axis azimuth ``α``
  (degrees clockwise from north, pointing along the dam crest in the direction the
  chainage increases) and the side that is downstream:

  - ``along``: component along the axis (positive towards increasing chainage),
  - ``downstream``: horizontal component perpendicular to the axis, positive towards the
    downstream face (a dam pushed by the reservoir moves downstream: positive),
  - ``vertical``: up (settlement is negative).

  ``downstream_side`` says whether downstream is to the right (``"right"``, i.e. at
  azimuth α + 90°) or to the left (α − 90°) when looking along the axis.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

WGS84_A = 6378137.0                    # semi-major axis (m)
WGS84_F = 1.0 / 298.257223563          # flattening
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)   # first eccentricity squared


def ecef_to_geodetic(xyz: NDArray[np.float64] | tuple[float, float, float]
                     ) -> tuple[float, float, float]:
    """ECEF (m) → (lat rad, lon rad, ellipsoidal height m), iterated as RTKLIB ecef2pos."""
    x, y, z = (float(v) for v in xyz)
    r2 = x * x + y * y
    zk = 0.0
    v = WGS84_A
    sinp = 0.0
    z_ = z
    while abs(z_ - zk) >= 1e-4:
        zk = z_
        sinp = z_ / math.sqrt(r2 + z_ * z_)
        v = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sinp * sinp)
        z_ = z + v * WGS84_E2 * sinp
    if r2 > 1e-12:
        lat = math.atan(z_ / math.sqrt(r2))
        lon = math.atan2(y, x)
    else:
        lat = math.pi / 2.0 if z > 0.0 else -math.pi / 2.0
        lon = 0.0
    h = math.sqrt(r2 + z_ * z_) - v
    return lat, lon, h


def geodetic_to_ecef(lat: float, lon: float, h: float) -> NDArray[np.float64]:
    """(lat rad, lon rad, height m) → ECEF (m)."""
    sinp, cosp = math.sin(lat), math.cos(lat)
    v = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sinp * sinp)
    return np.array([(v + h) * cosp * math.cos(lon),
                     (v + h) * cosp * math.sin(lon),
                     (v * (1.0 - WGS84_E2) + h) * sinp])


def enu_rotation(lat: float, lon: float) -> NDArray[np.float64]:
    """3×3 matrix R with ``enu = R @ dxyz`` at (lat, lon) in radians."""
    sl, cl = math.sin(lon), math.cos(lon)
    sp, cp = math.sin(lat), math.cos(lat)
    return np.array([[-sl, cl, 0.0],
                     [-sp * cl, -sp * sl, cp],
                     [cp * cl, cp * sl, sp]])


def ecef_delta_to_enu(dxyz: NDArray[np.float64], origin_xyz: NDArray[np.float64]
                      ) -> NDArray[np.float64]:
    """ECEF difference vector(s) (m, shape (3,) or (n, 3)) → ENU (m) at ``origin_xyz``."""
    lat, lon, _ = ecef_to_geodetic(origin_xyz)
    rot = enu_rotation(lat, lon)
    return np.asarray(dxyz, dtype=float) @ rot.T


def enu_covariance(cov_xyz: NDArray[np.float64], origin_xyz: NDArray[np.float64]
                   ) -> NDArray[np.float64]:
    """3×3 ECEF covariance (m²) → ENU covariance (m²) at ``origin_xyz``."""
    lat, lon, _ = ecef_to_geodetic(origin_xyz)
    rot = enu_rotation(lat, lon)
    return rot @ np.asarray(cov_xyz, dtype=float) @ rot.T


def azimuth_elevation(sat_xyz: NDArray[np.float64], rcv_xyz: NDArray[np.float64]
                      ) -> tuple[float, float]:
    """Azimuth (rad, 0..2π from north) and elevation (rad) of a satellite seen from ECEF."""
    lat, lon, _ = ecef_to_geodetic(rcv_xyz)
    d = np.asarray(sat_xyz, dtype=float) - np.asarray(rcv_xyz, dtype=float)
    e, n, u = enu_rotation(lat, lon) @ (d / np.linalg.norm(d))
    az = math.atan2(e, n)
    if az < 0.0:
        az += 2.0 * math.pi
    return az, math.asin(max(-1.0, min(1.0, u)))


def dam_axes(enu: NDArray[np.float64], axis_azimuth_deg: float,
             downstream_side: str = "right") -> NDArray[np.float64]:
    """ENU vector(s) → (along, downstream, vertical) in the same unit.

    ``axis_azimuth_deg``: azimuth of the dam axis in degrees clockwise from north.
    ``downstream_side``: ``"right"`` or ``"left"`` of the axis direction.
    """
    if downstream_side not in ("right", "left"):
        raise ValueError(f"downstream_side must be 'right' or 'left', not {downstream_side!r}")
    if not math.isfinite(axis_azimuth_deg):
        raise ValueError("axis_azimuth_deg must be a finite number of degrees")
    a = math.radians(axis_azimuth_deg)
    along = np.array([math.sin(a), math.cos(a)])          # (east, north) unit vector
    sign = 1.0 if downstream_side == "right" else -1.0
    down = sign * np.array([math.cos(a), -math.sin(a)])   # along rotated by ±90°
    v = np.asarray(enu, dtype=float)
    out = np.empty_like(v)
    out[..., 0] = v[..., 0] * along[0] + v[..., 1] * along[1]
    out[..., 1] = v[..., 0] * down[0] + v[..., 1] * down[1]
    out[..., 2] = v[..., 2]
    return out
