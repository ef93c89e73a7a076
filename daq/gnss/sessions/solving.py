"""The GNSS solver thread: closes due sessions, pairs monitor and reference sessions of the
same window, solves the baseline and commits the result (and any alarm) to the outbox.

Never on a recording thread: the store's ``on_close`` hook only queues the session.

- Closing: a session closes when its own stream sends an epoch of the next window (the
  store does that); a silent stream's session is closed here once the newest data of any
  stream is ``close_after`` past the window's end, or, when no epoch arrived at all for
  ``close_after``, once the wall clock is past it.
- Pairing: a closed monitor session is solved as soon as its reference's session of the
  same window is closed too, or after ``solve_wait`` with what the reference has (an open
  session is read as it stands; none at all → published as ``no reference data``).
- Reference epoch: the configured one, else the first fixed session of the point, stored
  in ``<state dir>/gnss_points/<point>.json`` with the last summary and the last session
  solved (so a restart neither re-solves nor forgets).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from daq.gnss.gnss_config import GnssConfig, PointConfig
from daq.gnss.obs import GNSSTime, NavData
from daq.gnss.rinex.writer import observed_types
from daq.gnss.solver.baseline import SolverOptions, solve_baseline, warm_kernels
from daq.gnss.solver.deformation import ReferenceEpoch
from daq.gnss.solver.heap import release_free_memory
from daq.model import Reading
from daq.outbox import Outbox

from . import file_format as sio
from .info import STAMP
from .publish import NO_REFERENCE_DATA, SOLVER_ERROR, SessionOutcome, readings
from .series_publish import missing_alarm, update_series
from .store import SessionInfo, SessionStore, parse_session_id

log = structlog.get_logger("daq.gnss.sessions.solving")

DataClock = Callable[[], tuple[float | None, float | None]]   # (newest GPST s, monotonic)


class SessionSolver(threading.Thread):
    def __init__(self, cfg: GnssConfig, store: SessionStore, state_dir: Path, outbox: Outbox,
                 *, devices: dict[str, str], data_clock: DataClock,
                 base_positions: Callable[[str], tuple[float, float, float] | None],
                 on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(name="gnss-solver", daemon=True)
        self.cfg, self.store, self.outbox, self.on_commit = cfg, store, outbox, on_commit
        self.devices, self.data_clock, self.base_positions = devices, data_clock, base_positions
        self.dir = state_dir / "gnss_points"
        self.queue: queue.Queue[SessionInfo | None] = queue.Queue()
        self.waiting: dict[str, float] = {}        # monitor session id → monotonic deadline
        self.points: dict[str, dict[str, Any]] = {p: self._load_state(p) for p in cfg.points}
        self.counters = {"solved": 0, "fixed": 0, "not_fixed": 0, "alarms": 0, "errors": 0}
        self.warm_s: float | None = None
        self.heartbeat = time.monotonic()
        self._halt = threading.Event()

    # -- state on disk --------------------------------------------------------------------

    def _load_state(self, point: str) -> dict[str, Any]:
        path = self.dir / f"{point}.json"
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:   # it may hold the adopted reference epoch
            bad = path.with_name(f"{path.name}.bad")
            try:
                os.replace(path, bad)
            except OSError:
                pass
            log.error("gnss_point_state_unreadable", point=point, path=str(path),
                      kept_as=str(bad), error=repr(err),
                      hint="restore reference_epoch from the .bad file or the config")
            return {}

    def _save_state(self, point: str) -> None:
        """Write-then-rename, fsynced: a power cut leaves the old state or the new one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{point}.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(json.dumps(self.points[point], indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- hooks and life cycle ------------------------------------------------------------

    def on_close(self, info: SessionInfo) -> None:
        """The store's hook (any thread): queue, never solve here."""
        self.queue.put(info)

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self.queue.put(None)
        self.join(timeout)

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            warm_kernels()
        except Exception as err:  # a cache problem must not stop recording
            log.error("gnss_warm_failed", error=repr(err))
        self.warm_s = round(time.monotonic() - t0, 2)
        log.info("gnss_solver_ready", warm_s=self.warm_s)
        try:
            self._requeue_unsolved()
        except (OSError, ValueError) as err:   # an unreadable listing: carry on recording
            log.error("gnss_requeue_failed", error=repr(err))
        while not self._halt.is_set():
            self.heartbeat = time.monotonic()
            try:
                self._close_due()
                self._expire_waits()
                try:
                    info = self.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if info is not None:
                    self._closed(info)
            except Exception as err:  # one bad session must not end solving
                self.counters["errors"] += 1
                log.error("gnss_solver_loop_error", error=f"{type(err).__name__}: {err}")

    def _requeue_unsolved(self) -> None:
        """Monitor sessions closed after the last one solved (a crash, a restart); every
        closed one when the point was never solved (a restart before its first solve)."""
        for p in self.cfg.points.values():
            if p.role != "monitor":
                continue
            last = self.points[p.name].get("last_solved") or ""
            for info in self.store.list(p.name):
                if info.state == "closed" and f"{info.start:{STAMP}}" > last:
                    self.queue.put(info)

    # -- closing and pairing ---------------------------------------------------------------

    def _close_due(self) -> None:
        newest, last_mono = self.data_clock()
        close_after = self.cfg.sessions.close_after_s
        cutoffs = []
        if newest is not None:
            cutoffs.append(GNSSTime.from_seconds(newest).to_utc()
                           - timedelta(seconds=close_after))
        if last_mono is None or time.monotonic() - last_mono > close_after:
            cutoffs.append(datetime.now(UTC).replace(tzinfo=None))
        if cutoffs:
            self.store.close_due(max(cutoffs))   # calls on_close → our queue
            self._missing(max(cutoffs))

    def _missing(self, now: datetime) -> None:
        """A series whose next sessions are two intervals overdue: one alarm per gap."""
        for p in self.cfg.points.values():
            state = self.points[p.name]
            items = missing_alarm(p, state, now, self.cfg.sessions.hours,
                                  self.devices.get(p.name, p.name))
            if items and self._commit(items):
                self._save_state(p.name)

    def _closed(self, info: SessionInfo) -> None:
        p = self.cfg.points.get(info.point)
        if p is None:
            return
        stamp = f"{info.start:{STAMP}}"
        if p.role == "monitor" and p.reference is not None:
            if self._is_closed(f"{p.reference}/{stamp}"):
                self._solve(p, info.id)
            else:
                self.waiting[info.id] = time.monotonic() + self.cfg.sessions.solve_wait_s
                log.info("gnss_waiting_for_reference", session=info.id,
                         reference=f"{p.reference}/{stamp}")
        else:
            for m in self.cfg.monitors_of(info.point):
                if f"{m.name}/{stamp}" in self.waiting:
                    self._solve(m, f"{m.name}/{stamp}")

    def _is_closed(self, session_id: str) -> bool:
        try:
            return self.store.find(session_id).suffix == ".ses"
        except KeyError:
            return False

    def _expire_waits(self) -> None:
        now = time.monotonic()
        for sid, deadline in list(self.waiting.items()):
            if now >= deadline:
                point, _ = parse_session_id(sid)
                self._solve(self.cfg.points[point], sid)

    # -- solving -----------------------------------------------------------------------------

    def _solve(self, p: PointConfig, session_id: str) -> None:
        self.waiting.pop(session_id, None)
        assert p.reference is not None
        _, start = parse_session_id(session_id)
        ref_id = f"{p.reference}/{start:{STAMP}}"
        end = start + timedelta(seconds=round(self.cfg.sessions.hours * 3600))
        base = dict(point=p, session_id=session_id, reference_session_id=ref_id,
                    window_start=start, window_end=end,
                    device=self.devices.get(p.name, p.name))
        t0 = time.monotonic()
        outcome = self._attempt(p, session_id, ref_id, base)
        release_free_memory()    # the idle service's RSS back near its pre-solve figure
        items, info = readings(outcome)
        state = self.points[p.name]
        items += update_series(state, outcome, self.cfg.sessions.hours, self.dir)
        state["last"] = info  # before the commit: status never lags what subscribers see
        if self._commit(items):   # else left unsolved: a restart solves it again
            state["last_solved"] = f"{start:{STAMP}}"
        if outcome.adopted_reference and outcome.reference_epoch is not None:
            state["reference_epoch"] = {"enu_m": list(outcome.reference_epoch.enu_m),
                                        "label": outcome.reference_epoch.label}
        self._save_state(p.name)
        self.counters["solved"] += 1
        self.counters["fixed" if info["fixed"] else "not_fixed"] += 1
        self.counters["alarms"] += sum(1 for t, _ in items if t.startswith("alarm/"))
        log.info("gnss_session_solved", session=session_id, verdict=outcome.verdict,
                 ratio=info["ratio"], displacement_mm=info["displacement_mm"],
                 seconds=round(time.monotonic() - t0, 2))

    def _attempt(self, p: PointConfig, session_id: str, ref_id: str,
                 base: dict[str, Any]) -> SessionOutcome:
        try:
            rover, nav_r = self.store.load(session_id, p.systems)
            try:
                ref, nav_b = self.store.load(ref_id, p.systems)
            except KeyError:
                return SessionOutcome(**base, solution=None, verdict=NO_REFERENCE_DATA,
                                      detail=f"no session {ref_id}")
            xyz, source = self._base_xyz(p, ref.header.approx_xyz)
            if xyz is None:
                return SessionOutcome(**base, solution=None, verdict=NO_REFERENCE_DATA,
                                      detail=f"no position for {p.reference} (configure xyz "
                                      "or send RTCM 1005/1006)")
            for data in (rover, ref):
                data.header.obs_types = observed_types(data)
            opts = SolverOptions(systems=p.systems, elevation_mask_deg=p.elevation_mask_deg,
                                 ratio_threshold=p.ratio_threshold)
            try:
                sol = solve_baseline(rover, ref, _merge_nav(nav_b, nav_r), xyz, opts,
                                     consume=True)   # loaded for this solve only
            except ValueError as err:   # no epochs in common, nothing to solve
                return SessionOutcome(**base, solution=None, verdict=NO_REFERENCE_DATA,
                                      detail=str(err), base_xyz=xyz, base_xyz_source=source)
        except Exception as err:  # a vanished session or a solver bug: published, not lost
            log.error("gnss_solve_failed", session=session_id, error=repr(err))
            self.counters["errors"] += 1
            return SessionOutcome(**base, solution=None, verdict=SOLVER_ERROR,
                                  detail=f"{type(err).__name__}: {err}")
        reference, adopted = self._reference_epoch(p)
        if reference is None and sol.fixed:
            reference, adopted = ReferenceEpoch.from_solution(sol, session_id), True
        return SessionOutcome(**base, solution=sol, verdict=sol.verdict, detail=sol.detail,
                              reference_epoch=reference, base_xyz=xyz,
                              base_xyz_source=source, adopted_reference=adopted)

    def _base_xyz(self, p: PointConfig, header_xyz: tuple[float, float, float]
                  ) -> tuple[tuple[float, float, float] | None, str | None]:
        ref = self.cfg.points[p.reference or ""]
        if ref.xyz is not None:
            return ref.xyz, "config"
        if any(header_xyz):
            return header_xyz, "rtcm"
        live = self.base_positions(ref.name)
        return (live, "rtcm") if live is not None else (None, None)

    def _reference_epoch(self, p: PointConfig) -> tuple[ReferenceEpoch | None, bool]:
        if p.reference_epoch is not None:
            return ReferenceEpoch(p.reference_epoch, p.reference_label), False
        stored = self.points[p.name].get("reference_epoch")
        if stored:
            e, n, u = stored["enu_m"]
            return ReferenceEpoch((e, n, u), stored.get("label", "")), False
        return None, False

    def _commit(self, items: list[tuple[str, Reading]]) -> bool:
        for attempt in range(5):
            try:
                self.outbox.add(items)
            except Exception as err:  # disk full, I/O error: retry a little, then give up
                log.error("gnss_outbox_commit_failed", error=str(err), attempt=attempt)
                self.counters["errors"] += 1
                time.sleep(1.0)
                continue
            if self.on_commit is not None:
                self.on_commit()
            return True
        return False

    def status(self) -> dict[str, Any]:
        return {"warm_s": self.warm_s, "counters": dict(self.counters),
                "waiting": sorted(list(self.waiting)),
                "points": {n: {"last_solved": s.get("last_solved"),
                               "reference_epoch": s.get("reference_epoch"),
                               "last": _brief(s.get("last"))}
                           for n, s in self.points.items()
                           if self.cfg.points[n].role == "monitor"}}


def _brief(last: dict[str, Any] | None) -> dict[str, Any] | None:
    if not last:
        return None
    return {k: last.get(k) for k in ("id", "verdict", "fixed", "ratio", "epochs",
                                     "displacement_mm", "enu_m", "window_end")}


def _merge_nav(*navs: NavData) -> NavData:
    """One navigation set, each broadcast ephemeris once (both receivers decode them)."""
    out, seen = NavData(), set()
    for nav in navs:
        for e in nav.ephemerides:
            key = sio.ephemeris_key(e)
            if key not in seen:
                seen.add(key)
                out.ephemerides.append(e)
    return out
