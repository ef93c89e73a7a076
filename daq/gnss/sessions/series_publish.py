"""A session outcome → the point's deformation series: filter update, readings, history.

Published with every session on ``gnss/{point}`` (result lane), beside the session's
own readings (additive, payload version 1 unchanged):

- ``{point}.filtered_along`` / ``_downstream`` / ``_vertical``: the filtered displacement,
  mm, dam axes; ``{point}.velocity_along`` / … : its velocity, mm/day. Each carries the
  ``session`` summary and ``series`` (``$defs/series`` in ``daq/schemas/gnss.json``:
  status, events, raw and filtered values, σ, innovation, step). Quality ``good`` when
  this session went into the value; ``suspect`` when the value is the filter's prediction
  (a held jump, a session without a fix or rejected); flags name the events. Nothing is
  published before the point's first fixed session (there is no series yet).

Integrity events (``alarm/{point}``, alarm lane, channel ``{point}.alarm.series``): a
``jump`` held (value: its innovation, mm), a ``step`` confirmed (value: its size on the
largest axis, mm), an ``outlier`` dropped, ``sessions missing`` (value: how many; raised
by the solver thread too, once per gap, when no session has come for two intervals,
with ``alarm.intervals``), ``session rejected`` by its own statistics. A session without
a fix already raises ``{point}.alarm.session``.

History: every update is appended to ``<state dir>/gnss_points/<point>.series.jsonl``
(one JSON object per line), read by ``daq gnss series``; the filter state itself is kept
in the point's state file (``series``), written with the rest of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from daq.gnss.gnss_config import AXES, PointConfig
from daq.gnss.solver.series import SeriesFilter, SeriesOptions, SeriesUpdate, SessionPoint
from daq.model import Lane, Quality, Reading

from .publish import SessionOutcome, _axes, summary
from .series_history import append_history

log = structlog.get_logger("daq.gnss.series")
_UNIX0 = datetime(1970, 1, 1)
FROM_THIS_SESSION = ("initialised", "updated", "step")   # else the value is a prediction
EVENT_KINDS = {"jump": "jump", "step": "step", "outlier": "outlier",
               "sessions_missing": "sessions missing", "session_rejected": "session rejected"}


def t_days(o: SessionOutcome) -> float:
    """Unix days of the middle of the session window."""
    mid = o.window_start + (o.window_end - o.window_start) / 2
    return (mid - _UNIX0).total_seconds() / 86400.0


def session_point(o: SessionOutcome) -> SessionPoint:
    """What the filter needs of a session: dam-axis displacement and formal σ (mm)."""
    sol = o.solution
    base = SessionPoint(o.session_id, t_days(o), False, o.verdict)
    if sol is None or not sol.fixed or o.reference_epoch is None:
        return base
    axes = _axes(o.point)
    ref = o.reference_epoch.enu_m
    d = axes.rotate((sol.enu - ref) * 1000.0)
    rot = axes.rotate(np.eye(3)).T
    cov = rot @ sol.cov_enu @ rot.T * 1e6
    sig = [math.sqrt(max(float(cov[i, i]), 0.0)) for i in range(3)]
    return SessionPoint(o.session_id, t_days(o), True, o.verdict,
                        (float(d[0]), float(d[1]), float(d[2])), (sig[0], sig[1], sig[2]),
                        None if not math.isfinite(sol.ratio) else float(sol.ratio),
                        None if not math.isfinite(sol.residual_rms_m)
                        else sol.residual_rms_m * 1000.0)


def options_for(hours: float, settings: Mapping[str, float] | None = None) -> SeriesOptions:
    """Filter settings for sessions of ``hours`` and the point's ``series:`` keys. The
    noise floor (set for 1-h sessions) scales as 1/√hours (averaging), at most halved
    (4-h sessions: 0.75 / 0.75 / 1.25 mm), since multipath repeats and does not average
    away."""
    cfg = dict(settings or {})
    base = SeriesOptions()
    h = cfg.get("noise_horizontal_mm", base.sigma_floor_mm[0])
    v = cfg.get("noise_vertical_mm", base.sigma_floor_mm[2])
    k = max(0.5, math.sqrt(1.0 / hours))
    return SeriesOptions(interval_days=hours / 24.0, sigma_floor_mm=(h * k, h * k, v * k),
                         gate=cfg.get("gate", base.gate), watch=cfg.get("watch", base.watch),
                         confirm=cfg.get("confirm", base.confirm),
                         min_ratio=cfg.get("min_ratio", base.min_ratio))


def load_filter(state: dict[str, Any], options: SeriesOptions) -> SeriesFilter:
    """The point's filter from its state (a fresh one if absent or unreadable)."""
    saved = state.get("series")
    if not isinstance(saved, dict):
        return SeriesFilter(options)
    try:
        return SeriesFilter.from_dict(saved, options)
    except ValueError as err:
        state["series_unreadable"] = saved      # kept, never silently dropped
        log.error("gnss_series_state_unreadable", error=str(err),
                  hint="the series starts again; the old state is kept as series_unreadable")
        return SeriesFilter(options)


def series_readings(o: SessionOutcome, u: SeriesUpdate) -> list[tuple[str, Reading]]:
    """Filtered displacement and velocity readings, and the series' integrity events."""
    p = o.point
    ts = (o.window_start + (o.window_end - o.window_start) / 2).replace(tzinfo=UTC)
    info = u.to_dict()
    session = summary(o)
    if u.displacement_mm is None:       # no fixed session yet: no series to speak of
        return []
    flags = tuple(u.events) or (u.status,)
    quality = Quality.GOOD if u.status in FROM_THIS_SESSION else Quality.SUSPECT
    device = o.device
    out: list[tuple[str, Reading]] = []
    topic = f"gnss/{p.name}"
    for kind, values, unit in (("filtered", u.displacement_mm, "mm"),
                               ("velocity", u.velocity_mm_day, "mm/day")):
        for i, axis in enumerate(AXES):
            v = None if values is None else round(values[i], 3 if kind == "velocity" else 2)
            out.append((topic, Reading(
                device=device, channel=f"{p.name}.{kind}_{axis}", quantity=f"{kind}_{axis}",
                value=v, unit=unit, quality=quality, ts=ts, lane=Lane.RESULT, sensor=p.name,
                flags=flags, extra={"session": session, "series": info})))
    for ev in u.events:
        if ev not in EVENT_KINDS:
            continue
        what = EVENT_KINDS[ev]
        value, unit = _event_value(ev, u)
        message = f"GNSS series {p.name} at {o.session_id}: {what}"
        if ev == "sessions_missing":
            message += f" ({u.missing} session(s) without data)"
        elif u.detail:
            message += f" ({u.detail})"
        out.append((f"alarm/{p.name}", Reading(
            device=device, channel=f"{p.name}.alarm.series", quantity="gnss_series",
            value=value, unit=unit, quality=Quality.MISSING if value is None else quality,
            ts=ts, lane=Lane.ALARM, sensor=p.name, flags=(ev,),
            extra={"alarm": {"kind": what, "session": o.session_id, "message": message},
                   "session": session, "series": info})))
    return out


def _event_value(ev: str, u: SeriesUpdate) -> tuple[float | None, str]:
    """An event's value: a step's size, a jump's innovation (mm, the largest axis), the
    sessions missing; none for a session dropped or rejected (quality ``missing``)."""
    def largest(v: tuple[float, float, float]) -> float:
        return round(float(max(v, key=lambda x: abs(float(x)))), 2)
    if ev == "step" and u.step_mm is not None:
        return largest(u.step_mm), "mm"
    if ev == "jump" and u.innovation_mm is not None:
        return largest(u.innovation_mm), "mm"
    if ev == "sessions_missing":
        return float(u.missing), "sessions"
    return None, ""


def missing_alarm(p: PointConfig, state: dict[str, Any], now: datetime, hours: float,
                  device: str) -> list[tuple[str, Reading]]:
    """``sessions missing`` when no session of a point with a series has come for two
    intervals past its last one (``now`` naive UTC, the solver's closing clock); once
    per gap (remembered in ``state["series_missing_alarmed"]``)."""
    series = state.get("series")
    if p.role != "monitor" or not isinstance(series, dict) or series.get("last_t") is None:
        return []
    last = str(series.get("last_session"))
    if state.get("series_missing_alarmed") == last:
        return []
    last_end = _UNIX0 + timedelta(days=float(series["last_t"]) + hours / 48.0)
    missed = int((now - last_end).total_seconds() // (hours * 3600.0))
    if missed < 2:
        return []
    state["series_missing_alarmed"] = last
    message = (f"GNSS series {p.name}: no session for {missed} intervals of {hours:g} h "
               f"since {last}")
    return [(f"alarm/{p.name}", Reading(
        device=device, channel=f"{p.name}.alarm.series", quantity="gnss_series",
        value=None, unit="", quality=Quality.MISSING,
        ts=now.replace(tzinfo=UTC), lane=Lane.ALARM, sensor=p.name,
        flags=("sessions_missing",),
        extra={"alarm": {"kind": "sessions missing", "session": last, "intervals": missed,
                         "message": message}}))]


def update_series(state: dict[str, Any], o: SessionOutcome, hours: float,
                  points_dir: Path) -> list[tuple[str, Reading]]:
    """The solver thread's hook: feed the point's filter (kept in ``state["series"]``,
    saved with the point's state), append the history, return what to publish. A failure
    here is logged and publishes nothing extra: the session's own readings still go."""
    try:
        f = load_filter(state, options_for(hours, o.point.series))
        u = f.add(session_point(o))
        state["series"] = f.to_dict()
        append_history(points_dir, o.point.name, u,
                       o.window_start.replace(tzinfo=UTC).isoformat())
        if u.events:
            log.warning("gnss_series_event", point=o.point.name, session=o.session_id,
                        events=u.events, status=u.status, detail=u.detail,
                        innovation_mm=u.to_dict()["innovation_mm"])
        return series_readings(o, u)
    except Exception as err:  # the series must never cost a session its result
        log.error("gnss_series_failed", session=o.session_id, error=repr(err))
        return []
