"""The ``gnss:`` section of the daemon's configuration: receivers, points, sessions.

Checked with :mod:`daq.schema` like the rest of the file (every problem with its dotted
path, line and hint), then turned into immutable objects.

Conventions: ECEF coordinates in metres (WGS84), the reference epoch as the baseline's
E/N/U in metres at the reference station, alarm thresholds in millimetres per dam axis
(``along`` the axis, ``downstream``, ``vertical`` up), azimuth in degrees clockwise from
north, elevation mask in degrees, session length in hours (it must divide 24).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daq.schema import Ctx, Field, ListOf, MapOf, Schema, join

POINT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")   # as daq.gnss.sessions.info (no numpy here)

AXES = ("along", "downstream", "vertical")


@dataclass(frozen=True)
class StreamConfig:
    name: str
    url: str             # /dev/ttyACM0, /dev/serial/by-id/…, socket://h:p, rfc2217://…, a pty
    baudrate: int
    format: str          # rtcm3 | ubx | auto
    point: str
    leap_seconds: int    # GPS − UTC, for GLONASS epochs


@dataclass(frozen=True)
class PointConfig:
    name: str
    role: str                                   # reference | monitor
    reference: str | None                       # a monitor's reference point
    xyz: tuple[float, float, float] | None      # a reference's known ECEF (m)
    systems: str                                # "GC", "GEC", …
    elevation_mask_deg: float
    ratio_threshold: float
    dam_axis_azimuth_deg: float
    downstream_side: str                        # right | left, looking along the azimuth
    reference_epoch: tuple[float, float, float] | None   # E, N, U (m)
    reference_label: str
    alarm_mm: Mapping[str, float]               # axis → |displacement| threshold (mm)
    series: Mapping[str, float] = field(default_factory=dict)   # deformation-series filter


@dataclass(frozen=True)
class SessionsConfig:
    hours: float
    retention_days: float | None
    max_mb: float | None
    close_after_s: float   # grace past a window's end before a silent stream's session closes
    solve_wait_s: float    # how long a closed monitor session waits for its reference's


@dataclass(frozen=True)
class GnssConfig:
    streams: tuple[StreamConfig, ...]
    points: Mapping[str, PointConfig]
    sessions: SessionsConfig

    def monitors_of(self, reference: str) -> list[PointConfig]:
        return [p for p in self.points.values() if p.reference == reference]


STREAM = Schema({
    "url": Field("str", required=True,
                 doc="/dev/ttyACM0, /dev/serial/by-id/..., socket://host:port, a pty path"),
    "baudrate": Field("int", default=115200, choices=(4800, 9600, 19200, 38400, 57600,
                                                      115200, 230400, 460800, 921600)),
    "format": Field("str", default="auto", choices=("rtcm3", "ubx", "auto")),
    "point": Field("str", required=True, doc="the point this receiver observes"),
    "leap_seconds": Field("int", default=18, min=0, max=60),
})

REFERENCE_EPOCH = Schema({
    "e": Field("float", required=True), "n": Field("float", required=True),
    "u": Field("float", required=True), "label": Field("str", default=""),
})

ALARM = Schema({axis: Field("float", min=0.0) for axis in AXES})

SERIES = Schema({   # the deformation-series filter (daq/gnss/solver/series.py); mm, σ units
    "noise_horizontal_mm": Field("float", min=0.1, max=50.0,
                                 doc="1-h session scatter floor, horizontal (1.5)"),
    "noise_vertical_mm": Field("float", min=0.1, max=50.0,
                               doc="1-h session scatter floor, vertical (2.5)"),
    "gate": Field("float", min=2.0, max=50.0, doc="a session this many σ off is held (4)"),
    "watch": Field("float", min=1.0, max=10.0, doc="σ off to watch for a step (1.8)"),
    "confirm": Field("float", min=1.0, max=20.0, doc="two-session mean σ off: a step (2.5)"),
    "min_ratio": Field("float", min=1.0, max=100.0, doc="sessions below are rejected (3)"),
})


def _check_systems(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    s = out.get("systems")
    if s is not None and (not s or any(c not in "GEC" for c in s) or len(set(s)) != len(s)):
        ctx.add(join(path, "systems"), f"{s!r} is not a set of G, E, C",
                lines.get("systems"), "e.g. GC (GPS + BeiDou) or GEC")
    xyz = out.get("xyz")
    if xyz is not None and len(xyz) != 3:
        ctx.add(join(path, "xyz"), f"needs three numbers X, Y, Z (m), got {len(xyz)}",
                lines.get("xyz"))


POINT = Schema({
    "role": Field("str", required=True, choices=("reference", "monitor")),
    "reference": Field("str", doc="a monitor's reference point"),
    "xyz": Field(ListOf(Field("float")), doc="a reference's known ECEF X, Y, Z (m)"),
    "systems": Field("str", default="GC"),
    "elevation_mask": Field("float", default=15.0, min=0.0, max=59.0),
    "ratio_threshold": Field("float", default=3.0, min=1.0, max=100.0),
    "dam_axis_azimuth_deg": Field("float", default=0.0, min=-360.0, max=360.0),
    "downstream_side": Field("str", default="right", choices=("right", "left")),
    "reference_epoch": Field(REFERENCE_EPOCH),
    "alarm_mm": Field(ALARM),
    "series": Field(SERIES),
}, validator=_check_systems)


def _check_hours(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    hours = out.get("hours")
    if hours is not None and (hours <= 0 or 86400 % round(hours * 3600)
                              or abs(hours * 3600 - round(hours * 3600)) > 1e-6):
        ctx.add(join(path, "hours"), f"{hours} h does not divide 24 h", lines.get("hours"),
                "e.g. 1, 2, 4, 6, 12 or 24")


SESSIONS = Schema({
    "hours": Field("float", default=4.0, min=0.01, max=24.0),
    "retention_days": Field("float", min=0.1),
    "max_mb": Field("float", min=1.0),
    "close_after": Field("duration", default=300.0, min=0.5, max=86400),
    "solve_wait": Field("duration", default=600.0, min=0.0, max=86400),
}, validator=_check_hours)


class _GnssSchema(Schema):
    """The section, plus the cross-references between streams and points."""

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        out = super().check(value, path, line, ctx)
        if isinstance(out, dict) and isinstance(value, dict):
            _cross_check(out, value, path, ctx)
        return out


def _line(raw: Any, *keys: str) -> int | None:
    """The YAML line of raw[k0][k1]…, or of the deepest mapping that has one."""
    best = getattr(raw, "line", None)
    for k in keys:
        if not isinstance(raw, dict):
            break
        best = getattr(raw, "key_lines", {}).get(k, best)
        raw = raw.get(k)
    return best


def _cross_check(out: dict[str, Any], raw: Any, path: str, ctx: Ctx) -> None:
    import difflib

    points: dict[str, Any] = out.get("points") or {}
    streams: dict[str, Any] = out.get("streams") or {}

    def unknown(where: str, name: str, line: int | None, what: str) -> None:
        close = difflib.get_close_matches(name, list(points), 1)
        ctx.add(where, f"no point named {name!r}", line,
                f"did you mean {close[0]!r}?" if close else
                f"{what}: " + (", ".join(sorted(points)) or "none configured"))

    for name, p in points.items():
        where = join(join(path, "points"), name)
        if not POINT_RE.match(name):
            ctx.add(where, "a point name is letters, digits, '_', '.' or '-' (≤ 64)",
                    _line(raw, "points", name))
        if p.get("role") == "monitor":
            ref = p.get("reference")
            if ref is None:
                ctx.add(join(where, "reference"), "a monitor needs its reference point",
                        _line(raw, "points", name))
            elif ref not in points:
                unknown(join(where, "reference"), ref, _line(raw, "points", name, "reference"),
                        "points")
            elif points[ref].get("role") != "reference":
                ctx.add(join(where, "reference"), f"{ref!r} is not a reference point",
                        _line(raw, "points", name, "reference"))
        elif p.get("role") == "reference":
            for key in ("reference", "reference_epoch", "alarm_mm", "series"):
                if key in p:
                    ctx.add(join(where, key), "only a monitor point has this",
                            _line(raw, "points", name, key))
    fed: dict[str, str] = {}
    for name, s in streams.items():
        where = join(join(path, "streams"), name)
        point = s.get("point")
        if point is None:
            continue
        if point not in points:
            unknown(join(where, "point"), point, _line(raw, "streams", name, "point"), "points")
        elif point in fed:
            ctx.add(join(where, "point"), f"point {point!r} is already fed by stream "
                    f"{fed[point]!r}", _line(raw, "streams", name, "point"))
        fed[point] = name
    for name in points:
        if name not in fed:
            ctx.add(join(join(path, "points"), name), "no stream feeds this point",
                    _line(raw, "points", name), "add a stream with point: " + name)


GNSS = _GnssSchema({
    "streams": Field(MapOf(Field(STREAM)), required=True),
    "points": Field(MapOf(Field(POINT)), required=True),
    "sessions": Field(SESSIONS, default=dict),
})


def build(checked: Mapping[str, Any]) -> GnssConfig:
    """Typed configuration from a section that :data:`GNSS` checked without problems."""
    streams = tuple(StreamConfig(name=n, url=s["url"], baudrate=s["baudrate"],
                                 format=s["format"], point=s["point"],
                                 leap_seconds=s["leap_seconds"])
                    for n, s in (checked.get("streams") or {}).items())
    points = {}
    for n, p in (checked.get("points") or {}).items():
        ep = p.get("reference_epoch")
        xyz = p.get("xyz")
        points[n] = PointConfig(
            name=n, role=p["role"], reference=p.get("reference"),
            xyz=(xyz[0], xyz[1], xyz[2]) if xyz else None, systems=p["systems"],
            elevation_mask_deg=p["elevation_mask"], ratio_threshold=p["ratio_threshold"],
            dam_axis_azimuth_deg=p["dam_axis_azimuth_deg"],
            downstream_side=p["downstream_side"],
            reference_epoch=(ep["e"], ep["n"], ep["u"]) if ep else None,
            reference_label=(ep or {}).get("label", "") or "configured",
            alarm_mm={k: v for k, v in (p.get("alarm_mm") or {}).items() if v is not None},
            series={k: v for k, v in (p.get("series") or {}).items() if v is not None})
    s = SESSIONS.check(checked.get("sessions") or {}, "", None, Ctx())
    return GnssConfig(streams=streams, points=points, sessions=SessionsConfig(
        hours=s["hours"], retention_days=s.get("retention_days"), max_mb=s.get("max_mb"),
        close_after_s=s["close_after"], solve_wait_s=s["solve_wait"]))
