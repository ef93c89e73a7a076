"""A solved (or unsolvable) GNSS session → readings and alarms for the outbox.

Published on ``gnss/{point}`` (result lane), one reading per quantity:

- ``{point}.displacement_along`` / ``_downstream`` / ``_vertical``: mm against the point's
  reference epoch, in dam axes (``along`` the axis towards increasing chainage,
  ``downstream`` positive towards the downstream face, ``vertical`` up);
- ``{point}.baseline_e`` / ``_n`` / ``_u``: the fixed baseline reference → point, m, ENU
  at the reference station.

Each carries the session summary under ``session`` (schema ``daq/schemas/gnss.json``).
Quality is ``good`` only for a fixed session; otherwise the value is null: ``bad`` when
the session had data but no fix (flag = the verdict), ``missing`` when there was nothing
to solve (no reference data). ``ts`` is the middle of the session window (UTC).

Alarms (``alarm/{point}``, alarm lane): ``{point}.alarm.session`` for a session without a
fix (``no fix``, ``too few satellites``, ``ratio too low``, ``no reference data``,
``solver error``), and ``{point}.alarm.displacement_{axis}`` when the displacement's
magnitude exceeds that axis's ``alarm_mm`` threshold (value in mm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daq.gnss.gnss_config import AXES, PointConfig
from daq.gnss.obs import GNSSTime
from daq.gnss.solver.baseline import BaselineSolution
from daq.gnss.solver.deformation import DamAxes, ReferenceEpoch, deformation
from daq.model import Lane, Quality, Reading, format_ts

NO_REFERENCE_DATA = "no reference data"
SOLVER_ERROR = "solver error"


@dataclass(frozen=True)
class SessionOutcome:
    """Everything known about one monitor session once its solve was attempted."""

    point: PointConfig
    session_id: str                 # "P01/20220225T1200Z"
    reference_session_id: str
    window_start: datetime          # naive UTC
    window_end: datetime
    device: str                     # the stream feeding the point
    solution: BaselineSolution | None
    verdict: str
    detail: str = ""
    reference_epoch: ReferenceEpoch | None = None
    base_xyz: tuple[float, float, float] | None = None
    base_xyz_source: str | None = None       # config | rtcm
    adopted_reference: bool = False          # this session became the reference epoch


def _utc_iso(t: datetime) -> str:
    return format_ts(t.replace(tzinfo=UTC))


def _gps_iso(gps_seconds: float) -> str | None:
    if not math.isfinite(gps_seconds):
        return None
    return _utc_iso(GNSSTime.from_seconds(gps_seconds).to_utc())


def summary(o: SessionOutcome) -> dict[str, Any]:
    """The session summary (``session`` in every reading; ``$defs/session`` in gnss.json)."""
    out: dict[str, Any] = {
        "id": o.session_id, "point": o.point.name, "reference_point": o.point.reference,
        "reference_session": o.reference_session_id,
        "window_start": _utc_iso(o.window_start), "window_end": _utc_iso(o.window_end),
        "verdict": o.verdict, "fixed": bool(o.solution is not None and o.solution.fixed),
        "systems": o.point.systems, "elevation_mask_deg": o.point.elevation_mask_deg,
        "base_xyz_m": None if o.base_xyz is None else [round(v, 4) for v in o.base_xyz],
        "base_xyz_source": o.base_xyz_source, "detail": o.detail,
    }
    sol = o.solution
    if sol is None:
        out.update({"ratio": None, "epochs": 0, "first_epoch": None, "last_epoch": None,
                    "satellites": {}, "ambiguities": 0, "fixed_ambiguities": 0,
                    "residual_rms_mm": None, "sigma_enu_mm": None, "enu_m": None,
                    "float_enu_m": None, "displacement_mm": None, "reference_epoch": None})
        return out
    d = deformation(o.point.name, sol, _axes(o.point), o.reference_epoch).to_dict()
    out.update({
        "ratio": d["ratio"], "epochs": sol.n_epochs, "first_epoch": _gps_iso(sol.start),
        "last_epoch": _gps_iso(sol.end), "satellites": dict(sol.satellites),
        "ambiguities": sol.n_ambiguities, "fixed_ambiguities": sol.n_fixed,
        "residual_rms_mm": d["residual_rms_mm"], "sigma_enu_mm": d["sigma_enu_mm"],
        "enu_m": d["enu_m"], "float_enu_m": d.get("float_enu_m"),
        "displacement_mm": d["displacement_mm"],
        "reference_epoch": None if o.reference_epoch is None else {
            "label": o.reference_epoch.label,
            "enu_m": [round(v, 4) for v in o.reference_epoch.enu_m],
            "adopted_now": o.adopted_reference},
    })
    if sol.detail and not o.detail:
        out["detail"] = sol.detail
    return out


def _axes(p: PointConfig) -> DamAxes:
    return DamAxes(p.dam_axis_azimuth_deg, p.downstream_side)


def _slug(verdict: str) -> str:
    return verdict.replace(" ", "_")


def readings(o: SessionOutcome) -> tuple[list[tuple[str, Reading]], dict[str, Any]]:
    """(topic, reading) pairs for the outbox, results and alarms, and the summary."""
    p, sol = o.point, o.solution
    info = summary(o)
    fixed = sol is not None and sol.fixed
    ts = (o.window_start + (o.window_end - o.window_start) / 2).replace(tzinfo=UTC)
    flags: tuple[str, ...] = ()
    enu: list[float | None]
    if fixed and sol is not None:
        res = deformation(p.name, sol, _axes(p), o.reference_epoch)
        dam, quality = res.displacement_dam_mm, Quality.GOOD
        enu = [float(v) for v in sol.enu]
    else:
        dam, enu = None, [None, None, None]
        quality = Quality.MISSING if sol is None else Quality.BAD
        flags = (_slug(o.verdict),)
    if fixed and o.adopted_reference:
        flags = ("reference_epoch",)

    def reading(quantity: str, value: float | None, unit: str, lane: Lane = Lane.RESULT,
                channel: str | None = None, q: Quality = quality,
                fl: tuple[str, ...] = flags, extra: dict[str, Any] | None = None) -> Reading:
        return Reading(device=o.device, channel=channel or f"{p.name}.{quantity}",
                       quantity=quantity, value=value, unit=unit, quality=q, ts=ts,
                       lane=lane, sensor=p.name, flags=fl,
                       extra=extra if extra is not None else {"session": info})

    topic = f"gnss/{p.name}"
    out: list[tuple[str, Reading]] = []
    for i, axis in enumerate(AXES):
        v = None if dam is None else round(float(dam[i]), 2)
        out.append((topic, reading(f"displacement_{axis}", v, "mm")))
    for comp, v in zip(("e", "n", "u"), enu, strict=True):
        out.append((topic, reading(f"baseline_{comp}", None if v is None else round(v, 5),
                                   "m")))
    alarm_topic = f"alarm/{p.name}"
    if not fixed:
        out.append((alarm_topic, reading(
            "gnss_session", None, "", Lane.ALARM, f"{p.name}.alarm.session", quality,
            flags, {"alarm": {"kind": o.verdict, "session": o.session_id,
                              "message": f"GNSS session {o.session_id}: {o.verdict}"
                              + (f" ({o.detail})" if o.detail else "")}})))
    elif dam is not None:
        for i, axis in enumerate(AXES):
            limit = p.alarm_mm.get(axis)
            value = float(dam[i])
            if limit is not None and abs(value) > limit:
                out.append((alarm_topic, reading(
                    f"displacement_{axis}", round(value, 2), "mm", Lane.ALARM,
                    f"{p.name}.alarm.displacement_{axis}", Quality.GOOD, ("over_threshold",),
                    {"alarm": {"kind": "displacement beyond threshold", "axis": axis,
                               "threshold_mm": limit, "value_mm": round(value, 2),
                               "session": o.session_id,
                               "message": f"{p.name} {axis} displacement {value:+.1f} mm "
                                          f"beyond ±{limit:g} mm"}})))
    return out, info


def window_of(session_start: datetime, hours: float) -> tuple[datetime, datetime]:
    return session_start, session_start + timedelta(seconds=round(hours * 3600))
