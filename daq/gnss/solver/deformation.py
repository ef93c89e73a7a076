"""From a session's baseline to a dam-deformation result the daemon publishes.

Conventions:
- ENU at the reference (base) station, metres; displacements in **millimetres**.
- Dam axes from :class:`DamAxes` (see :func:`daq.gnss.solver.geodesy.dam_axes`): ``along`` the
  axis (towards increasing chainage), ``downstream`` (positive towards the downstream
  face), ``vertical`` (up; settlement negative).
- Displacement = this session's fixed baseline − the reference epoch's fixed baseline
  (both expressed in ENU at the same base), so a pure base-coordinate offset cancels.
- Only a **fixed** session yields millimetres. Any other verdict ("no fix", "ratio too
  low", "too few satellites") is published with ``displacement_mm = None``; the float
  coordinates stay available in metres for diagnosis, labelled as float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .baseline import BaselineSolution
from .geodesy import dam_axes

_GPS_EPOCH = datetime(1980, 1, 6)


@dataclass(frozen=True)
class DamAxes:
    """Orientation of a dam: axis azimuth (degrees from north, clockwise) and the side
    of the axis that is downstream ("right" or "left" looking along the azimuth)."""

    axis_azimuth_deg: float
    downstream_side: str = "right"

    def __post_init__(self) -> None:
        if not math.isfinite(self.axis_azimuth_deg):
            raise ValueError("axis_azimuth_deg must be finite")
        if self.downstream_side not in ("right", "left"):
            raise ValueError("downstream_side must be 'right' or 'left'")

    def rotate(self, enu: NDArray[np.float64]) -> NDArray[np.float64]:
        """ENU → (along, downstream, vertical), same unit."""
        return dam_axes(enu, self.axis_azimuth_deg, self.downstream_side)


@dataclass(frozen=True)
class ReferenceEpoch:
    """The point's reference solution: ENU (m) at the same base, and when it was made."""

    enu_m: tuple[float, float, float]
    label: str = ""

    @classmethod
    def from_solution(cls, sol: BaselineSolution, label: str = "") -> ReferenceEpoch:
        """Adopt a fixed session as the reference; a session that is not fixed is refused."""
        if not sol.fixed:
            raise ValueError(f"a reference epoch must be a fixed solution, not {sol.verdict!r}")
        e, n, u = (float(v) for v in sol.enu)
        return cls((e, n, u), label)


def _iso(gps_seconds: float) -> str:
    return (_GPS_EPOCH + timedelta(seconds=gps_seconds)).isoformat(timespec="seconds") + " GPST"


def _round(v: NDArray[np.float64] | list[float], nd: int) -> list[float]:
    return [round(float(x), nd) for x in v]


@dataclass(frozen=True)
class DeformationResult:
    """What one session says about one monitoring point (see :meth:`to_dict`)."""

    point: str
    solution: BaselineSolution
    axes: DamAxes | None
    reference: ReferenceEpoch | None

    @property
    def displacement_enu_mm(self) -> NDArray[np.float64] | None:
        if not self.solution.fixed or self.reference is None:
            return None
        return (self.solution.enu - np.asarray(self.reference.enu_m)) * 1000.0

    @property
    def displacement_dam_mm(self) -> NDArray[np.float64] | None:
        d = self.displacement_enu_mm
        if d is None or self.axes is None:
            return None
        return self.axes.rotate(d)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: coordinates in m, displacements and σ in mm."""
        s = self.solution
        out: dict[str, Any] = {
            "point": self.point,
            "verdict": s.verdict,
            "fixed": s.fixed,
            "ratio": None if not math.isfinite(s.ratio) else round(s.ratio, 2),
            "session_start": _iso(s.start),
            "session_end": _iso(s.end),
            "epochs": s.n_epochs,
            "satellites": dict(s.satellites),
            "ambiguities": s.n_ambiguities,
            "residual_rms_mm": (None if not math.isfinite(s.residual_rms_m)
                                else round(s.residual_rms_m * 1000.0, 2)),
            "detail": s.detail,
        }
        if s.fixed:
            out["baseline_ecef_m"] = _round(s.baseline_xyz, 4)
            out["enu_m"] = _round(s.enu, 4)
            out["sigma_enu_mm"] = _round(s.sigma_enu * 1000.0, 2)
            if self.axes is not None:
                out["dam_axes_m"] = dict(zip(("along", "downstream", "vertical"),
                                             _round(self.axes.rotate(s.enu), 4), strict=True))
        else:
            out["baseline_ecef_m"] = None
            out["enu_m"] = None
            out["sigma_enu_mm"] = None
            out["float_enu_m"] = (None if not np.all(np.isfinite(s.float_enu))
                                  else _round(s.float_enu, 3))
        d_enu = self.displacement_enu_mm
        d_dam = self.displacement_dam_mm
        out["reference_epoch"] = self.reference.label if self.reference else None
        out["displacement_enu_mm"] = None if d_enu is None else _round(d_enu, 1)
        out["displacement_mm"] = (None if d_dam is None else
                                  dict(zip(("along", "downstream", "vertical"),
                                           _round(d_dam, 1), strict=True)))
        return out


def deformation(point: str, solution: BaselineSolution, axes: DamAxes | None = None,
                reference: ReferenceEpoch | None = None) -> DeformationResult:
    """Bundle a session's solution with the point's axes and reference epoch."""
    return DeformationResult(point, solution, axes, reference)
